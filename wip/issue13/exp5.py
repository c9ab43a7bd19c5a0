import sys; sys.path.insert(0,"/tmp/exp")
from harness import *
from mnar import *
src = sys.argv[1]; settings = sys.argv[2].split(",")
if src.startswith("mini"):
    cases = [c for c in load(("mini",), ["star","neon","cage"]) if c.setting in settings]
else:
    cases = [c for c in rs.wanda_cases(src, rs.DEFAULT_CACHE/src) if c.setting in settings]
def logtail(x): return torch.special.log_ndtr(-x)
res={}
FGRID=[float(x) for x in sys.argv[3].split(",")] if len(sys.argv)>3 else (0.5,0.7,0.9,1.0)
for c in cases:
    W,M = c.weight.double(), c.mask
    s,_ = spectrum(torch.where(M,0.0,W)); ne = noise_edge(s, tuple(W.shape))
    obs = ~M; rows = M.nonzero()[:,0]
    for tn,TT in (("tmax",tau_bound(W, M)),("tq95",tau_bound(W, M, 0.95))):
        tt = TT[M]; sigbox={}
        def trunc(est, L, X, Mk, tt=tt):
            resid = torch.where(obs, X-L, 0.0)
            sig = (resid.pow(2).sum(1)/obs.sum(1)).sqrt()[rows]; sigbox['s']=sig
            return truncated_mean(est, sig, tt)
        for f in FGRID:
            lam=f*ne
            if tn=="tmax":
                out = svt_complete(W, M, lam, iters=200)
                res.setdefault((c.setting,f,"plain"),[]).append(score(out,W,M))
            out = svt_complete(W, M, lam, iters=200, mnar=trunc)
            res.setdefault((c.setting,f,"trunc_"+tn),[]).append(score(out,W,M))
            mu = out[M]; sg = sigbox['s']
            lo = logtail((tt-mu)/sg) - logtail((tt+mu)/sg)   # log P(+)/P(-)
            o2 = W.clone(); o2[M] = lo
            res.setdefault((c.setting,f,"trunc_"+tn+"_rank_logodds"),[]).append(score(o2,W,M))
            o3 = W.clone(); o3[M] = mu/sg
            res.setdefault((c.setting,f,"trunc_"+tn+"_rank_z"),[]).append(score(o3,W,M))
    print(c.setting, c.group, c.layer[-20:], flush=True)
for k in sorted(res, key=str): print(src, k, [round(x,4) for x in pooled(res[k])], flush=True)
