"""Matrix completion of the located holes: `fn(W, missing, **params) -> W with estimates at missing`.

Every method keeps the observed entries of `W` exactly and only fills the positions where
`missing` is True. Methods run on CUDA when available (`device=None`), on CPU otherwise, and
return a tensor of `W`'s dtype on `W`'s device. Pass a dict as `stats` to read back how many
iterations ran and whether the tolerance was met.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from revival.attack.holes import (
    column_activation,
    hole_floor,
    hole_like_holdout,
    next_cut_holdout,
    sign_score,
    truncated_mean,
)
from revival.errors import RevivalError
from revival.registry import Registry

COMPLETERS: Registry = Registry("completion method")
COMPLETION_RESERVED = ("device", "stats", "side", "seed")  # set by the attack itself, not by --method-param
LAM_GRID = (1.0, 0.7, 0.5, 0.35, 0.25, 0.15, 0.1)  # x the noise bulk edge (benchmarks/attack_real.py)
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def checked_grid(grid: object) -> list[float]:
    """`lam_grid` as distinct positive finite numbers, largest first; RevivalError otherwise."""
    try:
        values = sorted({float(f) for f in grid}, reverse=True)
    except (TypeError, ValueError):
        values = []
    if not values or not all(math.isfinite(f) and f > 0 for f in values) or isinstance(grid, str):
        raise RevivalError(f"lam_grid must be a list of positive numbers, got {str(grid)[:60]!r}")
    return values


def checked_count(name: str, value: object, least: int = 0) -> int:
    """An integer parameter at least `least`; RevivalError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise RevivalError(f"{name} must be an integer >= {least}, got {str(value)[:60]!r}")
    return value


def as_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """`float32` / `float64` (or a torch dtype) -> torch dtype; RevivalError otherwise."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise RevivalError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`None` -> CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def check_pair(W: Tensor, missing: Tensor) -> None:
    """RevivalError unless W is 2-D and `missing` a bool mask of its shape."""
    if W.ndim != 2 or missing.shape != W.shape or missing.dtype != torch.bool:
        raise RevivalError(f"completion needs a 2-D matrix and a bool mask of its shape, got {tuple(W.shape)} "
                           f"and {tuple(missing.shape)} {missing.dtype}")


def column_mean_fill(X: Tensor, missing: Tensor) -> Tensor:
    """Missing entries set to their column's mean over observed entries (0 for empty columns)."""
    obs = (~missing).to(X.dtype)
    mean = (X * obs).sum(0) / obs.sum(0).clamp_min(1)
    return torch.where(missing, mean.expand_as(X), X)


def record_stats(stats: dict | None, **values) -> None:
    """Copy run information into the caller's `stats` dict, when one was given."""
    if stats is not None:
        stats.update(values)


@COMPLETERS.register("paper")
def paper(W: Tensor, missing: Tensor, *, max_iters: int = 500, tol: float = 1e-5,
          device: str | torch.device | None = None, stats: dict | None = None) -> Tensor:
    """The released attack's SoftImpute (SPEC 2.2): full SVD per step, tau = smallest singular value.

    Column-mean start; each step shrinks all singular values by the iterate's smallest one,
    rebuilds, resets observed entries; stops when ||X_k+1 - X_k||_F / ||X_k||_F < tol (the
    previous iterate, not the one two steps back) or after `max_iters` steps. float64.
    """
    check_pair(W, missing)
    dev = resolve_device(device)
    obs_vals = W.to(dev, torch.float64)
    miss = missing.to(dev)
    X = column_mean_fill(obs_vals, miss)
    it, rel = 0, math.inf
    while it < max_iters:
        U, S, Vh = torch.linalg.svd(X, full_matrices=False)
        Z = (U * (S - S[-1]).clamp_min(0)) @ Vh
        X_new = torch.where(miss, Z, obs_vals)
        rel = float(torch.linalg.norm(X_new - X) / torch.linalg.norm(X).clamp_min(1e-300))
        X, it = X_new, it + 1
        if rel < tol:
            break
    record_stats(stats, iterations=it, converged=rel < tol, last_rel_change=rel, lam=None, rank_used=None,
                 reason="paper: every step shrinks by the iterate's smallest singular value (no fixed lambda)")
    return X.to(W.device, W.dtype)


