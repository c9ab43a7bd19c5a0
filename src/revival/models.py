"""Open a text-to-image pipeline by name: the bundled `mini`, or any local diffusers folder."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import DiffusionPipeline

from revival.checkpoints import check_weights, load_checkpoint
from revival.errors import RevivalError
from revival.mini.pipeline import MiniPipeline
from revival.modelfiles import MINI_PATH, check_configs, model_index, resolve_model_path

__all__ = ["MINI_PATH", "load_pipeline", "load_unet_weights", "quiet_libraries", "resolve_model_path"]


def quiet_libraries() -> None:
    """Hide diffusers/transformers loading bars and warnings: our own progress bars and errors speak."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    for log in (dlog, tlog):
        log.disable_progress_bar()
        log.set_verbosity_error()


def load_pipeline(
    model: str | Path = "mini",
    unet: str | Path | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    allow_pickle: bool = False,
) -> DiffusionPipeline:
    """Load a pipeline, optionally replacing its UNet weights with those of checkpoint `unet`."""
    path = resolve_model_path(model)
    index = model_index(path)
    check_configs(path)
    cls = MiniPipeline if index.get("_class_name") == MiniPipeline.__name__ else DiffusionPipeline
    quiet_libraries()
    try:
        pipe = cls.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        first = (str(e).strip() or type(e).__name__).splitlines()[0]
        raise RevivalError(f"{path}: cannot load the pipeline: {first}") from None
    if unet is not None:
        load_unet_weights(pipe.unet, unet, allow_pickle=allow_pickle)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_unet_weights(module: torch.nn.Module, unet: str | Path, allow_pickle: bool = False) -> None:
    """Copy the weights of checkpoint `unet` into `module`; errors name missing/unexpected keys."""
    ckpt = load_checkpoint(unet, allow_pickle=allow_pickle)
    check_weights(ckpt)
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
