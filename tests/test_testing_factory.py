"""The tiny random Stable Diffusion pipeline factory."""

import torch
from diffusers import StableDiffusionPipeline
from safetensors.torch import load_file

from revival.evaluate.generate import generate
from revival.models import load_pipeline
from revival.testing import tiny_sd_pipeline


def test_tiny_sd_pipeline_reloads_and_generates(tmp_path):
    torch.set_num_threads(1)
    path = tiny_sd_pipeline(tmp_path / "sd")
    assert path == tmp_path / "sd"
    for f in ("model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
              "tokenizer/vocab.json", "tokenizer/merges.txt", "text_encoder/config.json", "vae/config.json"):
        assert (path / f).is_file(), f
    pipe = load_pipeline(path)
    assert isinstance(pipe, StableDiffusionPipeline)
    assert pipe.safety_checker is None
    assert any(n.endswith("ff.net.2.weight") for n, _ in pipe.unet.named_parameters())
    ids = pipe.tokenizer("a photo of a naked woman").input_ids
    assert ids[0] == pipe.tokenizer.bos_token_id and ids[-1] == pipe.tokenizer.eos_token_id
    images = generate(pipe, ["a church in a road", "a road"], [0, 1], num_inference_steps=1, guidance_scale=7.5)
    assert images.shape == (2, 16, 16, 3)
    assert images.dtype.name == "uint8"


def test_tiny_sd_pipeline_is_seeded(tmp_path):
    a = load_file(tiny_sd_pipeline(tmp_path / "a", seed=0) / "unet/diffusion_pytorch_model.safetensors")
    b = load_file(tiny_sd_pipeline(tmp_path / "b", seed=0) / "unet/diffusion_pytorch_model.safetensors")
    c = load_file(tiny_sd_pipeline(tmp_path / "c", seed=1) / "unet/diffusion_pytorch_model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