def mp_median(beta: float) -> float:
    """Median of the Marchenko-Pastur law with aspect ratio beta <= 1 and unit variance."""
    a, b = (1 - math.sqrt(beta)) ** 2, (1 + math.sqrt(beta)) ** 2
    u = torch.linspace(0, 1, 20001, dtype=torch.float64, device="cpu")  # a constant of the law, not of W
    x = a + (b - a) * u**2  # x = a + (b - a) u^2 tames the 1/sqrt(x) edge at x = 0 when beta = 1
    f = torch.sqrt(((b - x) * (x - a)).clamp_min(0)) / (2 * math.pi * beta * x) * 2 * (b - a) * u
    cdf = torch.cumulative_trapezoid(torch.nan_to_num(f, nan=0.0, posinf=0.0), u)
    i = int(torch.searchsorted(cdf / cdf[-1], torch.tensor(0.5, dtype=torch.float64, device="cpu")))
    return float(x[i + 1])


def spectrum(X: Tensor) -> tuple[Tensor, Tensor]:
    """All singular values (descending) and left (m <= n) or right singular vectors, via the Gram matrix."""
    A = X if X.shape[0] <= X.shape[1] else X.T
    ev, vec = torch.linalg.eigh(A @ A.T)
    return ev.flip(0).clamp_min(0).sqrt().to(X.dtype), vec.flip(1).to(X.dtype)


def noise_edge(s: Tensor, shape: tuple[int, int]) -> float:
    """Bulk edge sigma * (sqrt(m) + sqrt(n)) of the noise, sigma from the median singular value.

    Gavish & Donoho (2014): sigma = median(s) / sqrt(n * mu_beta) for an m x n matrix of iid noise
    plus a low-rank signal; soft-thresholding at the bulk edge keeps what stands out of the noise.
    """
    m, n = sorted(shape)
    sigma = float(s.median()) / math.sqrt(n * mp_median(m / n))
    return sigma * (math.sqrt(m) + math.sqrt(n))


def _rel_change(new: Tensor, old: Tensor) -> float:
    """Relative change of the estimates at the missing positions."""
    return float(torch.linalg.norm(new - old) / torch.linalg.norm(old).clamp_min(1e-30))


def product_at(A: Tensor, B: Tensor, lin: Tensor) -> Tensor:
    """(A @ B.T) at flat indices `lin` (a dense product beats gathering rows for a few percent of holes)."""
    return (A @ B.T).view(-1)[lin]


def lambda_and_start(X0: Tensor, lam: float | str, lam_scale: float, rank: int | None,
                     seed: int) -> tuple[float, int, Tensor]:
    """(lambda, rank cap, n x q start subspace) from the zero-filled matrix.

    lam="auto" puts lambda at lam_scale times the noise bulk edge, or at the second singular value
    if that is lower, so the leading component always survives (needs the full spectrum, from an
    eigendecomposition of the Gram matrix, which also gives the start subspace); a number is used
    as is, with a torch.svd_lowrank start. rank=None caps the rank at 1.25 x the number of
    zero-filled singular values above lambda, plus 8.
    """
    m, n = X0.shape
    if lam == "auto":
        s, vec = spectrum(X0)
        lam_v = min(lam_scale * noise_edge(s, (m, n)), float(s[min(1, s.numel() - 1)]))
        q = rank or int(1.25 * int((s > lam_v).sum())) + 8
        q = max(1, min(q, m, n))
        start = X0.T @ vec[:, :q] if m <= n else vec[:, :q]
        return lam_v, q, start
    lam_v = float(lam)
    q = max(1, min(rank or 64, m, n))
    with torch.random.fork_rng(devices=[X0.device] if X0.device.type == "cuda" else []):
        torch.manual_seed(seed)  # svd_lowrank draws from the global generator: seed it without leaking
        _, _, V = torch.svd_lowrank(X0, q=q, niter=2)
    return lam_v, q, V


