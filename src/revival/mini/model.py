"""Architecture of the mini model: Stable Diffusion's parts at 32x32 in pixel space."""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from revival.mini.pipeline import MiniPipeline
from revival.mini.tokenizer import MAX_LENGTH, build_tokenizer

TEXT_DIM = 128

# Three resolutions (32, 16, 8); attention only at 16x16 and 8x8 (CPU-trainable). One
# transformer layer at 16x16 and two at 8x8 give 11 transformer blocks with GEGLU feed-forward
# nets: ff.net.2 of 64x256 (3 at 16x16) and 128x512 (8 at 8x8 and in the mid block).
UNET_CONFIG = dict(
    sample_size=32,
    in_channels=3,
    out_channels=3,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(32, 64, 128),
    layers_per_block=1,
    transformer_layers_per_block=(1, 1, 2),
    norm_num_groups=8,
    cross_attention_dim=TEXT_DIM,
    attention_head_dim=4,
)

TEXT_CONFIG = dict(
    hidden_size=TEXT_DIM,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=MAX_LENGTH,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
)

SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_schedule="squaredcos_cap_v2",
    clip_sample=True,
    set_alpha_to_one=False,
    prediction_type="epsilon",
)


def build_pipeline(seed: int = 0) -> MiniPipeline:
    """A freshly initialised (untrained) mini pipeline, deterministic under `seed`."""
    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), **TEXT_CONFIG))
    unet = UNet2DConditionModel(**UNET_CONFIG)
    return MiniPipeline(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer,
                        scheduler=DDIMScheduler(**SCHEDULER_CONFIG))


def count_parameters(module: torch.nn.Module) -> int:
    """Number of parameters of a module."""
    return sum(p.numel() for p in module.parameters())
