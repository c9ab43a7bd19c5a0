"""The adaptive attacker's choice among its locators, from the published weights alone (no masks, no truth).

First: trained float weights hold essentially no exact zeros, so a layer set with more than
`EXPOSED_ZERO_SHARE` of them shows its pruned positions, and the attacker takes them (the paper's
plain attack). The held-out score below cannot see that: a locator that removes outliers leaves a
matrix that is easier to complete, so it scores higher without finding a single hole.
Otherwise, for each candidate located set, a random share of the entries it leaves observed is hidden as
well; the matrices are completed, and the candidate scores the share of hidden entries among the
most confident `top_ratio` of them whose completed sign equals the published one. A locator that
leaves the defender's fills among the observed entries corrupts the low-rank structure the
completion relies on, so it predicts held-out entries worse; a good one leaves clean weights.
"""

from __future__ import annotations

import zlib

import torch
from torch import Tensor

from revival.attack.complete import COMPLETERS
from revival.attack.signs import retain_top

EXPOSED_ZERO_SHARE = 1e-3


def zero_share(weights: dict[str, Tensor]) -> float:
    """Share of exactly-zero entries over the attacked layers of the published weights."""
    total = sum(W.numel() for W in weights.values())
    return sum(int((W == 0).sum()) for W in weights.values()) / total if total else 0.0


def holdout_sign_score(weights: dict[str, Tensor], located: dict[str, Tensor], method: str = "softimpute",
                       share: float = 0.02, top_ratio: float = 0.6, seed: int = 0) -> float:
    """Sign agreement on hidden observed entries (pooled over layers) after completing `located` plus them."""
    complete = COMPLETERS.get(method)
    match = total = 0
    for name, W in weights.items():
        W = W.float()
        g = torch.Generator().manual_seed((seed * 1_000_003 + zlib.crc32(name.encode())) % (2**63))
        loc = located[name].to(W.device)
        hidden = (~loc) & (W != 0) & (torch.rand(W.shape, generator=g, device="cpu").to(W.device) < share)
        if not hidden.any():
            continue
        Z = complete(W.masked_fill(loc | hidden, 0), loc | hidden).float()
        kept = retain_top(Z, hidden, top_ratio)
        match += int((kept & (Z.sign() == W.sign())).sum())
        total += int(kept.sum())
    return match / total if total else 0.0


def choose(weights: dict[str, Tensor], candidates: dict[str, dict[str, Tensor]], **score_params) -> tuple[str, dict]:
    """(name of the best candidate, every candidate's held-out score): the attacker's data-free choice."""
    scores = {name: holdout_sign_score(weights, loc, **score_params) for name, loc in candidates.items()}
    return max(scores, key=scores.get), scores