@COMPLETERS.register("softimpute", choices={"dtype": tuple(DTYPES), "holdout": ("next", "random"),
                                             "lam": ("holdout", "auto")},  # text values a parameter takes
                     checks={"lam_grid": checked_grid, "sigma_every": lambda v: checked_count("sigma_every", v),
                             "tune_rows": lambda v: checked_count("tune_rows", v, 1)})  # what types cannot say
def softimpute(W: Tensor, missing: Tensor, *, lam: float | str = "holdout", lam_scale: float = 1.0,
               lam_grid: tuple[float, ...] = LAM_GRID, holdout: str = "next", holdout_share: float = 0.5,
               holdout_max: int = 20000, mnar: bool = True, mnar_quantile: float = 0.95, rank: int | None = None,
               n_lambdas: int = 1, max_iters: int = 10, tune_iters: int = 10, tune_rows: int = 192, tol: float = 1e-3,
               sigma_every: int = 0,
               device: str | torch.device | None = None, dtype: str = "float32", seed: int = 0,
               stats: dict | None = None) -> Tensor:
    """SoftImpute (Mazumder, Hastie & Tibshirani 2010) with a rank-capped, warm-started fast SVD.

    Z <- S_lambda(P_obs(W) + P_miss(Z)): singular values soft-thresholded by the nuclear-norm weight
    `lam`: "holdout" (default) picks it among `lam_grid` x the noise bulk edge by how well it
    predicts the signs of observed entries hidden as the pruning would have hidden them next
    (`holdout` "next"; "random": a random share of the larger ones), on at most `tune_rows` random
    rows (`choose_lambda`); "auto" is `lam_scale` x the noise bulk edge; a number is used as is.
    `mnar`: holes are filled with the mean of a Gaussian around the estimate truncated to
    |w| >= their floor (`revival.attack.holes`), as pruning removed the large entries. Each step is
    one warm-started subspace iteration at the rank cap. `n_lambdas` > 1 (lam "auto" or a number)
    walks a geometric path from 4 lambda down to lambda. Stops when the missing estimates change by
    < tol or after `max_iters` steps (after the holdout's own `tune_iters` at most): with the MNAR
    fill the estimates keep creeping after the signs have settled (10 or 30 steps: within 0.3
    points of retained sign recovery on every real source), so the budget is small. The MNAR fill's
    residual scale is measured on the first step only (`sigma_every` 0; k: every k steps), so the
    other steps need the holes' estimates alone, never the whole low-rank matrix: half the time on
    SD1.5 shapes and 0.3-0.4 points better on every real source (benchmarks/attack_real.py).
    """
    check_pair(W, missing)
    dev = resolve_device(device)
    X = W.to(dev, as_dtype(dtype))
    miss = missing.to(dev)
    Z = torch.where(miss, torch.zeros((), dtype=X.dtype, device=dev), X)
    a = column_activation(miss)
    info: dict = {}
    if lam == "holdout":
        lam_end, V, info = choose_lambda(X, miss, a, lam_grid, holdout_share, holdout_max, mnar, mnar_quantile,
                                         rank, tune_iters, tune_rows, seed, holdout, sigma_every)
        q = V.shape[1]
    else:
        lam_end, q, V = lambda_and_start(Z, lam, lam_scale, rank, seed)
        info["reason"] = (f"auto: {lam_scale:g} x the noise bulk edge of the zero-filled spectrum" if lam == "auto"
                          else "set by the caller")
    lams = torch.logspace(math.log10(4 * lam_end), math.log10(lam_end), n_lambdas).tolist() \
        if n_lambdas > 1 and lam != "holdout" else [lam_end]
    rows, cols = miss.nonzero(as_tuple=True)
    impute = mnar_impute(X, miss, rows, cols, a, mnar_quantile) if mnar else None
    V, it, rel, kept, est = softimpute_loop(Z, rows, cols, V, lams, max_iters, tol, impute, sigma_every)
    Z.view(-1)[rows * X.shape[1] + cols] = est
    record_stats(stats, iterations=it + info.get("tune_iterations", 0), converged=rel < tol, last_rel_change=rel,
                 lam=lam_end, rank_cap=q, rank_used=kept, mnar=mnar, **info)
    return Z.to(W.device, W.dtype)


