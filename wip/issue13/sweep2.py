import sys; sys.path.insert(0,"/tmp/exp")
from harness import *
src = sys.argv[1]; settings = sys.argv[2].split(",")
if src.startswith("mini"):
    cases = [c for c in load(("mini",), ["star","neon","cage","ball","moon"]) if c.setting in settings]
else:
    cases = [c for c in rs.wanda_cases(src, rs.DEFAULT_CACHE/src) if c.setting in settings]
grid = [0.1,0.3,0.5,0.7,1.0,1.3,1.6,2.0,2.5,3.0]
res = {}
for c in cases:
    Wp = torch.where(c.mask, 0.0, c.weight)
    s,_ = spectrum(Wp.double()); ne = noise_edge(s, tuple(Wp.shape))
    for g in grid:
        out = svt_complete(c.weight, c.mask, g*ne, iters=200)
        res.setdefault((c.setting,f"ne{g}"),[]).append(score(out,c.weight,c.mask))
    out = COMPLETERS.get("paper")(Wp, c.mask, device="cpu")
    res.setdefault((c.setting,"paper"),[]).append(score(out,c.weight,c.mask))
    sv = (s/s[0]).tolist()
    print(c.layer, c.group, c.setting, "ne/s1", round(ne/float(s[0]),3), "s[k]/s1 k=1,2,4,8,16,32", [round(sv[k],3) for k in (1,2,4,8,16,32)], flush=True)
for k in sorted(res): print(src, k, [round(x,4) for x in pooled(res[k])], flush=True)
