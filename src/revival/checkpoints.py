"""Checkpoint I/O below every method: read/write weights (safetensors by default), select layers.

Formats read: a diffusers UNet or transformer folder (config.json + diffusion_pytorch_model*.safetensors,
sharded ones with their index too), a diffusers pipeline folder (its `unet/` or `transformer/`), a
single `.safetensors` file, and, only with
`allow_pickle=True`, a `.pt`/`.ckpt`/`.bin` file (loaded with `weights_only=True`).
Writes are atomic: a temporary file or folder renamed into place.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import pickle
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from revival.catalog import LAYER_PRESETS
from revival.errors import RevivalError
from revival.jsonfiles import dumps_strict, read_json
from revival.outputs import apply_umask, finish_file, publish, remove, unique_sibling

PICKLE_SUFFIXES = (".pt", ".ckpt", ".bin", ".pth")
UNET_WEIGHT_NAMES = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.safetensors.index.json",
    "diffusion_pytorch_model.fp16.safetensors.index.json",
)
DENOISER_FOLDERS = ("unet", "transformer")  # the pipeline component the method prunes


@dataclass
class Checkpoint:
    """Weights plus where they came from, so outputs can be written in the input's format."""

    state_dict: dict[str, torch.Tensor]
    path: Path
    kind: str  # "unet_folder" | "safetensors" | "pickle"
    weight_file: Path
    config: dict | None = None
    metadata: dict = field(default_factory=dict)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise RevivalError(f"{path}: not a readable safetensors file (truncated or corrupt?): {e}") from None


def _read_pickle(path: Path, allow_pickle: bool) -> dict[str, torch.Tensor]:
    if not allow_pickle:
        raise RevivalError(
            f"{path}: refusing to load a pickled checkpoint (unpickling can run arbitrary code); "
            "convert it to safetensors, or pass --allow-pickle to load it with torch.load(weights_only=True)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols are no concern of the user's
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"(Unsupported global: GLOBAL \S+|Unsupported operand \d+)", str(e))
        detail = f" ({found.group(1)})" if found else ""
        raise RevivalError(f"{path}: refused: it holds more than tensors{detail}, which weights-only loading does "
                           "not run; convert the checkpoint to safetensors") from None
    except Exception as e:  # noqa: BLE001 - any other reading failure is a bad file for the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RevivalError(f"{path}: cannot be read as a weights-only torch checkpoint ({first})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise RevivalError(f"{path}: not a checkpoint (expected a mapping of names to tensors)")
    return obj


def _read_sharded(index: Path) -> dict[str, torch.Tensor]:
    """The tensors of a sharded safetensors checkpoint, from its index's weight_map."""
    files = read_json(index).get("weight_map", {})
    if not isinstance(files, dict) or not files:
        raise RevivalError(f"{index}: no weight_map in this shard index")
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(files.values())):
        part = index.parent / str(shard)
        if part.name != str(shard) or not part.is_file():
            raise RevivalError(f"{index}: names shard {shard!r}, which is not in {index.parent}")
        state.update(_read_safetensors(part))
    return state


def find_unet_folder(path: Path) -> Path | None:
    """The denoiser (UNet or transformer) folder inside a pipeline folder, or the folder itself when it is one."""
    for cand in (path, *(path / n for n in DENOISER_FOLDERS)):
        if (cand / "config.json").is_file() and any((cand / n).is_file() for n in UNET_WEIGHT_NAMES):
            return cand
    return None


def load_checkpoint(path: str | Path, allow_pickle: bool = False) -> Checkpoint:
    """Read weights from any supported format; one-line RevivalError on bad input."""
    path = Path(path)
    if not path.exists():
        raise RevivalError(f"{path}: no such file or folder")
    if path.is_dir():
        folder = find_unet_folder(path)
        if folder is None:
            raise RevivalError(
                f"{path}: not a diffusers UNet, transformer or pipeline folder (no config.json with "
                f"{' or '.join(UNET_WEIGHT_NAMES[:2])} or a shard index here or in unet/ or transformer/)"
            )
        weight = next(folder / n for n in UNET_WEIGHT_NAMES if (folder / n).is_file())
        config = read_json(folder / "config.json")
        state = _read_sharded(weight) if weight.name.endswith(".index.json") else _read_safetensors(weight)
        return Checkpoint(state, path, "unet_folder", weight, config, {"component": folder.name})
    if path.suffix == ".safetensors":
        return Checkpoint(_read_safetensors(path), path, "safetensors", path)
    if path.suffix in PICKLE_SUFFIXES:
        return Checkpoint(_read_pickle(path, allow_pickle), path, "pickle", path)
    raise RevivalError(
        f"{path}: not a checkpoint (expected a diffusers folder, .safetensors, or .pt/.ckpt with --allow-pickle)"
    )


