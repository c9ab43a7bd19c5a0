"""Seeded batch generation: the same prompts and seeds give the same images across model stages."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm


def fast_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether bf16 autocast speeds the denoiser up here: CUDA, or a CPU with native bf16 (AVX512-BF16/AMX).

    Without native support (e.g. an AVX2-only CPU) torch emulates bf16 and runs about 10x slower.
    """
    if torch.device(device).type == "cuda":
        return True
    return torch.device(device).type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_autocast(precision: str, device: str | torch.device = "cpu") -> torch.dtype | None:
    """The autocast dtype of a precision setting: "bf16", "fp32", or "auto" (bf16 where it is fast)."""
    if precision == "auto":
        return torch.bfloat16 if fast_bf16(device) else None
    return {"bf16": torch.bfloat16, "fp32": None}[precision]


def generate(
    pipe,
    prompts: Sequence[str],
    seeds: Sequence[int],
    num_inference_steps: int = 25,
    guidance_scale: float = 4.0,
    batch_size: int = 64,
    progress: bool = False,
    autocast: torch.dtype | None = None,
    height: int | None = None,
    width: int | None = None,
) -> np.ndarray:
    """Images (N, H, W, 3) uint8, image i drawn from a generator seeded with seeds[i].

    `autocast` (e.g. torch.bfloat16) runs the denoiser under mixed precision: about 2x faster on
    CPUs with AMX/AVX512-BF16 (see `fast_bf16`); the same setting gives the same images across stages.
    Generators are CPU generators (diffusers moves the noise to the pipeline's device), so a seed gives
    the same starting noise on every device. `height`/`width` go to the pipeline when given.
    """
    size = {} if height is None else {"height": height, "width": width}
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    out = []
    for i in tqdm(range(0, len(prompts), batch_size), disable=not progress, desc="generate", unit="batch"):
        ps, ss = list(prompts[i : i + batch_size]), seeds[i : i + batch_size]
        gens = [torch.Generator("cpu").manual_seed(int(s)) for s in ss]
        device = getattr(pipe, "device", torch.device("cpu"))
        with torch.autocast(torch.device(device).type, dtype=autocast or torch.float32, enabled=autocast is not None):
            imgs = pipe(prompt=ps, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                        generator=gens, output_type="np", **size).images
        out.append((np.clip(np.asarray(imgs), 0, 1) * 255).round().astype(np.uint8))
    return np.concatenate(out) if out else np.zeros((0, 1, 1, 3), np.uint8)


def make_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2, scale: int = 1) -> Image.Image:
    """Tile uint8 images (N, H, W, 3) into one PIL image with white padding."""
    n, h, w, _ = images.shape
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), 255, np.uint8)
    for k, im in enumerate(images):
        r, c = divmod(k, ncols)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = im
    img = Image.fromarray(grid)
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST) if scale > 1 else img
