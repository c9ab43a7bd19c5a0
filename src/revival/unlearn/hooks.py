"""Activation collection for ConceptPrune: forward hooks on the UNet during ordinary sampling runs.

A pre-hook on each hooked module adds the normalised squared column sums of its input (both
classifier-free-guidance halves, since the pipeline runs them as one batch) to an accumulator of
the current denoising step. A post-hook on the UNet counts steps (one UNet call per step) and
stops the run with `StopSampling` once the first T steps are in: later steps cannot change the
first T, so the remaining steps and the VAE decode are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import torch
from diffusers import DDIMScheduler
from tqdm.auto import tqdm

from revival.families import denoiser, is_flow_matching
from revival.unlearn.wanda import normalised_sq_colsum


class StopSampling(Exception):
    """Raised from the UNet hook to end a sampling run after the collected steps."""


class NormCollector:
    """Per (step, layer) sums of squared token-normalised inputs of the named UNet modules."""

    def __init__(self, unet: torch.nn.Module, module_names: Sequence[str], timesteps: int):
        self.unet = unet
        self.module_names = list(module_names)
        self.timesteps = timesteps
        self.step = 0
        self.sums: dict[str, torch.Tensor] = {}
        self.rows: dict[str, int] = dict.fromkeys(self.module_names, 0)
        self._handles: list = []

    def __enter__(self) -> NormCollector:
        modules = dict(self.unet.named_modules())
        missing = [n for n in self.module_names if n not in modules]
        if missing:
            raise KeyError(f"no module named {missing[0]!r} in the UNet")
        for name in self.module_names:
            self._handles.append(modules[name].register_forward_pre_hook(self._capture(name)))
        self._handles.append(self.unet.register_forward_hook(self._count_step))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _capture(self, name: str):
        def hook(module, args):
            if self.step >= self.timesteps:
                return
            x = args[0]
            if name not in self.sums:
                self.sums[name] = torch.zeros(self.timesteps, x.shape[-1], device=x.device)
            self.sums[name][self.step] += normalised_sq_colsum(x)
            self.rows[name] += x.numel() // x.shape[-1]
        return hook

    def _count_step(self, module, args, output):
        self.step += 1
        if self.step >= self.timesteps:
            raise StopSampling

    def norms(self) -> dict[str, torch.Tensor]:
        """Column L2 norms, (T, in_features) per module name."""
        return {name: s.sqrt() for name, s in self.sums.items()}


@contextmanager
def ddim_scheduler(pipe):
    """Temporarily give `pipe` a DDIM scheduler built from its own scheduler config (flow-matching
    pipelines, SD3 and Flux, keep their own scheduler: DDIM does not sample them)."""
    original = pipe.scheduler
    if not isinstance(original, DDIMScheduler) and not is_flow_matching(pipe):
        pipe.scheduler = DDIMScheduler.from_config(original.config)
    try:
        yield
    finally:
        pipe.scheduler = original


def collect_norms(
    pipe,
    prompts: Sequence[str],
    module_names: Sequence[str],
    timesteps: int,
    num_inference_steps: int,
    guidance_scale: float,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
    **call_kwargs,
) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Column norms (T, in_features) per module over all prompts, and token rows seen per module.

    One image per prompt, DDIM with classifier-free guidance; every prompt starts from the same
    noise (a CPU generator seeded with `seed`, as diffusers recommends for results that do not depend
    on the device), so base and target prompts are paired. `call_kwargs` (e.g. height, width) go to the
    pipeline call. The denoiser is the pipeline's UNet or transformer.
    """
    if timesteps > num_inference_steps:
        raise ValueError(f"timesteps ({timesteps}) exceeds num_inference_steps ({num_inference_steps})")
    with ddim_scheduler(pipe), NormCollector(denoiser(pipe), module_names, timesteps) as col:
        starts = range(0, len(prompts), batch_size)
        for i in tqdm(starts, disable=not progress, desc="collect", unit="batch", leave=False):
            batch = list(prompts[i : i + batch_size])
            col.step = 0
            gens = [torch.Generator("cpu").manual_seed(seed) for _ in batch]
            try:
                pipe(prompt=batch, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                     generator=gens, output_type="np", **call_kwargs)
            except StopSampling:
                pass
            if col.step < timesteps:
                raise RuntimeError(f"the pipeline ran {col.step} UNet steps, fewer than timesteps={timesteps}")
    missing = [n for n in module_names if n not in col.sums]
    if missing:
        raise RuntimeError(f"module {missing[0]} was never called during sampling")
    return col.norms(), col.rows
