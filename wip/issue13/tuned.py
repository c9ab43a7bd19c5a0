"""Self-tuning MNAR SoftImpute prototype."""
import math, torch
from revival.attack.complete import spectrum, noise_edge
from revival.attack.structured import truncated_mean

GRID = (1.3, 1.15, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2)

def col_activation(miss):
    m = miss.shape[0]
    p = (miss.sum(0).double() + 0.5) / (m + 1)
    return (1 / torch.special.ndtri(1 - p / 2))

def hole_bounds(X, miss, a, q):
    """tau_ij = t_i / a_j at missing positions, t_i = q-quantile over observed of |x| a_j (q=1: max)."""
    S = torch.where(miss, torch.nan, X.abs().double() * a[None, :])
    t = S.nanquantile(q, dim=1) if q < 1 else torch.nan_to_num(S, nan=0.0).amax(1)
    return t[:, None] / a[None, :]

def hidden_like_holes(X, miss, a, share, gen):
    m, n = X.shape
    obs = ~miss
    A = X.abs().double()
    scale = torch.where(obs, A, torch.nan).nanmedian(1).values.clamp_min(1e-30)
    score = torch.where(obs, A / scale[:, None] * a[None, :], -1.0)
    h = miss.sum(1)
    kmax = max(1, min(n, int(2 * h.max())))
    top = score.topk(kmax, dim=1).indices
    cand = torch.arange(kmax)[None, :] < 2 * h[:, None]
    pick = cand & (torch.rand(top.shape, generator=gen) < share)
    H = torch.zeros_like(miss).scatter_(1, top, pick)
    return H & obs

def sign_score(est, truth, top=0.6):
    same = torch.sign(est) == truth
    k = max(1, round(top * est.shape[0]))
    idx = est.abs().topk(k, dim=0).indices
    return 0.5 * (same.float().mean(0) + same.gather(0, idx).float().mean(0))

def tuned(W, missing, grid=GRID, mnar_q=0.95, share=0.25, max_iters=60, tol=1e-3, tune_max=20, dtype=torch.float32,
          seed=0, stats=None, mnar=True, fixed_f=None, chunk=1 << 15):
    m, n = W.shape
    X = W.to(dtype); miss = missing
    obs0 = ~miss
    a = col_activation(miss)
    gen = torch.Generator().manual_seed(seed)
    H = hidden_like_holes(X, miss, a, share, gen) if fixed_f is None else torch.zeros_like(miss)
    allm = miss | H
    Z = torch.where(allm, torch.zeros((), dtype=dtype), X)
    s, vec = spectrum(torch.where(miss, torch.zeros((), dtype=dtype), X))
    ne = noise_edge(s, (m, n))
    sH, _ = spectrum(Z) if H.any() else (s, None)
    neH = noise_edge(sH, (m, n))
    lam_f = 1.0 if fixed_f is None else fixed_f
    fl = 0.6 if fixed_f is None else fixed_f
    q = max(1, min(int(1.15 * int((sH > fl * neH).sum())) + 8, m, n))
    V = Z.T @ vec[:, :q] if m <= n else vec[:, :q]
    rows, cols = allm.nonzero(as_tuple=True)
    lin = rows * n + cols
    isH = H[rows, cols]
    hr, hc = rows[isH], cols[isH]
    truthH = torch.sign(X[hr, hc])
    tau = None
    if mnar:
        tau_all = hole_bounds(X, allm, a, mnar_q)  # bounds wrt augmented observed set
        tau = tau_all[rows, cols].to(dtype)
    obs = ~allm
    nobs = obs.sum(1).clamp_min(1)
    vals = Z.new_zeros(rows.numel())
    it = 0; tuning = fixed_f is None; hist = []; stable = 0; rel = math.inf
    while it < max_iters:
        Q, _ = torch.linalg.qr(Z @ V)
        B = Q.T @ Z
        ev, Ub = torch.linalg.eigh(B @ B.T)
        S = ev.flip(0).clamp_min(0).sqrt()
        Ub = Ub.flip(1)
        V = (B.T @ Ub) / S.clamp_min(1e-30)
        Uf = Q @ Ub
        ref = neH if tuning else ne
        if tuning:
            lams = torch.tensor([f * neH for f in grid], dtype=dtype)
            ok = lams >= S[-1] * 1.02
            # hidden estimates for each lambda: (|H|, G)
            shrink = (S[:, None] - lams[None, :]).clamp_min(0)
            E = torch.cat([(Uf[hr[i:i+chunk]] * V[hc[i:i+chunk]]) @ shrink for i in range(0, hr.numel(), chunk)])
            sc = sign_score(E, truthH[:, None])
            sc = torch.where(ok, sc, -1.0)
            b = int(sc.argmax())
            new_f = grid[b]
            stable = stable + 1 if new_f == lam_f else 0
            lam_f = new_f
            hist.append(lam_f)
            if b == int(ok.nonzero().max()) and not bool(ok.all()) :  # best at the lowest evaluable: widen
                q = min(m, n, int(q * 1.5) + 8)
                extra = torch.randn(n, q - V.shape[1], generator=gen, dtype=dtype)
                V = torch.cat([V, extra], 1)
        lam = lam_f * ref
        kept = int((S[: Uf.shape[1]] > lam).sum())
        A = Uf[:, :kept] * (S[:kept] - lam)
        L = A @ V[:, :kept].T
        est = L.view(-1)[lin]
        if mnar:
            resid = torch.where(obs, X - L, torch.zeros((), dtype=dtype))
            sig = (resid.pow(2).sum(1) / nobs).sqrt().clamp_min(1e-12)[rows]
            fill = truncated_mean(est, sig, tau).to(dtype)
        else:
            fill = est
        rel = float((fill - vals).norm() / vals.norm().clamp_min(1e-30))
        vals = fill
        Z.view(-1)[lin] = vals
        it += 1
        if tuning and ((stable >= 2 and rel < 1e-2) or it >= tune_max):
            # drop the hidden entries: restore them, keep only holes
            tuning = False
            keep = ~isH
            Z[hr, hc] = X[hr, hc]
            rows, cols, lin, vals = rows[keep], cols[keep], lin[keep], vals[keep]
            if mnar:
                tau = hole_bounds(X, miss, a, mnar_q)[rows, cols].to(dtype)
            obs = ~miss; nobs = obs.sum(1).clamp_min(1)
            tune_iters = it
            # q for final lambda
            continue
        if not tuning and rel < tol:
            break
    out = X.clone()
    out.view(-1)[lin] = est if est.numel() == lin.numel() else L.view(-1)[lin]
    if stats is not None:
        stats.update(iterations=it, lam_factor=lam_f, lam=lam_f * ne, rank=kept, rank_cap=q, history=hist,
                     hidden=int(H.sum()), last_rel_change=rel)
    return out
