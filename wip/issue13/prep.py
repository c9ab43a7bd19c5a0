import sys, torch
torch.set_num_threads(1)
sys.path.insert(0, "benchmarks")
import real_sources as rs
which = sys.argv[1]
if which == "mlp": rs.train_mlp(rs.DEFAULT_CACHE)
if which == "lm": rs.train_lm(rs.DEFAULT_CACHE)
if which == "mini":
    n = 0
    for c in rs.mini_cases(rs.DEFAULT_CACHE, "mini", "mini"): n += 1
    print(n)
if which == "lm2": rs.train_lm(rs.DEFAULT_CACHE, steps=int(sys.argv[2]), batch=int(sys.argv[3]), lr=float(sys.argv[4]), folder=sys.argv[5])
