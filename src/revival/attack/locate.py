"""Step 1 of the attack: find the missing (pruned) entries of each selected weight matrix.

A locator is `fn(weights: dict[str, Tensor], **params) -> dict[str, BoolTensor]` (True = missing),
registered in `LOCATORS` with its metadata: `adaptive` (it takes a budget `ratio`, the share of
entries it calls missing), `budget` ("row" or "global": where that share is counted) and `knows`
(the defense settings an informed attacker gives it). `locate` runs one and adds per-layer counts and warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from revival.errors import RevivalError
from revival.registry import Registry
from revival.validate import check_kwargs

LOCATORS: Registry = Registry("locator")


@LOCATORS.register("zeros", adaptive=False, knows=())
def zeros(weights: dict[str, Tensor], **params) -> dict[str, Tensor]:
    """Exact zeros are missing: what ConceptPrune leaves behind (SPEC 2.1)."""
    if params:
        raise RevivalError(f"locator 'zeros' takes no parameters, got {', '.join(params)}")
    return {name: w == 0 for name, w in weights.items()}


@dataclass
class Located:
    """Missing-entry masks, their per-layer counts, and warnings worth showing the user."""

    masks: dict[str, Tensor]
    counts: dict[str, int]
    warnings: list[str] = field(default_factory=list)


def empty_lines(mask: Tensor) -> tuple[int, int]:
    """(number of wholly missing rows, number of wholly missing columns) of a 2-D mask."""
    return int(mask.all(1).sum()), int(mask.all(0).sum())


def locate(weights: dict[str, Tensor], locator: str = "zeros", **params) -> Located:
    """Run a registered locator; error when nothing is missing or a matrix has no surviving entry,
    warn on wholly missing rows/columns."""
    fn = LOCATORS.get(locator)
    check_kwargs(fn, params, f"locator {locator!r}")
    masks = fn(weights, **params)
    bad = [k for k, m in masks.items() if m.dtype != torch.bool or m.shape != weights[k].shape]
    if bad:
        raise RevivalError(f"locator {locator!r} returned a mask of the wrong type or shape for {bad[0]}")
    counts = {k: int(m.sum()) for k, m in masks.items()}
    if not any(counts.values()):
        raise RevivalError(f"nothing to revive: locator {locator!r} found no missing entry in the {len(weights)} "
                           "selected layers (is this checkpoint pruned, and are these the pruned layers?)")
    empty = [k for k, m in masks.items() if m.all()]
    if empty:
        raise RevivalError(f"nothing to complete from: every entry of {empty[0]} ({masks[empty[0]].numel()} weights) "
                           f"is missing by locator {locator!r}, so no surviving weight is left to revive it from")
    warnings = []
    for name, m in masks.items():
        rows, cols = empty_lines(m)
        if rows or cols:
            warnings.append(f"{name}: {rows} whole row(s) and {cols} whole column(s) are missing; completion has "
                            "nothing to go on there and row statistics fall back to the whole matrix")
    return Located(masks, counts, warnings)
