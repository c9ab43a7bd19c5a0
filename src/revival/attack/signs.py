"""Step 3 of the attack: trust only the most confident completed signs (SPEC 2.3)."""

from __future__ import annotations

from torch import Tensor

from revival.errors import RevivalError


def check_top_ratio(top_ratio: float) -> None:
    """top_ratio must lie in (0, 1]."""
    if not 0.0 < top_ratio <= 1.0:
        raise RevivalError(f"top_ratio must be in (0, 1], got {top_ratio}")


def retain_top(completed: Tensor, missing: Tensor, top_ratio: float = 0.6) -> Tensor:
    """Bool mask of the round(top_ratio * n_missing) missing positions with the largest |completed| value.

    Per matrix, over the missing positions only; the signs of these values are kept, the other
    missing positions go back to 0.
    """
    check_top_ratio(top_ratio)
    idx = missing.flatten().nonzero().squeeze(1)
    k = round(top_ratio * idx.numel())
    keep = idx[completed.flatten()[idx].abs().topk(k).indices] if k else idx[:0]
    out = missing.new_zeros(missing.numel())
    out[keep] = True
    return out.view_as(missing)