def save_checkpoint(state_dict: dict[str, torch.Tensor], like: Checkpoint, out_dir: str | Path) -> Path:
    """Write `state_dict` into `out_dir` in the format of `like`; returns the written path.

    A UNet or pipeline folder becomes `out_dir/unet/` (a diffusers UNet folder; `out_dir/transformer/`
    for a transformer, SD3 or Flux); a single file
    becomes `out_dir/<stem>.safetensors`. Pickles are never written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    if like.kind == "unet_folder":
        component = like.metadata.get("component")
        return save_unet_folder(tensors, like.config or {}, out_dir / (component if component in DENOISER_FOLDERS
                                                                       else "unet"))
    target = out_dir / f"{like.weight_file.stem}.safetensors"
    atomic_save_safetensors(tensors, target)
    return target


def save_unet_folder(state_dict: dict[str, torch.Tensor], config: dict, target: Path) -> Path:
    """Write a diffusers UNet folder (config.json + diffusion_pytorch_model.safetensors) atomically.

    The folder is written under a unique temporary name; an existing `target` is replaced only
    once the new one is complete.
    """
    target = Path(target)
    tmp = unique_sibling(target, "tmp")
    try:
        tmp.mkdir(parents=True)
        save_file({k: v.detach().contiguous().cpu() for k, v in state_dict.items()},
                  str(tmp / UNET_WEIGHT_NAMES[0]), metadata={"format": "pt"})
        (tmp / "config.json").write_text(dumps_strict(config, target / "config.json"))
        apply_umask(tmp)
        publish(tmp, target)
    finally:
        remove(tmp)
    return target


def _write_atomically(target: Path, write) -> None:
    """Call `write(tmp)` for a unique temporary name beside `target`, then rename it into place."""
    target = Path(target)
    tmp = unique_sibling(target, "tmp")
    try:
        write(tmp)
        finish_file(tmp, target)
    finally:
        remove(tmp)


def atomic_save_safetensors(tensors: dict[str, torch.Tensor], target: Path, metadata: dict | None = None) -> None:
    """save_file to a temporary name, then rename into place."""
    data = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    _write_atomically(target, lambda tmp: save_file(data, str(tmp), metadata=metadata))


def atomic_write_text(text: str, target: str | Path) -> None:
    """Write text to a temporary file, then rename into place."""
    _write_atomically(Path(target), lambda tmp: tmp.write_text(text))


def atomic_write_json(obj, target: str | Path) -> None:
    """Pretty, strict JSON (no NaN or Infinity), written atomically."""
    atomic_write_text(dumps_strict(obj, target), target)


def check_weights(ckpt: Checkpoint, names: Iterable[str] | None = None) -> None:
    """One-line error naming the file when a used tensor (`names`, default all) is not floating point,
    or when any floating tensor holds NaN or Inf."""
    for name in ckpt.state_dict if names is None else names:
        t = ckpt.state_dict[name]
        if not t.is_floating_point():
            raise RevivalError(f"{ckpt.path}: tensor {name} is {str(t.dtype).removeprefix('torch.')}; "
                               "weights must be floating point")
    for name, t in ckpt.state_dict.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise RevivalError(f"{ckpt.path}: tensor {name} contains NaN or Inf values")


@dataclass
class LayerSelection:
    """Names of the selected 2-D weights, and matched names skipped for not being 2-D."""

    names: list[str]
    skipped: list[str]


def select_layers(state_dict: dict[str, torch.Tensor], layers: str = "ffn2") -> LayerSelection:
    """Select 2-D weights by preset name (ffn2, ffn1, attn_k, attn_v) or by glob over names."""
    pattern = LAYER_PRESETS.get(layers, layers)
    matched = [k for k in state_dict if fnmatch.fnmatchcase(k, pattern)]
    if not matched:
        close = difflib.get_close_matches(pattern.strip("*"), list(state_dict), n=5, cutoff=0.3)
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise RevivalError(
            f"layer pattern {layers!r} matches no parameter (presets: {', '.join(LAYER_PRESETS)}){hint}"
        )
    names = [k for k in matched if state_dict[k].ndim == 2]
    skipped = [k for k in matched if state_dict[k].ndim != 2]
    if not names:
        raise RevivalError(f"layer pattern {layers!r} matches only non-2-D tensors: {', '.join(skipped[:5])}")
    return LayerSelection(names, skipped)


def module_name(param_name: str) -> str:
    """`a.b.weight` -> `a.b`."""
    return param_name.rsplit(".", 1)[0]
