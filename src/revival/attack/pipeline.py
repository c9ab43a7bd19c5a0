"""The whole data-free attack on a state dict: locate -> complete -> keep top-K signs -> scale.

Only the (pruned) weights are read: no mask file, no data, no training. `reference` (the original
weights) is read only by the oracle magnitude rules (registry entries with `needs_reference`).
What the attack achieved is measured outside it, by `revival.evaluate.attack_metrics`, from the
located holes and completed values this returns.
"""

from __future__ import annotations

import inspect
import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from revival.attack.complete import COMPLETERS
from revival.attack.locate import locate
from revival.attack.magnitudes import MAGNITUDES
from revival.attack.signs import check_top_ratio, retain_top
from revival.attack.structured import side_features
from revival.catalog import DEFAULT_METHOD
from revival.checkpoints import select_layers
from revival.errors import RevivalError


@dataclass
class ReviveResult:
    """The revived weights, what happened to each layer, and the located holes and completed values
    (per attacked layer, float32 on the CPU) from which evaluation code scores the attack. The revived
    weights stay on the input's device; the completion, generators and noise live there too."""

    state_dict: dict[str, Tensor]
    per_layer: dict[str, dict]
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    located: dict[str, Tensor] = field(default_factory=dict, repr=False)
    completed: dict[str, Tensor] = field(default_factory=dict, repr=False)


def check_finite(state_dict: dict[str, Tensor], what: str = "checkpoint") -> None:
    """RevivalError naming the first floating tensor with NaN or Inf."""
    for name, t in state_dict.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise RevivalError(f"{what}: tensor {name} contains NaN or Inf values")


def side_info(state_dict: dict[str, Tensor], name: str) -> Tensor | None:
    """For `*.ff.net.2.weight` (d, h): the GEGLU input weights of the same neurons as (2d, h) side rows."""
    if not name.endswith("ff.net.2.weight"):
        return None
    partner = state_dict.get(name[: -len("ff.net.2.weight")] + "ff.net.0.proj.weight")
    d, h = state_dict[name].shape
    if partner is None or tuple(partner.shape) != (2 * h, d):
        return None
    return side_features(partner.float(), h)


def completion_record(stats: dict, seconds: float) -> dict:
    """What the completion did on one layer: lambda, rank and why, iterations, convergence, last change, seconds."""
    rel = stats.get("last_rel_change")
    return {"lambda": stats.get("lam"), "rank": stats.get("rank_used"), "reason": stats.get("reason"),
            "iterations": stats.get("iterations"), "converged": stats.get("converged"),
            "rel_change": None if rel is None or not math.isfinite(rel) else float(f"{rel:.4g}"),
            "complete_seconds": round(seconds, 4)}


def _layer_seed(seed: int, name: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**63)


def _check_reference(reference: dict[str, Tensor], names: list[str], state_dict: dict[str, Tensor]) -> None:
    for name in names:
        if name not in reference:
            raise RevivalError(f"reference weights have no tensor {name}")
        if reference[name].shape != state_dict[name].shape:
            raise RevivalError(f"reference tensor {name} has shape {tuple(reference[name].shape)}, "
                               f"the attacked one {tuple(state_dict[name].shape)}")
    check_finite({k: reference[k] for k in names}, "reference")


def revive(
    state_dict: dict[str, Tensor],
    layers: str = "ffn2",
    locator: str = "zeros",
    method: str = DEFAULT_METHOD,
    top_ratio: float = 0.6,
    magnitude: str = "nms",
    seed: int = 0,
    reference: dict[str, Tensor] | None = None,
    device: str | torch.device | None = None,
    locator_params: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
    **method_params,
) -> ReviveResult:
    """Revive the pruned layers of `state_dict` (a new dict; the input is not modified).

    `layers`: preset (ffn2, ffn1, attn_k, attn_v) or glob over parameter names; matched non-2-D
    tensors are skipped with a note. `method`, `locator`, `magnitude`: registry names; extra
    keyword arguments go to the completion method. `progress(done, total)` is called once the input
    is validated and the holes located (done = 0), then after each layer.
    """
    t_start = time.perf_counter()
    complete_fn = COMPLETERS.get(method)
    takes_seed = "seed" in inspect.signature(complete_fn).parameters
    magnitude_fn = MAGNITUDES.get(magnitude)
    check_top_ratio(top_ratio)
    if MAGNITUDES.meta(magnitude).get("needs_reference") and reference is None:
        raise RevivalError(f"magnitude rule {magnitude!r} is an ablation that needs the original weights (reference)")
    sel = select_layers(state_dict, layers)
    notes = [f"skipped {k}: not a 2-D weight" for k in sel.skipped]
    check_finite(state_dict)
    if reference is not None:
        _check_reference(reference, sel.names, state_dict)
    weights = {k: state_dict[k].float() for k in sel.names}
    # MPS has no float64 and no SVD: there the completion alone runs on the CPU (its result comes back to the weights)
    complete_device = "cpu" if device is not None and torch.device(device).type == "mps" else device
    t0 = time.perf_counter()
    located = locate(weights, locator, **(locator_params or {}))
    timings = {"locate": time.perf_counter() - t0, "complete": 0.0, "signs_magnitudes": 0.0}
    out = dict(state_dict)
    per_layer: dict[str, dict] = {}
    if progress is not None:
        progress(0, len(sel.names))
    completed_all: dict[str, Tensor] = {}
    for name in sel.names:
        W, miss = weights[name], located.masks[name]
        n_miss = located.counts[name]
        if not n_miss:
            per_layer[name] = {"missing": 0, "retained": 0, "seconds": 0.0}
            notes.append(f"{name}: no missing entry, left as is")
            continue
        t0 = time.perf_counter()
        params = dict(method_params)
        if COMPLETERS.meta(method).get("uses_side_info") and "side" not in params:
            params["side"] = side_info(state_dict, name)
        if takes_seed and "seed" not in params:
            params["seed"] = _layer_seed(seed, name)
        stats: dict = {}
        completed = complete_fn(W, miss, device=complete_device, stats=stats, **params).to(W.device, torch.float32)
        t1 = time.perf_counter()
        retained = retain_top(completed, miss, top_ratio)
        gen = torch.Generator(device=W.device).manual_seed(_layer_seed(seed, name))
        ref = None if reference is None else reference[name]
        values = magnitude_fn(W, completed, miss, retained, generator=gen, reference=ref)
        new = torch.where(retained, values, torch.where(miss, torch.zeros_like(W), W))
        out[name] = new.to(state_dict[name].dtype)
        t2 = time.perf_counter()
        timings["complete"] += t1 - t0
        timings["signs_magnitudes"] += t2 - t1
        completed_all[name] = torch.where(miss, completed, torch.zeros_like(completed)).cpu()
        per_layer[name] = {"missing": n_miss, "retained": int(retained.sum()), "seconds": round(t2 - t0, 4),
                           **completion_record(stats, t1 - t0)}
        if progress is not None:
            progress(len(per_layer), len(sel.names))
    timings["total"] = time.perf_counter() - t_start
    config = {"layers": layers, "locator": locator, "locator_params": locator_params or {}, "method": method,
              "method_params": {k: v for k, v in method_params.items() if k != "side"}, "top_ratio": top_ratio,
              "magnitude": magnitude, "seed": seed, "device": str(device) if device is not None else None}
    return ReviveResult(out, per_layer, {k: round(v, 4) for k, v in timings.items()}, located.warnings, notes,
                        config, {k: m.cpu() for k, m in located.masks.items()}, completed_all)
