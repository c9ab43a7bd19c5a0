import sys, time, math, json, torch
sys.path.insert(0, "/work/wt13/benchmarks"); sys.path.insert(0, "/work/wt13/src")
torch.set_num_threads(1)
import real_sources as rs
from revival.attack import COMPLETERS, retain_top
from revival.attack.complete import spectrum, noise_edge, column_mean_fill

def load(sources=("lm_stdlib","mlp_digits","mini"), concepts=None):
    cases=[]
    for s in sources:
        cases += list(rs.source_cases(s, rs.DEFAULT_CACHE, {"mini":"mini"}, concepts=concepts))
    return cases

def score(completed, W, mask, top=0.6):
    same = (torch.sign(completed)==torch.sign(W))
    kept = retain_top(completed, mask, top)
    return int((same&mask).sum()), int(mask.sum()), int((same&kept).sum()), int(kept.sum())

def svt_complete(W, mask, lam, iters=100, tol=1e-4, start="zero", mnar=None, dtype=torch.float64, stats=None):
    """exact-SVD SoftImpute, holes filled by est (or MNAR function)."""
    X = W.to(dtype); M = mask
    Z = torch.where(M, 0.0, X) if start=="zero" else column_mean_fill(torch.where(M,0.0,X), M)
    vals = Z[M].clone()
    for it in range(iters):
        U,S,Vh = torch.linalg.svd(Z, full_matrices=False)
        s = (S-lam).clamp_min(0)
        L = (U*s)@Vh
        est = L[M]
        new = est if mnar is None else mnar(est, L, X, M)
        rel = float((new-vals).norm()/vals.norm().clamp_min(1e-30))
        vals = new; Z[M] = vals
        if rel < tol: break
    if stats is not None: stats.update(it=it+1, rel=rel, rank=int((s>0).sum()))
    out = X.clone(); out[M] = est
    return out

def pooled(rows):
    a=sum(r[0] for r in rows); b=sum(r[1] for r in rows); c=sum(r[2] for r in rows); d=sum(r[3] for r in rows)
    return a/b, c/d
