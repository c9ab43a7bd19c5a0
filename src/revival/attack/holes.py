"""What the pruned weights themselves say about their holes: hole-like held-out entries and MNAR floors.

Pruning (ConceptPrune, WANDA) zeroes, per output row, the entries with the largest |w_ij| x a_j,
a_j the activation norm of input column j. The attacker does not know a, but a column's share of
holes grows with a_j: if |w| in a row were Gaussian with scale s_i, a hole share p_j means
s_i a_j z_(1 - p_j / 2) ~ t_i (the row's cut), so a_j ~ 1 / z_(1 - p_j / 2). From that estimate:
- entries to hide for choosing lambda look like holes (large |w| a_j in their row);
- the holes are missing not at random: |w_ij| >= t_i / a_j, with t_i the largest observed
  |w| a_j of row i (every observed score is below the cut), a floor the completion can use.
Only the published (pruned) weights are read.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

SQRT2 = math.sqrt(2.0)
INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


def truncated_mean(mu: Tensor, sigma: Tensor, t: Tensor) -> Tensor:
    """E[w | |w| > t] for w ~ N(mu, sigma^2), computed stably with the scaled complementary erf."""
    mu, sigma, t = (x.to(torch.float64) for x in (mu, sigma, t))
    a = ((t - mu) / sigma).clamp(min=-8.0)
    b = ((t + mu) / sigma).clamp(min=-8.0)
    w_pos = torch.sigmoid((b * b - a * a) / 2)  # share of exp(-a^2/2) in exp(-a^2/2) + exp(-b^2/2)
    tail_a = 0.5 * torch.special.erfcx(a / SQRT2)
    tail_b = 0.5 * torch.special.erfcx(b / SQRT2)
    num = w_pos * (mu * tail_a + sigma * INV_SQRT2PI) + (1 - w_pos) * (mu * tail_b - sigma * INV_SQRT2PI)
    den = w_pos * tail_a + (1 - w_pos) * tail_b
    return num / den.clamp_min(1e-300)


def column_activation(missing: Tensor) -> Tensor:
    """Relative activation norm of every column from its hole share p_j: 1 / z_(1 - p_j / 2) (float64)."""
    m = missing.shape[0]
    p = (missing.sum(0).double() + 0.5) / (m + 1)
    return 1.0 / torch.special.ndtri(1 - p / 2)


def hole_floor(X: Tensor, missing: Tensor, a: Tensor, quantile: float = 1.0) -> Tensor:
    """Per matrix entry, the MNAR floor t_i / a_j of |w_ij| at a hole, t_i the `quantile` of row i's observed |w| a_j.

    quantile 1 (the row's largest observed score) is exact for one WANDA cut with the true a; a
    lower one allows for an estimated a and for cuts that spare some top entries (ConceptPrune
    keeps a top entry when it scores higher on the base prompts).
    """
    a = a.to(X.dtype)
    score = torch.where(missing, torch.full((), -1.0, dtype=X.dtype, device=X.device), X.abs() * a)
    idx = ((1 - quantile) * ((~missing).sum(1, keepdim=True) - 1).clamp_min(0)).floor().long()
    top = score.topk(int(idx.max()) + 1, dim=1).values
    return (top.gather(1, idx).clamp_min(0) / a).double()


def hole_like_holdout(X: Tensor, missing: Tensor, a: Tensor, share: float, generator: torch.Generator) -> Tensor:
    """Observed entries to hide: per row i with h_i holes, each of its 2 h_i largest observed |w| a_j w.p. `share`."""
    obs = ~missing
    n = X.shape[1]
    score = torch.where(obs, X.abs().double() * a, torch.full((), -1.0, dtype=torch.float64, device=X.device))
    h = missing.sum(1)
    k = max(1, min(n, int(2 * h.max())))
    top = score.topk(k, dim=1).indices
    in_band = torch.arange(k, device=X.device)[None, :] < 2 * h[:, None]
    pick = in_band & (torch.rand(top.shape, generator=generator).to(X.device) < share)
    return torch.zeros_like(missing).scatter_(1, top, pick) & obs


def next_cut_holdout(X: Tensor, missing: Tensor, a: Tensor, share: float) -> Tensor:
    """Observed entries to hide as the pruning would next: per row i, its ceil(share x h_i) largest observed |w| a_j."""
    score = torch.where(missing, torch.full((), -1.0, dtype=torch.float64, device=X.device), X.abs().double() * a)
    k_row = (share * missing.sum(1)).ceil().long()
    k = max(1, min(X.shape[1], int(k_row.max())))
    top = score.topk(k, dim=1).indices
    pick = torch.arange(k, device=X.device)[None, :] < k_row[:, None]
    return torch.zeros_like(missing).scatter_(1, top, pick) & ~missing


def sign_score(est: Tensor, truth: Tensor, top_ratio: float = 0.6) -> Tensor:
    """Per column of `est` (one column per candidate): mean of overall and top-`top_ratio` sign agreement."""
    same = (torch.sign(est) == truth[:, None]).to(est.dtype)
    k = max(1, round(top_ratio * est.shape[0]))
    idx = est.abs().topk(k, dim=0).indices
    return 0.5 * (same.mean(0) + same.gather(0, idx).mean(0))
