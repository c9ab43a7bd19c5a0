"""Adaptive locators for defended checkpoints, where the pruned positions hold noise instead of zeros.

Each locator computes a suspicion score per entry (higher = more likely a hidden pruned position)
and marks the top of it as missing. The score functions are registered in `SCORES` under the
locator's name, so evaluation can compute AUROC without thresholds; `zeros` is scored as
(W == 0). The attacker does not know how many positions were pruned: the budget `ratio` is the
share of entries located, per output row for `row_outlier`, `residual` and `neuron` (default
0.02, the skill_ratio of ConceptPrune for objects and styles) and over all selected layers
together for `global_bottom` (default 0.02, the authors' "re-pruned via global 0.02 bottom").
Ties between equal scores are broken at random (seeded), never by position.

- `global_bottom`: the smallest magnitudes (the authors' adaptive attacker).
- `row_outlier`: values that fit a Gaussian fill better than the layer's own weight law.
- `residual`: entries a low-rank approximation explains worst.
- `neuron`: a likelihood-ratio test of "fill" against "low-rank + natural residual", pooled over
  each input neuron (ConceptPrune's holes cluster on skilled neurons); knows the fill law.
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import Tensor

from revival.attack.locate import LOCATORS
from revival.errors import RevivalError
from revival.registry import Registry

Weights = dict[str, Tensor]

SCORES: Registry = Registry("locator score")

MAD_TO_STD = 1.4826
DEFAULT_RATIO = 0.02


def _check_ratio(ratio: float) -> None:
    if not 0 < ratio < 1:
        raise RevivalError(f"locator ratio must be in (0, 1), got {ratio}")


def _top_indices(score: Tensor, k: int, seed: int) -> Tensor:
    """Indices of the k highest scores along the last dim; ties broken at random (seeded)."""
    keys = torch.rand(tuple(score.shape), generator=torch.Generator().manual_seed(seed), device="cpu").to(score.device)
    shuffle = keys.to(score.device).argsort(dim=-1)
    order = score.gather(-1, shuffle).argsort(dim=-1, descending=True, stable=True)[..., :k]
    return shuffle.gather(-1, order)


def top_per_row(score: Tensor, ratio: float, seed: int = 0) -> Tensor:
    """Bool mask of the int(ratio * columns) highest scores of each row (at least one per row)."""
    _check_ratio(ratio)
    k = max(1, int(ratio * score.shape[1]))
    out = torch.zeros(score.shape, dtype=torch.bool, device=score.device)
    return out.scatter_(1, _top_indices(score.float(), k, seed), True)


def top_global(scores: Weights, ratio: float, seed: int = 0) -> dict[str, Tensor]:
    """Bool masks of the round(ratio * total) highest scores over all matrices together."""
    _check_ratio(ratio)
    names = list(scores)
    flat = torch.cat([scores[n].reshape(-1).float() for n in names])
    k = max(1, round(ratio * flat.numel()))
    hit = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    hit[_top_indices(flat, k, seed)] = True
    out, start = {}, 0
    for n in names:
        size = scores[n].numel()
        out[n] = hit[start:start + size].reshape(scores[n].shape)
        start += size
    return out


def _svd(X: Tensor, rank: int, seed: int, niter: int = 4) -> tuple[Tensor, Tensor, Tensor]:
    rank = max(1, min(rank, *X.shape))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.svd_lowrank(X, q=rank, niter=niter)


def lowrank(X: Tensor, rank: int, seed: int = 0) -> Tensor:
    """Rank-`rank` approximation by torch.svd_lowrank, deterministic under `seed` (global RNG untouched)."""
    U, S, V = _svd(X, rank, seed)
    return (U * S) @ V.T


def lowrank_impute(X: Tensor, missing: Tensor, rank: int, iters: int = 5, seed: int = 0) -> Tensor:
    """Low-rank fit that ignores `missing` entries (hard impute: refill them from the fit, refit)."""
    L = lowrank(X, rank, seed)
    for _ in range(iters if missing.any() else 0):
        L = lowrank(torch.where(missing, L, X), rank, seed)
    return L


def loo_prediction(X: Tensor, missing: Tensor, rank: int, iters: int = 3, seed: int = 0) -> Tensor:
    """Leave-one-out low-rank prediction of every entry from the rest of its row.

    Each row is regressed on the top right singular vectors V of the (hard-imputed) matrix; the
    residual of entry (i, j) with that entry left out is (X - L)_ij / (1 - h_j), h_j = ||V_j||^2
    the column's leverage. Without it a corrupted column pulls a singular vector of its own and
    looks perfectly explained.
    """
    filled = torch.where(missing, lowrank_impute(X, missing, rank, iters, seed), X) if missing.any() else X
    U, S, V = _svd(filled, rank, seed)
    leverage = (V * V).sum(1)
    return X - (X - (U * S) @ V.T) / (1 - leverage).clamp_min(1e-3)


def _rank(shape: torch.Size, rank_ratio: float) -> int:
    return max(1, round(rank_ratio * min(shape)))


def _row_mad(X: Tensor) -> Tensor:
    """Robust per-row scale: 1.4826 * median absolute deviation from the row median."""
    med = X.median(dim=1, keepdim=True).values
    return (MAD_TO_STD * (X - med).abs().median(dim=1, keepdim=True).values).clamp_min(1e-12)


def select(name: str, scores: Weights, ratio: float = DEFAULT_RATIO, seed: int = 0) -> dict[str, Tensor]:
    """The located set of adaptive locator `name` from its scores: the top `ratio` overall or per row
    (the `budget` of its registry entry)."""
    if LOCATORS.meta(name).get("budget") == "global":
        return top_global(scores, ratio, seed)
    return {n: top_per_row(s, ratio, seed) for n, s in scores.items()}


@SCORES.register("zeros")
def zeros_scores(weights: Weights) -> Weights:
    """1 where an entry is exactly zero (the paper's locator), 0 elsewhere."""
    return {n: (w == 0).float() for n, w in weights.items()}


@SCORES.register("global_bottom")
def global_bottom_scores(weights: Weights) -> Weights:
    """Minus the magnitude: the smallest weights are the most suspicious."""
    return {n: -w.float().abs() for n, w in weights.items()}


@LOCATORS.register("global_bottom", adaptive=True, budget="global", knows=())
def global_bottom(weights: Weights, ratio: float = DEFAULT_RATIO, seed: int = 0) -> dict[str, Tensor]:
    """The globally smallest `ratio` of magnitudes across all given matrices are missing.

    The authors' adaptive attacker against Gaussian obfuscation. Catches fills that are small
    (low noise scale) and plain zeros; blind to fills of typical magnitude.
    """
    return select("global_bottom", global_bottom_scores(weights), ratio, seed)


def pooled_log_density(ref: Tensor, at: Tensor, bins: int = 256, span: float = 10.0) -> Tensor:
    """Log of the smoothed histogram density of all entries of `ref`, evaluated at each entry of `at`.

    The histogram covers [-span, span]; a 1-4-6-4-1 kernel smooths it and half a count per bin
    keeps empty bins finite. Points outside the range get the density of an empty bin.
    """
    hist = torch.histc(ref, bins=bins, min=-span, max=span)  # out-of-range values are ignored
    kernel = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=hist.dtype, device=hist.device) / 16.0
    hist = torch.nn.functional.conv1d(hist.view(1, 1, -1), kernel.view(1, 1, -1), padding=2).view(-1)
    width = 2 * span / bins
    total = ref.numel() + 0.5 * bins
    log_dens = ((hist + 0.5) / total / width).log()
    inside = at.abs() < span
    idx = ((at.clamp(-span, span) + span) / width).long().clamp(0, bins - 1)
    return torch.where(inside, log_dens[idx], torch.tensor(0.5 / total / width, device=at.device).log())


