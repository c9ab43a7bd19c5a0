import sys; sys.path.insert(0,"/tmp/exp")
from harness import *
import tuned as T
src = sys.argv[1]; settings = sys.argv[2].split(",")
variants = sys.argv[3].split(",")
if src.startswith("mini"):
    cases = [c for c in load(("mini",), ["star","neon","cage"]) if c.setting in settings]
else:
    cases = [c for c in rs.wanda_cases(src, rs.DEFAULT_CACHE/src) if c.setting in settings]
res={}
for c in cases:
    W,M = c.weight, c.mask
    line=[c.setting, c.group, c.layer[-20:]]
    for v in variants:
        kw = {}
        if v.startswith("fix"): kw["fixed_f"]=float(v[3:].split("_")[0])
        if v.endswith("_plain"): kw["mnar"]=False
        if v.startswith("q"): kw["mnar_q"]=float(v[1:])
        st={}; t0=time.perf_counter()
        out = T.tuned(W, M, stats=st, **kw)
        dt=time.perf_counter()-t0
        res.setdefault((c.setting,v),[]).append(score(out,W,M))
        line += [v, st["lam_factor"], st["iterations"], round(dt,2)]
    print(*line, flush=True)
for k in sorted(res, key=str): print(src, k, [round(x,4) for x in pooled(res[k])], flush=True)
