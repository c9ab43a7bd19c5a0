"""How well a locator finds the pruned positions: precision, recall and AUROC against the true masks."""

from __future__ import annotations

import torch
from torch import Tensor

from revival.errors import RevivalError


def auroc(scores: Tensor, labels: Tensor) -> float | None:
    """Area under the ROC curve of `scores` for bool `labels` (Mann-Whitney U; ties count one half).

    Ranks are averaged over tied scores, so a constant score gives 0.5. None when the labels hold
    only one class.
    """
    s = scores.reshape(-1).double()
    y = labels.reshape(-1).bool()
    if s.numel() != y.numel():
        raise RevivalError(f"auroc: {s.numel()} scores but {y.numel()} labels")
    pos = int(y.sum())
    neg = y.numel() - pos
    if pos == 0 or neg == 0:
        return None
    _, inverse, counts = torch.unique(s, sorted=True, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    avg_rank = ends - (counts.double() - 1) / 2  # 1-based average rank of each distinct value
    rank_sum = float(avg_rank[inverse][y].sum())
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def precision_recall(located: Tensor, truth: Tensor) -> tuple[float | None, float | None]:
    """Share of located entries that are truly pruned, share of pruned entries located (None if 0/0)."""
    hit = int((located & truth).sum())
    n_loc, n_true = int(located.sum()), int(truth.sum())
    return (hit / n_loc if n_loc else None), (hit / n_true if n_true else None)


def _metrics(located: Tensor, score: Tensor, truth: Tensor) -> dict:
    precision, recall = precision_recall(located, truth)
    return {"precision": precision, "recall": recall, "auroc": auroc(score, truth),
            "located": int(located.sum()), "true": int(truth.sum())}


def locator_report(weights: dict[str, Tensor], located: dict[str, Tensor], scores: dict[str, Tensor] | None,
                   masks: dict[str, Tensor]) -> dict:
    """Precision, recall and AUROC overall (all layers pooled) and per layer.

    `masks` are the true pruning masks, keyed like `located`; without `scores` the AUROC is that
    of the binary located mask. `weights` is only used to check shapes.
    """
    names = [n for n in located if n in masks]
    if not names:
        raise RevivalError("locator_report: no layer of the located set has a true mask")
    for n in names:
        if masks[n].shape != located[n].shape or weights[n].shape != located[n].shape:
            raise RevivalError(f"locator_report: {n}: mask {tuple(masks[n].shape)}, located "
                               f"{tuple(located[n].shape)}, weight {tuple(weights[n].shape)} differ")
    located = {n: located[n].cpu() for n in names}  # figures on the CPU, whatever device the attack ran on
    masks = {n: masks[n].cpu() for n in names}
    score = {n: (scores[n].cpu() if scores is not None else located[n].float()) for n in names}
    per_layer = {n: _metrics(located[n].bool(), score[n], masks[n].bool()) for n in names}
    overall = _metrics(torch.cat([located[n].reshape(-1).bool() for n in names]),
                       torch.cat([score[n].reshape(-1).float() for n in names]),
                       torch.cat([masks[n].reshape(-1).bool() for n in names]))
    return {**overall, "per_layer": per_layer}
