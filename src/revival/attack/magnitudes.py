"""Step 4 of the attack: the values written at the retained positions (SPEC 2.4 and its ablations).

A rule is `fn(W, completed, missing, retained, *, generator, reference) -> Tensor`: a matrix of
W's shape whose entries at `retained` are the signed values to write (elsewhere ignored). W is
the attacked matrix, `completed` its completion, `missing` the located holes. Rules named in
with `needs_reference=True` in their registry entry are research ablations (oracles) that read the
original (unpruned) matrix `reference`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from revival.errors import RevivalError
from revival.registry import Registry

MAGNITUDES: Registry = Registry("magnitude rule")


@dataclass
class RowStats:
    """Per output row, over the surviving (not missing, non-zero) weights: mean, std and max of |w|."""

    mean: Tensor
    std: Tensor
    max: Tensor


def row_stats(W: Tensor, missing: Tensor) -> RowStats:
    """Row statistics of |w| over surviving weights; rows with none fall back to the whole matrix."""
    A = W.abs().float()
    alive = (~missing) & (W != 0)
    cnt = alive.sum(1).float()
    mean = torch.where(alive, A, 0).sum(1) / cnt.clamp_min(1)
    var = torch.where(alive, (A - mean[:, None]) ** 2, 0).sum(1) / cnt.clamp_min(1)
    mx = torch.where(alive, A, 0).amax(1)
    if alive.any():
        vals = A[alive]
        empty = cnt == 0
        mean = torch.where(empty, vals.mean(), mean)
        var = torch.where(empty, vals.var(unbiased=False), var)
        mx = torch.where(empty, vals.max(), mx)
    return RowStats(mean, var.sqrt(), mx)


def _sample(stats: RowStats, shape: torch.Size, generator: torch.Generator) -> Tensor:
    """|N(mu_row, sigma_row)| drawn for every position (seeded)."""
    z = torch.randn(shape, generator=generator, device=generator.device)
    return (stats.mean[:, None] + stats.std[:, None] * z).abs()


def nms_magnitude(W: Tensor, missing: Tensor, generator: torch.Generator) -> Tensor:
    """Neuron Max Scaling: max(|N(mu_row, sigma_row)| sample, rowmax + margin), margin = max(1e-12, 1e-6 rowmax)."""
    st = row_stats(W, missing)
    margin = (1e-6 * st.max).clamp_min(1e-12)
    return torch.maximum(_sample(st, W.shape, generator), (st.max + margin)[:, None])


def _sign(x: Tensor) -> Tensor:
    return torch.sign(x.float())


@MAGNITUDES.register("nms")
def nms(W: Tensor, completed: Tensor, missing: Tensor, retained: Tensor, *, generator: torch.Generator,
        reference: Tensor | None = None) -> Tensor:
    """Completed sign times the Neuron Max Scaling magnitude (the paper's rule)."""
    return _sign(completed) * nms_magnitude(W, missing, generator)


@MAGNITUDES.register("row_mean")
def row_mean(W: Tensor, completed: Tensor, missing: Tensor, retained: Tensor, *, generator: torch.Generator,
        reference: Tensor | None = None) -> Tensor:
    """Completed sign times the row's mean surviving |w|."""
    return _sign(completed) * row_stats(W, missing).mean[:, None]


@MAGNITUDES.register("sampled")
def sampled(W: Tensor, completed: Tensor, missing: Tensor, retained: Tensor, *, generator: torch.Generator,
        reference: Tensor | None = None) -> Tensor:
    """Completed sign times the raw |N(mu_row, sigma_row)| sample, without the row-max floor."""
    return _sign(completed) * _sample(row_stats(W, missing), W.shape, generator)


@MAGNITUDES.register("completed")
def completed_value(W: Tensor, completed: Tensor, missing: Tensor, retained: Tensor, *, generator: torch.Generator,
        reference: Tensor | None = None) -> Tensor:
    """The completed value itself (its own sign and magnitude)."""
    return completed.float()


def _need(reference: Tensor | None, rule: str) -> Tensor:
    if reference is None:
        raise RevivalError(f"magnitude rule {rule!r} is an ablation that needs the original weights (--reference)")
    return reference.float()


@MAGNITUDES.register("oracle_sign", needs_reference=True)
def oracle_sign(W: Tensor, completed: Tensor, missing: Tensor, retained: Tensor, *, generator: torch.Generator,
        reference: Tensor | None = None) -> Tensor:
    """Original sign with the NMS magnitude: what perfect sign recovery would give."""
    return _sign(_need(reference, "oracle_sign")) * nms_magnitude(W, missing, generator)


@MAGNITUDES.register("oracle_magnitude", needs_reference=True)
def oracle_magnitude(W: Tensor, completed: Tensor, missing: Tensor, retained: Tensor, *, generator: torch.Generator,
        reference: Tensor | None = None) -> Tensor:
    """Original magnitude with the completed sign: do magnitudes or signs carry the concept?"""
    return _sign(completed) * _need(reference, "oracle_magnitude").abs()


@MAGNITUDES.register("random_sign")
def random_sign(W: Tensor, completed: Tensor, missing: Tensor, retained: Tensor, *, generator: torch.Generator,
        reference: Tensor | None = None) -> Tensor:
    """Random signs with the NMS (row-max) magnitude: the floor that sign recovery must beat."""
    signs = torch.randint(0, 2, W.shape, generator=generator, device=generator.device).float() * 2 - 1
    return signs * nms_magnitude(W, missing, generator)
