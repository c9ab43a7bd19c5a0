"""Completion that uses what the paper's ignores: holes are not missing at random, and side rows.

ConceptPrune zeroed the entries with the largest |W| * activation, so a hole hides a value that
is large in magnitude. `structured` is SoftImpute whose holes are filled, at every step, with the
conditional mean of a Gaussian residual truncated to |w| > t_row (an EM step for censored values)
instead of the plain low-rank estimate. Optionally, fully observed side rows are stacked under
the matrix (for ff.net.2: the GEGLU input weights ff.net.0.proj of the same hidden neurons), so
the column factors must also explain them (collective matrix completion).
"""

from __future__ import annotations

import torch
from torch import Tensor

from revival.attack.complete import (
    COMPLETERS,
    as_dtype,
    check_pair,
    lambda_and_start,
    record_stats,
    resolve_device,
    softimpute_loop,
)
from revival.attack.holes import truncated_mean


def side_features(ffn1_weight: Tensor, hidden: int) -> Tensor:
    """GEGLU input weights (2*hidden, d) -> (2d, hidden): column j holds both input rows of neuron j."""
    if ffn1_weight.ndim != 2 or ffn1_weight.shape[0] != 2 * hidden:
        raise ValueError(f"expected a GEGLU projection of shape (2*{hidden}, d), got {tuple(ffn1_weight.shape)}")
    return torch.cat([ffn1_weight[:hidden].T, ffn1_weight[hidden:].T], 0)


def compress_rows(side: Tensor, k: int) -> Tensor:
    """The k x n projection of `side` on its top-k left singular vectors (keeps its column geometry, fewer rows)."""
    if side.shape[0] <= k:
        return side
    _, vec = torch.linalg.eigh((side @ side.T).to(torch.float64))
    return vec[:, -k:].T.to(side.dtype) @ side


def _solve(X: Tensor, miss: Tensor, side: Tensor | None, side_weight: float, mnar_quantile: float | None,
           lam_scale: float, rank: int | None, max_iters: int, tol: float, seed: int) -> tuple[Tensor, dict]:
    """One structured SoftImpute solve; returns the completed X (holes hold the low-rank estimates) and info."""
    m, n = X.shape
    obs = ~miss
    Z = torch.where(miss, torch.zeros((), dtype=X.dtype, device=X.device), X)
    if side is not None and side_weight > 0:
        scale = Z.pow(2).sum().div(obs.sum().clamp_min(1)).sqrt() / side.pow(2).mean().sqrt().clamp_min(1e-30)
        Z = torch.cat([Z, side_weight * scale * side], 0)
    lam, q, V = lambda_and_start(Z, "auto", lam_scale, rank, seed)
    rows, cols = miss.nonzero(as_tuple=True)
    impute = None
    if mnar_quantile is not None:
        absobs = torch.where(obs, X.abs(), torch.full_like(X, float("nan")))
        thresh = absobs.nanquantile(mnar_quantile, dim=1)[rows]
        n_obs = obs.sum(1).clamp_min(1)

        def impute(est: Tensor, L: Tensor) -> Tensor:
            resid = torch.where(obs, X - L[:m], torch.zeros((), dtype=X.dtype, device=X.device))
            sigma = (resid.pow(2).sum(1) / n_obs).sqrt().clamp_min(1e-12)[rows]
            return truncated_mean(est, sigma, thresh).to(X.dtype)

    V, it, rel, kept, est = softimpute_loop(Z, rows, cols, V, [lam], max_iters, tol, impute)
    Z = Z[:m]
    Z.view(-1)[rows * n + cols] = est
    return Z, {"iterations": it, "converged": rel < tol, "last_rel_change": rel, "lam": lam, "rank_cap": q,
               "rank_used": kept}


def mnar_holdout(X: Tensor, miss: Tensor, generator: torch.Generator, quantile: float = 0.8) -> Tensor:
    """Observed entries hidden to validate choices: large ones (above the row's quantile), about as many as holes."""
    obs = ~miss
    absobs = torch.where(obs, X.abs(), torch.full_like(X, float("nan")))
    cand = obs & (X.abs() >= absobs.nanquantile(quantile, dim=1, keepdim=True))
    p = min(0.5, int(miss.sum()) / max(1, int(cand.sum())))
    return cand & (torch.rand(X.shape, generator=generator, device="cpu").to(X.device) < p)


@COMPLETERS.register("structured", uses_side_info=True,  # gets the GEGLU input weights as `side`
                     choices={"dtype": ("float32", "float64"), "side_weight": ("auto",)})
def structured(W: Tensor, missing: Tensor, *, side: Tensor | None = None, side_weight: float | str = "auto",
               side_weights: tuple[float, ...] = (0.0, 0.5, 1.0), mnar_quantile: float | None = 0.5,
               lam_scale: float = 1.0, rank: int | None = None, max_iters: int = 100, holdout_iters: int = 20,
               tol: float = 1e-3, device: str | torch.device | None = None, dtype: str = "float32",
               seed: int = 0, stats: dict | None = None) -> Tensor:
    """SoftImpute with MNAR-aware hole filling and optional fully observed side rows.

    `side` (k x n): rows stacked under W (first reduced to W's row count along their top singular
    directions), rescaled so their RMS is `side_weight` times that of W's observed entries.
    side_weight="auto" picks among `side_weights` the one whose completion (`holdout_iters` steps)
    best recovers the signs of large observed entries hidden for the purpose, as pruning hides
    large ones. `mnar_quantile`: each row's hole threshold t is this quantile of the row's observed
    |w|; the residual sigma is the row's observed-entry residual RMS; None disables it.
    """
    check_pair(W, missing)
    dev = resolve_device(device)
    X = W.to(dev, as_dtype(dtype))
    miss = missing.to(dev)
    S = None
    if side is not None:
        if side.ndim != 2 or side.shape[1] != W.shape[1]:
            raise ValueError(f"side rows must have {W.shape[1]} columns, got {tuple(side.shape)}")
        S = compress_rows(side.to(dev, X.dtype), W.shape[0])
    scores = {}
    if S is not None and side_weight == "auto":
        hold = mnar_holdout(X, miss, torch.Generator().manual_seed(seed))
        truth = torch.sign(X[hold])
        for w in side_weights:
            Zh, _ = _solve(X, miss | hold, S, w, mnar_quantile, lam_scale, rank, holdout_iters, tol, seed)
            scores[w] = float((torch.sign(Zh[hold]) == truth).float().mean())
        side_weight = max(scores, key=scores.get)
    Z, info = _solve(X, miss, S, 0.0 if S is None else float(side_weight), mnar_quantile, lam_scale, rank,
                     max_iters, tol, seed)
    info["reason"] = f"auto: {lam_scale:g} x the noise bulk edge (side weight {side_weight})"
    record_stats(stats, **info, side_weight=None if S is None else side_weight, holdout_scores=scores)
    return Z.to(W.device, W.dtype)