def mnar_impute(X: Tensor, miss: Tensor, rows: Tensor, cols: Tensor, a: Tensor, quantile: float
                ) -> Callable[[Tensor, Tensor | None], Tensor]:
    """Hole fill E[w | |w| >= floor] for w ~ N(estimate, sigma_row^2), sigma_row the row's observed residual RMS.

    `impute(est, L)` measures sigma on the whole low-rank matrix L; `impute(est, None)` reuses the last
    sigma, so a step that needs only the holes' estimates skips forming L (see `needs_full`).
    """
    floor = hole_floor(X, miss, a.to(X.device), quantile)[rows, cols]
    obs = ~miss
    n_obs = obs.sum(1).clamp_min(1)
    zero = torch.zeros((), dtype=X.dtype, device=X.device)
    sigma: list[Tensor] = []

    def impute(est: Tensor, L: Tensor | None) -> Tensor:
        if L is not None:
            resid = torch.where(obs, X - L[: X.shape[0]], zero)
            sigma[:] = [(resid.pow(2).sum(1) / n_obs).sqrt().clamp_min(1e-12)[rows]]
        return truncated_mean(est, sigma[0], floor).to(X.dtype)

    return impute


def needs_full(step: int, every: int) -> bool:
    """Whether step `step` re-measures the MNAR fill's residual scale: the first step, then every `every` steps
    (0: the first only)."""
    return step == 0 or (every > 0 and step % every == 0)


