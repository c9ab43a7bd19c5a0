import sys; sys.path.insert(0,"/tmp/exp")
from harness import *
from mnar import *
src = sys.argv[1]; settings = sys.argv[2].split(",")
if src.startswith("mini"):
    cases = [c for c in load(("mini",), ["star","neon","cage","ball","moon"]) if c.setting in settings]
else:
    cases = [c for c in rs.wanda_cases(src, rs.DEFAULT_CACHE/src) if c.setting in settings]
res={}
for c in cases:
    W,M = c.weight.double(), c.mask
    s,_ = spectrum(torch.where(M,0.0,W)); ne = noise_edge(s, tuple(W.shape))
    T = tau_bound(W, M)
    Tq = tau_bound(W, M, 0.95)
    tr = W.abs()[M]; 
    print(c.setting, c.layer[-20:], "tau<=|w| share", round(float((T[M]<=tr).double().mean()),3), "q.95", round(float((Tq[M]<=tr).double().mean()),3),
          "corr log", round(float(torch.corrcoef(torch.stack([T[M].log(), tr.log()]))[0,1]),3), "median |w|/tau", round(float((tr/T[M]).median()),3), flush=True)
    obs = ~M
    for f in (0.5,0.7,0.9):
        lam=f*ne
        out = svt_complete(W, M, lam, iters=200)
        res.setdefault((c.setting,f,"plain"),[]).append(score(out,W,M))
        for tn,TT in (("tmax",T),("tq95",Tq)):
            tt = TT[M]
            def trunc(est, L, X, Mk, tt=tt):
                resid = torch.where(obs, X-L, 0.0)
                sig = (resid.pow(2).sum(1)/obs.sum(1)).sqrt()
                rows = Mk.nonzero()[:,0]
                return truncated_mean(est, sig[rows], tt)
            def hard(est, L, X, Mk, tt=tt):
                return torch.sign(est)*torch.maximum(est.abs(), tt)
            for mn, fn in (("trunc",trunc),("hard",hard)):
                st={}
                out = svt_complete(W, M, lam, iters=200, mnar=fn, stats=st)   # returns est at holes
                res.setdefault((c.setting,f,mn+"_"+tn+"_est"),[]).append(score(out,W,M))
                # value returned = mnar fill
                Z = torch.where(M, 0.0, W); 
                fill = fn(out[M], out, W, M)
                o2 = W.clone(); o2[M]=fill
                res.setdefault((c.setting,f,mn+"_"+tn+"_fill"),[]).append(score(o2,W,M))
        # structured's row-median rule
        out = COMPLETERS.get("structured")(torch.where(M,0.0,W).float(), M, device="cpu", lam_scale=f, max_iters=200, tol=1e-4)
        res.setdefault((c.setting,f,"structured_q.5"),[]).append(score(out.double(),W,M))
for k in sorted(res, key=str): print(src, k, [round(x,4) for x in pooled(res[k])], flush=True)