@SCORES.register("row_outlier")
def row_outlier_scores(weights: Weights, scale: float = 1.0) -> Weights:
    """Per-entry log likelihood ratio: Gaussian fill N(mu_row, (scale * sigma_row)^2) vs the layer's rows.

    Entries are standardised by their row's mean and standard deviation; the alternative is the
    density of all standardised entries of the layer (a smoothed histogram, so heavy tails and the
    row-to-row shape are learned from the matrix itself). `scale` is the attacker's guess of the
    defender's noise scale.
    """
    if scale <= 0:
        raise RevivalError(f"row_outlier scale must be > 0, got {scale}")
    out = {}
    for n, w in weights.items():
        X = w.float()
        u = (X - X.mean(1, keepdim=True)) / X.std(1, keepdim=True).clamp_min(1e-12)
        log_gauss = -0.5 * (u / scale) ** 2 - math.log(scale * math.sqrt(2 * math.pi))
        out[n] = log_gauss - pooled_log_density(u, u)
    return out


@LOCATORS.register("row_outlier", adaptive=True, budget="row", knows=("scale",))
def row_outlier(weights: Weights, ratio: float = DEFAULT_RATIO, scale: float = 1.0, seed: int = 0) -> dict[str, Tensor]:
    """Per row, the `ratio` of entries that look most like Gaussian fill rather than the layer's own law.

    A per-row statistical test on values alone: strong when the fill's law differs from the
    weights' (too small, too large, or Gaussian against heavy tails); blind when they match.
    """
    return select("row_outlier", row_outlier_scores(weights, scale), ratio, seed)


