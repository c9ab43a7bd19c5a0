"""Assemble the miniature as a plain diffusers `StableDiffusionPipeline` (no safety checker)."""

from __future__ import annotations

from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel

from revival.minisd import world
from revival.minisd.tokenizer import build_tokenizer
from revival.minisd.unet import scheduler_config


def tokenizer():
    """The word-level tokenizer over the 64x64 world's vocabulary."""
    return build_tokenizer(world.vocabulary())


def assemble(vae: AutoencoderKL, text_encoder: CLIPTextModel, unet: UNet2DConditionModel,
             variant: str = "base") -> StableDiffusionPipeline:
    """The pipeline SD folders load as: VAE, CLIP text encoder, tokenizer, UNet, the variant's DDIM scheduler."""
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer(), unet=unet,
                                   scheduler=DDIMScheduler(**scheduler_config(variant)), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe
