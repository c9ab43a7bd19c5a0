import sys; sys.path.insert(0,"/tmp/exp")
from harness import *
src = sys.argv[1]; settings = sys.argv[2].split(",")
SHARE = float(sys.argv[3]) if len(sys.argv)>3 else 0.5
if src.startswith("mini"):
    cases = [c for c in load(("mini",), ["star","neon","cage","ball","moon"]) if c.setting in settings]
else:
    cases = [c for c in rs.wanda_cases(src, rs.DEFAULT_CACHE/src) if c.setting in settings]

def ndtri(p): return torch.special.ndtri(p)

def hidden_like_holes(W, M, share, seed):
    m,n = W.shape
    cnt = M.sum(0).double()
    p = (cnt+0.5)/(m+1)
    z = ndtri(1-p/2)            # |w|/sigma threshold for this column's hole rate
    a = 1/z
    obs = ~M
    A = W.abs().double()
    rs_ = torch.where(obs, A, torch.nan).nanmedian(1).values/0.6745
    score = torch.where(obs, A/rs_[:,None]*a[None,:], -1.0)
    h = M.sum(1)
    kmax = int(2*h.max())
    top = score.topk(min(kmax,n), dim=1).indices
    rank_ok = torch.arange(top.shape[1])[None,:] < 2*h[:,None]
    g = torch.Generator().manual_seed(seed)
    pick = rank_ok & (torch.rand(top.shape, generator=g) < share)
    H = torch.zeros_like(M)
    H.scatter_(1, top, pick)
    return H & obs

def path(W, M, lams, iters=100, tol=1e-4):
    X = W.double(); Z = torch.where(M, 0.0, X); vals = Z[M].clone(); outs=[]
    for lam in lams:
        for it in range(iters):
            U,S,Vh = torch.linalg.svd(Z, full_matrices=False)
            L = (U*(S-lam).clamp_min(0))@Vh
            est = L[M]
            rel = float((est-vals).norm()/vals.norm().clamp_min(1e-30)); vals=est; Z[M]=vals
            if rel<tol: break
        outs.append(L.clone())
    return outs

res = {}; picks=[]
for ci,c in enumerate(cases):
    W, M = c.weight, c.mask
    Wp = torch.where(M, 0.0, W)
    s,_ = spectrum(Wp.double()); ne = noise_edge(s, tuple(W.shape))
    fr = [0.3,0.5,0.6,0.7,0.8,0.9,1.0,1.1,1.2]
    lams = sorted([f*ne for f in fr], reverse=True)
    # truth path on holes
    truth = path(W, M, lams)
    tsc = [score(torch.where(M, L.float(), W), W, M) for L in truth]
    # hidden selection (2 folds)
    hsc = [[0,0,0,0] for _ in lams]
    for fold in range(2):
        H = hidden_like_holes(W, M, SHARE, seed=ci*10+fold)
        sh,_ = spectrum(torch.where(M|H,0.0,W).double()); neh = noise_edge(sh, tuple(W.shape))
        outs = path(W, M|H, [l/ne*neh for l in lams])
        for i,L in enumerate(outs):
            sc = score(torch.where(H, L.float(), W), W, H)
            for j in range(4): hsc[i][j]+=sc[j]
    hacc = [x[0]/x[1] for x in hsc]; hret=[x[2]/x[3] for x in hsc]
    b = max(range(len(lams)), key=lambda i: hacc[i]+hret[i])
    bt = max(range(len(lams)), key=lambda i: tsc[i][2]/tsc[i][3])
    picks.append((lams[b]/ne, lams[bt]/ne))
    res.setdefault((c.setting,"holdout"),[]).append(tsc[b])
    res.setdefault((c.setting,"oracle_lam"),[]).append(tsc[bt])
    for i,l in enumerate(lams): res.setdefault((c.setting,f"ne{l/ne:.1f}"),[]).append(tsc[i])
    out = COMPLETERS.get("paper")(Wp, M, device="cpu")
    res.setdefault((c.setting,"paper"),[]).append(score(out,W,M))
    print(c.group, c.setting, c.layer[-22:], "hidden", int(H.sum()), "holes", int(M.sum()), "pick", round(lams[b]/ne,2), "best", round(lams[bt]/ne,2),
          "hid acc", [round(x,3) for x in hacc], "true ret", [round(t[2]/t[3],3) for t in tsc], flush=True)
for k in sorted(res): print(src, k, [round(x,4) for x in pooled(res[k])], flush=True)