@SCORES.register("residual")
def residual_scores(weights: Weights, ratio: float = DEFAULT_RATIO, rank_ratio: float = 0.1, refits: int = 2,
                    seed: int = 0) -> Weights:
    """|W - P| over the row's robust residual scale, P the leave-one-out low-rank prediction.

    P has rank round(rank_ratio * min(m, n)); after each fit the top `ratio` per row are treated
    as missing and P is refitted without them (`refits` times), so the fills do not bend the fit.
    """
    out = {}
    for n, w in weights.items():
        X = w.float()
        rank = _rank(X.shape, rank_ratio)
        suspects = torch.zeros(X.shape, dtype=torch.bool, device=X.device)
        for _ in range(refits + 1):
            R = X - loo_prediction(X, suspects, rank, seed=seed)
            z = R.abs() / _row_mad(R)
            suspects = top_per_row(z, ratio, seed)
        out[n] = z
    return out


@LOCATORS.register("residual", adaptive=True, budget="row", knows=())
def residual(weights: Weights, ratio: float = DEFAULT_RATIO, rank_ratio: float = 0.1, refits: int = 2,
             seed: int = 0) -> dict[str, Tensor]:
    """Per row, the `ratio` of entries a low-rank approximation of the matrix explains worst.

    Catches any fill that ignores the matrix's low-rank structure (Gaussian noise at any scale,
    zeros where the fit is far from zero); blind to fills drawn from that structure itself.
    """
    return select("residual", residual_scores(weights, ratio, rank_ratio, refits, seed), ratio, seed)


def _residual_log_density(x: Tensor, R: Tensor, scale: float = 1.0) -> Tensor:
    """Log density at x of the residual law of R (rows standardised by their MAD, pooled) stretched by `scale`."""
    mad = _row_mad(R)
    return pooled_log_density(R / mad, x / (mad * scale)) - (mad * scale).log()


