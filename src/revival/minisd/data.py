"""Pools of pre-rendered mini-world images: rendered once per seed, cached, shared by every component."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from revival.minisd import world


def render_pool(n: int, seed: int, mix: dict[str, float] | None = None) -> dict:
    """`n` images (uint8, N x 64 x 64 x 3) with captions and specs from the training mixture, in chunks of 256."""
    images, captions, specs = [], [], []
    for chunk in range(0, n, 256):
        im, cap, sp = world.sample_batch(min(256, n - chunk), (seed, chunk), mix)
        images.append(np.round(im * 255).astype(np.uint8))
        captions += cap
        specs += sp
    return {"images": np.concatenate(images), "captions": captions, "specs": specs}


def cached_pool(path: Path, n: int, seed: int) -> dict:
    """`render_pool(n, seed)`, read from `path` (.npz + .json) when it was written for the same n and seed."""
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta["n"] == n and meta["seed"] == seed:
            images = np.load(path)["images"]
            return {"images": images, "captions": meta["captions"],
                    "specs": [world.Spec(**s) for s in meta["specs"]]}
    pool = render_pool(n, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, images=pool["images"])
    os.replace(tmp, path)
    meta_path.write_text(json.dumps({"n": n, "seed": seed, "captions": pool["captions"],
                                     "specs": [s.__dict__ for s in pool["specs"]]}))
    return pool


def to_tensor(images: np.ndarray):
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1]."""
    import torch

    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
