"""The mini text-to-image pipeline: a pixel-space diffusers pipeline built like Stable Diffusion."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DDIMScheduler, DiffusionPipeline, ImagePipelineOutput, UNet2DConditionModel
from PIL import Image
from transformers import CLIPTextModel, PreTrainedTokenizerFast

from revival.mini.tokenizer import check_prompt


class MiniPipeline(DiffusionPipeline):
    """Text-to-image in pixel space: CLIP text encoder -> cross-attention UNet -> DDIM with CFG.

    The call signature follows `StableDiffusionPipeline` (prompt, num_inference_steps,
    guidance_scale, generator as one or a list of generators, output_type), so the same
    generation code drives both.
    """

    model_cpu_offload_seq = "text_encoder->unet"

    def __init__(
        self,
        unet: UNet2DConditionModel,
        text_encoder: CLIPTextModel,
        tokenizer: PreTrainedTokenizerFast,
        scheduler: DDIMScheduler,
    ):
        super().__init__()
        self.register_modules(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        """Token ids (batch, max_length); raises on words outside the vocabulary."""
        for p in prompts:
            if p:
                check_prompt(self.tokenizer, p)
        enc = self.tokenizer(
            [p.lower() for p in prompts],
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        return enc.input_ids

    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        """Text-encoder hidden states used as cross-attention context."""
        ids = self.tokenize(prompts).to(self.text_encoder.device)
        return self.text_encoder(ids)[0]

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        num_images_per_prompt: int = 1,
        num_inference_steps: int = 25,
        guidance_scale: float = 4.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ):
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        prompts = [p for p in prompts for _ in range(num_images_per_prompt)]
        n = len(prompts)
        device, dtype = self.unet.device, self.unet.dtype
        cond = self.encode_prompt(prompts).to(dtype)
        use_cfg = guidance_scale > 1.0
        if use_cfg:
            cond = torch.cat([self.encode_prompt([""] * n).to(dtype), cond])
        shape = (self.unet.config.in_channels, self.unet.config.sample_size, self.unet.config.sample_size)
        if isinstance(generator, list):
            if len(generator) != n:
                raise ValueError(f"got {len(generator)} generators for {n} images")
            x = torch.stack([torch.randn(shape, generator=g) for g in generator])
        else:
            x = torch.randn((n, *shape), generator=generator)
        x = x.to(device, dtype)
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        for t in self.progress_bar(self.scheduler.timesteps):
            inp = torch.cat([x, x]) if use_cfg else x
            eps = self.unet(inp, t, encoder_hidden_states=cond).sample
            if use_cfg:
                eps_u, eps_c = eps.chunk(2)
                eps = eps_u + guidance_scale * (eps_c - eps_u)
            x = self.scheduler.step(eps, t, x).prev_sample
        images = ((x.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu()
        if output_type == "pt":
            out = images
        elif output_type == "np":
            out = images.numpy()
        else:
            out = [Image.fromarray((im * 255).round().astype(np.uint8)) for im in images.numpy()]
        if not return_dict:
            return (out,)
        return ImagePipelineOutput(images=out)
