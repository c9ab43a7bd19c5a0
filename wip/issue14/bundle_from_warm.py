"""An fp16 pipeline folder from a UNet warm start (argv[1]) and the shipped VAE and text encoder -> argv[2].

    python wip/issue14/bundle_from_warm.py wip/issue14/unet-base-warm.safetensors /tmp/pipe-cont
"""
import shutil
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from transformers import CLIPTextModel

from revival.minisd.pipeline import assemble
from revival.minisd.training import _load_warm_start
from revival.minisd.unet import build_unet

A = Path(__file__).resolve().parents[2] / "src" / "revival" / "minisd" / "assets" / "pipeline"  # the shipped one
unet = build_unet("base")
step = _load_warm_start(Path(sys.argv[1]), {"unet": unet})
vae = AutoencoderKL.from_pretrained(A / "vae").eval()
pipe = assemble(vae, CLIPTextModel.from_pretrained(A / "text_encoder").eval(), unet.eval(), "base").to(torch.float16)
out = Path(sys.argv[2])
shutil.rmtree(out, ignore_errors=True)
pipe.save_pretrained(out, safe_serialization=True)
print("step", step, "->", out)
