"""ConceptPrune's scoring as pure tensor functions: activation norms, WANDA masks, union over steps."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def normalised_sq_colsum(x: torch.Tensor) -> torch.Tensor:
    """Sum over tokens of squared entries after L2-normalising each token row; shape (in_features,).

    `x` is any (..., in_features) activation; it is flattened to (tokens, in_features). Summing
    these over batches and taking the square root gives the column L2 norm of the whole stack.
    """
    rows = x.detach().reshape(-1, x.shape[-1]).float()
    rows = torch.nn.functional.normalize(rows, dim=1)
    return rows.square().sum(0)


def wanda_mask(
    weight: torch.Tensor, norm_base: torch.Tensor, norm_target: torch.Tensor, skill_ratio: float
) -> torch.Tensor:
    """Skilled weights of one (step, layer): per output row the top-k target WANDA scores that beat base.

    Scores are |W| * column norm (broadcast over rows); k = int(skill_ratio * in_features).
    Returns a bool mask shaped like `weight`.
    """
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-D, got shape {tuple(weight.shape)}")
    in_features = weight.shape[1]
    if norm_base.shape != (in_features,) or norm_target.shape != (in_features,):
        raise ValueError(f"norms must have shape ({in_features},), got {tuple(norm_base.shape)} "
                         f"and {tuple(norm_target.shape)}")
    k = int(skill_ratio * in_features)
    mask = torch.zeros(weight.shape, dtype=torch.bool, device=weight.device)
    if k == 0:
        return mask
    magnitude = weight.detach().abs().float()
    s_target = magnitude * norm_target.float().to(weight.device)
    s_base = magnitude * norm_base.float().to(weight.device)
    top = s_target.topk(k, dim=1).indices
    mask.scatter_(1, top, True)
    return mask & (s_target > s_base)


def union_over_steps(masks: Sequence[torch.Tensor] | torch.Tensor, select_ratio: float = 0.0) -> torch.Tensor:
    """Positions selected in more than `select_ratio * T` of the T per-step masks (0 = plain union)."""
    stack = torch.stack(list(masks)) if not isinstance(masks, torch.Tensor) else masks
    if stack.shape[0] == 0:
        raise ValueError("no per-step masks to combine")
    count = stack.to(torch.int32).sum(0)
    return count > select_ratio * stack.shape[0]
