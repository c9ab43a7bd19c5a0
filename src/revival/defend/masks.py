"""Pruning masks as the publisher holds them: read a masks file and check it against a checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from revival.errors import RevivalError


def load_masks(path: str | Path) -> dict[str, torch.Tensor]:
    """Bool masks by parameter name from a safetensors file (True = pruned)."""
    path = Path(path)
    if not path.is_file():
        raise RevivalError(f"{path}: no such masks file")
    try:
        raw = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise RevivalError(f"{path}: not a readable safetensors masks file: {e}") from None
    if not raw:
        raise RevivalError(f"{path}: holds no masks")
    out = {}
    for name, t in raw.items():
        if t.dtype != torch.bool and not ((t == 0) | (t == 1)).all():
            raise RevivalError(f"{path}: mask {name!r} is not boolean (values other than 0 and 1)")
        out[name] = t.bool()
    return out


def match_masks(state_dict: dict[str, torch.Tensor], masks: dict[str, torch.Tensor],
                source: str = "masks") -> dict[str, torch.Tensor]:
    """Masks keyed by parameter name, checked against `state_dict`: names exist, shapes agree, not empty.

    A mask may be keyed by the module name (`...ff.net.2`) instead of the weight (`...ff.net.2.weight`).
    """
    if not masks:
        raise RevivalError(f"{source}: no masks given")
    out = {}
    for name, m in masks.items():
        key = name if name in state_dict else f"{name}.weight"
        if key not in state_dict:
            raise RevivalError(f"{source}: mask {name!r} names no parameter of the checkpoint")
        if tuple(m.shape) != tuple(state_dict[key].shape):
            raise RevivalError(f"{source}: mask {name!r} has shape {tuple(m.shape)} but the checkpoint's "
                               f"weight has {tuple(state_dict[key].shape)}")
        out[key] = m.bool().to(state_dict[key].device)  # masks live where the weights do
    if not any(bool(m.any()) for m in out.values()):
        raise RevivalError(f"{source}: every mask is empty (nothing was pruned)")
    return out