def top_singular(Z: Tensor, V: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One warm-started subspace iteration: (U, S, V) of Z's top len(V.T) singular triplets, S descending."""
    Q, _ = torch.linalg.qr(Z @ V)
    B = Q.T @ Z
    ev, Ub = torch.linalg.eigh(B @ B.T)
    S = ev.flip(0).clamp_min(0).sqrt().to(Z.dtype)
    Ub = Ub.flip(1).to(Z.dtype)
    return Q @ Ub, S, (B.T @ Ub) / S.clamp_min(1e-30)


def choose_lambda(X: Tensor, miss: Tensor, a: Tensor, grid: tuple[float, ...], share: float, cap: int, mnar: bool,
                  mnar_quantile: float, rank: int | None, iters: int, max_rows: int, seed: int, mode: str = "next",
                  sigma_every: int = 1) -> tuple[float, Tensor, dict]:
    """Lambda by holdout on the published weights alone: (lambda, start column subspace, record).

    On at most `max_rows` random rows, hides observed entries that look like holes (`mode` "next":
    `next_cut_holdout`, "random": `hole_like_holdout`; at most `cap`), runs SoftImpute on holes +
    hidden entries and at every step scores each factor of `grid` x the noise bulk edge by the
    signs its lambda predicts for the hidden entries (overall and among the top 60%); the fill
    follows the best factor so far. Stops when the choice held for 3 steps or after `iters` steps.
    The noise level, hence the edge of the whole matrix, and the column subspace (rank cap: the
    subsample's rows) come from the same run, so a large matrix needs no full spectrum.
    """
    grid = checked_grid(grid)
    if mode not in ("next", "random"):
        raise RevivalError(f"holdout must be 'next' or 'random', got {mode!r}")
    gen = torch.Generator().manual_seed(seed)
    rows_all = X.shape[0]
    if rows_all > max_rows:
        sub = torch.randperm(rows_all, generator=gen)[:max_rows].sort().values.to(X.device)
        X, miss = X[sub], miss[sub]
    m, n = X.shape
    hidden = hole_like_holdout(X, miss, a.to(X.device), share, gen) if mode == "random" else \
        next_cut_holdout(X, miss, a.to(X.device), share)
    idx = hidden.view(-1).nonzero().squeeze(1)
    if idx.numel() > cap:
        keep = idx[torch.randperm(idx.numel(), generator=gen)[:cap].to(idx.device)]
        hidden = torch.zeros_like(hidden).view(-1).index_fill_(0, keep, True).view_as(hidden)
    both = miss | hidden
    Z = torch.where(both, torch.zeros((), dtype=X.dtype, device=X.device), X)
    s, vec = spectrum(Z)
    edge = noise_edge(s, (m, n))
    to_full = (math.sqrt(rows_all) + math.sqrt(n)) / (math.sqrt(m) + math.sqrt(n))  # sigma (sqrt(m) + sqrt(n))
    lams = torch.tensor(grid, dtype=X.dtype, device=X.device) * edge
    q = max(1, min(rank or int(1.15 * int((s > lams[-1]).sum())) + 8, m, n))
    V = (Z.T @ vec[:, :q]) if m <= n else vec[:, :q]
    if int(hidden.sum()) < 10:
        f = 1.0 if 1.0 in grid else grid[0]
        return f * edge * to_full, V, {"reason": f"too few entries to hide: {f:g} x noise edge", "lam_factor": f}
    rows, cols = both.nonzero(as_tuple=True)
    lin = rows * n + cols
    is_h = hidden[rows, cols]
    hr, hc = rows[is_h], cols[is_h]
    truth = torch.sign(X[hr, hc])
    impute = mnar_impute(X, both, rows, cols, a, mnar_quantile) if mnar else None
    best, held, it, scores = 0, 0, 0, None
    while it < iters and held < 3:
        U, S, V = top_singular(Z, V)
        scores = sign_score((U[hr] * V[hc]) @ (S[:, None] - lams[None, :]).clamp_min(0), truth)
        b = int(scores.argmax())
        held = held + 1 if b == best else 1
        best, it = b, it + 1
        kept = int((S > lams[b]).sum())
        A = U[:, :kept] * (S[:kept] - lams[b])
        if impute is None:
            Z.view(-1)[lin] = product_at(A, V[:, :kept], lin)
        elif needs_full(it - 1, sigma_every):
            L = A @ V[:, :kept].T
            Z.view(-1)[lin] = impute(L.view(-1)[lin], L)
        else:
            Z.view(-1)[lin] = impute(product_at(A, V[:, :kept], lin), None)
    f = grid[best]
    return f * edge * to_full, V, {
        "lam_factor": f, "tune_iterations": it, "holdout": int(is_h.sum()), "tune_rows": m,
        "holdout_scores": {f"{g:g}": round(float(v), 4) for g, v in zip(grid, scores.tolist(), strict=True)},
        "reason": f"holdout: {f:g} x noise edge predicted the signs of {int(is_h.sum())} hidden hole-like entries "
                  f"best (score {float(scores[best]):.3f}; grid {grid[0]:g}..{grid[-1]:g})"}


def softimpute_loop(Z: Tensor, rows: Tensor, cols: Tensor, V: Tensor, lams: list[float], max_iters: int, tol: float,
                    impute: Callable[[Tensor, Tensor | None], Tensor] | None = None, sigma_every: int = 1
                    ) -> tuple[Tensor, int, float, int, Tensor]:
    """SoftImpute steps on Z in place (holes at rows, cols); returns V, iterations, change, rank kept, estimates.

    Each step: Q = qr(Z V), B = Q^T Z, eigh(B B^T) gives the top singular triplets of the projected
    matrix, soft-threshold by lambda, write the low-rank estimates into the holes only.
    `impute(estimates, L)` (L the whole low-rank matrix, formed on the steps `needs_full(step, sigma_every)`
    picks, None on the others) may turn the low-rank estimates into the values written; the last
    low-rank estimates are returned either way.
    """
    n = Z.shape[1]
    lin = rows * n + cols
    vals = Z.new_zeros(rows.numel())
    it, rel, kept, est = 0, math.inf, 0, vals
    for lam_k in lams:
        for _ in range(max_iters):
            U, S, V = top_singular(Z, V)
            kept = int((S > lam_k).sum())
            A = U[:, :kept] * (S[:kept] - lam_k)
            if impute is None:
                est = new = product_at(A, V[:, :kept], lin)
            elif needs_full(it, sigma_every):
                L = A @ V[:, :kept].T
                est = L.view(-1)[lin]
                new = impute(est, L)
            else:
                est = product_at(A, V[:, :kept], lin)
                new = impute(est, None)
            rel = _rel_change(new, vals)
            vals = new
            Z.view(-1)[lin] = vals
            it += 1
            if rel < tol:
                break
    return V, it, rel, kept, est


def als_factors(X: Tensor, rows: Tensor, cols: Tensor, lam: float, U: Tensor, max_iters: int,
                tol: float) -> tuple[Tensor, Tensor, Tensor, int, float]:
    """softImpute-ALS (Hastie, Mazumder, Lee & Zadeh 2015, Alg. 3.1) from start U: returns U, d, V, iters, change.

    Alternating ridge regressions of the current completion on A = U D and B = V D, each followed
    by an SVD re-orthogonalisation; a final SVD step soft-thresholds the singular values by lam.
    X is the zero-filled matrix; its holes (rows, cols) are overwritten in place.
    """
    lin = rows * X.shape[1] + cols
    D = torch.ones(U.shape[1], dtype=X.dtype, device=X.device)
    V = torch.zeros(X.shape[1], U.shape[1], dtype=X.dtype, device=X.device)
    vals = X.new_zeros(rows.numel())
    it, rel = 0, math.inf
    while it < max_iters:
        Bt = (D / (D**2 + lam))[:, None] * (U.T @ X)
        Vt, D2, Rt = torch.linalg.svd(Bt.T * D, full_matrices=False)
        V, D, U = Vt, D2.sqrt(), U @ Rt.T
        X.view(-1)[lin] = product_at(U * D**2, V, lin)
        At = (D / (D**2 + lam))[:, None] * (V.T @ X.T)
        Ut, D2, Rt = torch.linalg.svd(At.T * D, full_matrices=False)
        U, D, V = Ut, D2.sqrt(), V @ Rt.T
        new = product_at(U * D**2, V, lin)
        rel = _rel_change(new, vals)
        vals, it = new, it + 1
        X.view(-1)[lin] = vals
        if rel < tol:
            break
    Uf, s, Rt = torch.linalg.svd(X @ V, full_matrices=False)
    return Uf, (s - lam).clamp_min(0), V @ Rt.T, it, rel


@COMPLETERS.register("als", choices={"dtype": tuple(DTYPES), "lam": ("auto",)})
def als(W: Tensor, missing: Tensor, *, lam: float | str = "auto", lam_scale: float = 1.0, rank: int | None = None,
        max_iters: int = 100, tol: float = 1e-3, device: str | torch.device | None = None,
        dtype: str = "float32", seed: int = 0, stats: dict | None = None) -> Tensor:
    """softImpute-ALS, rank-restricted: the SoftImpute objective solved with factors of rank `rank`.

    `lam` and `rank` as in `softimpute` ("auto": noise bulk edge; rank capped from the zero-filled
    spectrum). Each step costs a few (m x n) @ (n x rank) products and only small SVDs.
    """
    check_pair(W, missing)
    dev = resolve_device(device)
    X = W.to(dev, as_dtype(dtype))
    miss = missing.to(dev)
    X0 = torch.where(miss, torch.zeros((), dtype=X.dtype, device=dev), X)
    lam_v, _, V0 = lambda_and_start(X0, lam, lam_scale, rank, seed)
    U0, _ = torch.linalg.qr(X0 @ V0)
    rows, cols = miss.nonzero(as_tuple=True)
    U, d, V, it, rel = als_factors(X0, rows, cols, lam_v, U0, max_iters, tol)
    out = X.clone()
    lin = rows * X.shape[1] + cols
    out.view(-1)[lin] = product_at(U * d, V, lin)
    record_stats(stats, iterations=it, converged=rel < tol, last_rel_change=rel, lam=lam_v, rank_cap=U.shape[1],
                 rank_used=int((d > 0).sum()), reason=f"auto: {lam_scale:g} x the noise bulk edge of the zero-filled "
                 "spectrum" if lam == "auto" else "set by the caller")
    return out.to(W.device, W.dtype)