def fill_log_likelihood_ratio(X: Tensor, L: Tensor, fill: str, scale: float, gamma: float) -> Tensor:
    """log p(X | the entry is the defender's fill) - log p(X | the entry is L + natural residual).

    The natural residual law is learned from the matrix (all residuals X - L, standardised per
    row by their MAD, pooled). The fill law: `gaussian` = N(row mean, (scale * row std)^2);
    `lowrank` = gamma * L + scale * (a draw of the residual law).
    """
    R = X - L
    null = _residual_log_density(R, R)
    if fill == "gaussian":
        mu, sd = X.mean(1, keepdim=True), X.std(1, keepdim=True).clamp_min(1e-12) * scale
        alt = -0.5 * ((X - mu) / sd) ** 2 - (sd * math.sqrt(2 * math.pi)).log()
    elif fill == "lowrank":
        alt = _residual_log_density(X - gamma * L, R, scale)
    else:
        raise RevivalError(f"unknown fill law {fill!r}; known: gaussian, lowrank")
    return alt - null


@SCORES.register("neuron")
def neuron_scores(weights: Weights, ratio: float = DEFAULT_RATIO, fill: str = "gaussian", scale: float = 1.0,
                  gamma: float = 0.0, rank_ratio: float = 0.1, column_weight: float = 20.0, refits: int = 0,
                  seed: int = 0) -> Weights:
    """Per-entry fill log-likelihood ratio plus `column_weight` times its mean over the entry's column.

    ConceptPrune prunes the weights of a concept's skilled neurons (columns of ff.net.2), so the
    fills cluster in columns; pooling the evidence of a whole column finds them even when each
    entry alone is ambiguous. P is the leave-one-out low-rank prediction (rank
    round(rank_ratio * min(m, n))), refitted `refits` times without the current top `ratio` per row.
    """
    if scale <= 0:
        raise RevivalError(f"neuron scale must be > 0, got {scale}")
    out = {}
    for n, w in weights.items():
        X = w.float()
        rank = _rank(X.shape, rank_ratio)
        suspects = torch.zeros(X.shape, dtype=torch.bool, device=X.device)
        for _ in range(refits + 1):
            P = loo_prediction(X, suspects, rank, seed=seed)
            llr = fill_log_likelihood_ratio(X, P, fill, scale, gamma).clamp(-50, 50)
            z = llr + column_weight * llr.mean(0, keepdim=True)
            suspects = top_per_row(z, ratio, seed)
        out[n] = z
    return out


@LOCATORS.register("neuron", adaptive=True, budget="row", knows=("fill", "scale", "gamma"))
def neuron(weights: Weights, ratio: float = DEFAULT_RATIO, fill: str = "gaussian", scale: float = 1.0,
           gamma: float = 0.0, rank_ratio: float = 0.1, column_weight: float = 20.0, refits: int = 0,
           seed: int = 0) -> dict[str, Tensor]:
    """Per row, the `ratio` of entries most likely to be fills, judged with their whole input neuron.

    The informed adaptive attacker: it knows the defense's fill law (`fill`, `scale`, `gamma`)
    and that ConceptPrune's holes cluster on skilled neurons. Blind to fills whose law equals the
    matrix's own (`lowrank` with gamma = 1, scale = 1).
    """
    scores = neuron_scores(weights, ratio, fill, scale, gamma, rank_ratio, column_weight, refits, seed)
    return select("neuron", scores, ratio, seed)


def locate_with_scores(name: str, weights: Weights, **params) -> tuple[dict[str, Tensor], Weights | None]:
    """(located set, suspicion scores) of locator `name`, the scores computed once.

    Scores are None for a locator that registered none. Parameters are checked against the
    locator's signature.
    """
    fn = LOCATORS.get(name)
    try:
        inspect.signature(fn).bind(weights, **params)
    except TypeError as e:
        raise RevivalError(f"locator {name!r}: {e}") from None
    if name not in SCORES:
        return fn(weights, **params), None
    score_fn = SCORES.get(name)
    accepted = inspect.signature(score_fn).parameters
    scores = score_fn(weights, **{k: v for k, v in params.items() if k in accepted})
    if not LOCATORS.meta(name).get("adaptive"):
        return fn(weights, **params), scores
    return select(name, scores, params.get("ratio", DEFAULT_RATIO), params.get("seed", 0)), scores
