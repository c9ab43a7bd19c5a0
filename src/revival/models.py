"""Open a text-to-image pipeline by name: the bundled `mini`, or any local diffusers folder."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import DiffusionPipeline

from revival.checkpoints import load_checkpoint
from revival.errors import RevivalError
from revival.mini.pipeline import MiniPipeline

MINI_PATH = Path(__file__).parent / "mini" / "assets" / "mini-pipeline"


def resolve_model_path(model: str | Path) -> Path:
    """Folder of a model name (`mini`) or path; one-line error when it is not a diffusers pipeline."""
    path = MINI_PATH if str(model) == "mini" else Path(model)
    if not path.exists():
        hint = " (the bundled weights are missing: run `revival train-mini`)" if str(model) == "mini" else ""
        raise RevivalError(f"{path}: no such model folder{hint}")
    if not path.is_dir():
        raise RevivalError(f"{path}: not a folder (expected a diffusers pipeline folder with model_index.json)")
    if not (path / "model_index.json").is_file():
        raise RevivalError(f"{path}: not a diffusers pipeline folder (model_index.json is missing)")
    return path


def load_pipeline(
    model: str | Path = "mini",
    unet: str | Path | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    allow_pickle: bool = False,
) -> DiffusionPipeline:
    """Load a pipeline, optionally replacing its UNet weights with those of checkpoint `unet`."""
    path = resolve_model_path(model)
    index = json.loads((path / "model_index.json").read_text())
    cls = MiniPipeline if index.get("_class_name") == MiniPipeline.__name__ else DiffusionPipeline
    try:
        pipe = cls.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError, KeyError) as e:
        raise RevivalError(f"{path}: cannot load the pipeline: {str(e).splitlines()[0]}") from None
    if unet is not None:
        load_unet_weights(pipe.unet, unet, allow_pickle=allow_pickle)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_unet_weights(module: torch.nn.Module, unet: str | Path, allow_pickle: bool = False) -> None:
    """Copy the weights of checkpoint `unet` into `module`; errors name missing/unexpected keys."""
    ckpt = load_checkpoint(unet, allow_pickle=allow_pickle)
    own = module.state_dict()
    missing = [k for k in own if k not in ckpt.state_dict]
    unexpected = [k for k in ckpt.state_dict if k not in own]
    if missing or unexpected:
        raise RevivalError(
            f"{unet}: does not fit this UNet ({len(missing)} missing, {len(unexpected)} unexpected keys, "
            f"e.g. {(missing + unexpected)[0]})"
        )
    bad = [k for k, v in ckpt.state_dict.items() if v.shape != own[k].shape]
    if bad:
        raise RevivalError(f"{unet}: shape mismatch for {bad[0]}: {tuple(ckpt.state_dict[bad[0]].shape)} "
                           f"vs {tuple(own[bad[0]].shape)}")
    dtype = next(iter(own.values())).dtype
    module.load_state_dict({k: v.to(dtype) for k, v in ckpt.state_dict.items()})
