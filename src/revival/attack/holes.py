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


def hole_floor(X: Tensor, missing: Tensor, a: Tensor) -> Tensor:
    """Per matrix entry, the MNAR floor t_i / a_j of |w_ij| at a hole (t_i: row i's largest observed |w| a_j)."""
    score = torch.where(missing, torch.zeros((), dtype=torch.float64, device=X.device), X.abs().double() * a)
    return score.amax(1, keepdim=True) / a


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


def sign_score(est: Tensor, truth: Tensor, top_ratio: float = 0.6) -> Tensor:
    """Per column of `est` (one column per candidate): mean of overall and top-`top_ratio` sign agreement."""
    same = (torch.sign(est) == truth[:, None]).to(est.dtype)
    k = max(1, round(top_ratio * est.shape[0]))
    idx = est.abs().topk(k, dim=0).indices
    return 0.5 * (same.mean(0) + same.gather(0, idx).mean(0))
