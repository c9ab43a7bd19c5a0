# lambda sweep (relative to noise edge and s_min) with exact SVD, on a subset of cases
import sys; sys.path.insert(0,"/tmp/exp")
from harness import *
src = sys.argv[1]
concepts = ["star","neon","cage","ball"] if src=="mini" else None
cases = load((src,), concepts)
res = {}
t0=time.time()
for c in cases:
    Wp = torch.where(c.mask, 0.0, c.weight)
    s,_ = spectrum(Wp.double()); ne = noise_edge(s, tuple(Wp.shape)); smin=float(s[-1])
    key0=(c.setting,)
    for name, lam in [("ne1",ne),("ne.5",.5*ne),("ne.3",.3*ne),("ne.2",.2*ne),("ne.1",.1*ne),("ne.05",.05*ne),("smin",smin),("smin.5",.5*smin),("ne0",0.0)]:
        out = svt_complete(c.weight, c.mask, lam, iters=200)
        res.setdefault((c.setting,name),[]).append(score(out,c.weight,c.mask))
    st={}
    out = COMPLETERS.get("paper")(Wp, c.mask, device="cpu", stats=st)
    res.setdefault((c.setting,"paper"),[]).append(score(out,c.weight,c.mask))
    out = COMPLETERS.get("softimpute")(Wp, c.mask, device="cpu")
    res.setdefault((c.setting,"softimpute"),[]).append(score(out,c.weight,c.mask))
    print(c.layer, c.group, c.setting, round(ne,3), round(smin,3), round(float(s[0]),3), st, round(time.time()-t0), flush=True)
for k in sorted(res): print(src, k, [round(x,4) for x in pooled(res[k])])
