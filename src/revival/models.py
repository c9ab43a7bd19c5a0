"""Open a text-to-image pipeline by name: the bundled `mini`, a local diffusers folder or a Hub id.

Loading is diffusers' `from_pretrained`: safetensors components only unless `allow_pickle` (a
component with only `.bin` / `.pt` weights is refused with one line), the weights in `dtype`, on
`device`; the safety checker is left out unless `safety_checker` (it blacks out the very images a
nudity evaluation counts). `load_info(pipe)` is what was loaded, for result.json.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import DiffusionPipeline

from revival.checkpoints import check_weights, load_checkpoint
from revival.errors import RevivalError
from revival.families import denoiser, family_of
from revival.modelfiles import MINI_PATH, check_configs, model_index, resolve_model_path

__all__ = ["DTYPES", "MINI_PATH", "load_info", "load_pipeline", "load_unet_weights", "quiet_libraries",
           "resolve_dtype", "resolve_model_path"]

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
INFO_ATTR = "revival_load_info"


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """torch dtype of `fp32` / `fp16` / `bf16` (or a torch dtype itself)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise RevivalError(f"unknown dtype {dtype!r}; use {', '.join(DTYPES)}")
    return DTYPES[dtype]


def load_info(pipe) -> dict:
    """{model, family, denoiser, dtype, device, safety_checker} of a pipeline opened by `load_pipeline`."""
    return dict(getattr(pipe, INFO_ATTR, {}))


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
    dtype: str | torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    allow_pickle: bool = False,
    safety_checker: bool = False,
) -> DiffusionPipeline:
    """Load a pipeline, optionally replacing its denoiser's (UNet or transformer) weights with checkpoint `unet`."""
    dtype = resolve_dtype(dtype)
    path = resolve_model_path(model)
    index = model_index(path)
    check_configs(path)
    has_checker = isinstance(index.get("safety_checker"), list) and index["safety_checker"][0] is not None
    kwargs = {} if safety_checker or not has_checker else {"safety_checker": None}
    if not allow_pickle:
        kwargs["use_safetensors"] = True
    quiet_libraries()
    try:
        pipe = DiffusionPipeline.from_pretrained(path, dtype=dtype, **kwargs)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        first = (str(e).strip() or type(e).__name__).splitlines()[0]
        if not allow_pickle and "safetensors" in first.lower():
            raise RevivalError(f"{path}: a component has no safetensors weights (pickled .bin/.pt only, which can "
                               "run code when read); convert it, or pass --allow-pickle") from None
        raise RevivalError(f"{path}: cannot load the pipeline: {first}") from None
    family_of(pipe)  # one line for a pipeline without a UNet or transformer
    if unet is not None:
        load_unet_weights(denoiser(pipe), unet, allow_pickle=allow_pickle)
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    checker = "absent" if not has_checker else ("on" if getattr(pipe, "safety_checker", None) is not None else "off")
    setattr(pipe, INFO_ATTR, {"model": str(model), "path": str(path), "class": type(pipe).__name__,
                              "family": family_of(pipe), "denoiser": type(denoiser(pipe)).__name__,
                              "dtype": str(dtype).removeprefix("torch."), "device": str(device),
                              "safety_checker": checker, "use_safetensors_only": not allow_pickle})
    return pipe


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
