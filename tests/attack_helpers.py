"""Tiny models and pruned weights shared by the attack tests."""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel

from revival.checkpoints import select_layers

TINY_UNET = dict(sample_size=8, in_channels=4, out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), block_out_channels=(16, 32), layers_per_block=1,
                 cross_attention_dim=16, attention_head_dim=4, norm_num_groups=8)


def tiny_unet(seed: int = 0) -> UNet2DConditionModel:
    """A diffusers UNet with four ff.net.2 layers, (16, 64) and (32, 128)."""
    torch.manual_seed(seed)
    return UNet2DConditionModel(**TINY_UNET)


def prune(state_dict: dict[str, torch.Tensor], frac: float = 0.05, seed: int = 0) -> dict[str, torch.Tensor]:
    """Zero a seeded random `frac` of every ff.net.2 weight (a stand-in for ConceptPrune)."""
    g = torch.Generator().manual_seed(seed)
    out = dict(state_dict)
    for name in select_layers(state_dict, "ffn2").names:
        w = state_dict[name]
        out[name] = torch.where(torch.rand(w.shape, generator=g) < frac, torch.zeros_like(w), w)
    return out
