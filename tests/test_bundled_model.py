"""The bundled model and its miniature-SD folders load as plain diffusers pipelines and draw seeded images (ported from
the first generation's pipeline tests)."""

import numpy as np
import pytest
import torch

from revival.errors import RevivalError
from revival.evaluate.generate import generate, make_grid
from revival.models import MINI_PATH, load_pipeline


def test_save_load_round_trip(random_mini_pipeline, tmp_path):
    random_mini_pipeline.save_pretrained(tmp_path / "p")
    loaded = load_pipeline(tmp_path / "p")
    assert type(loaded) is type(random_mini_pipeline)
    for name in ("unet", "text_encoder", "vae"):
        a = getattr(random_mini_pipeline, name).state_dict()
        b = getattr(loaded, name).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
    x = generate(random_mini_pipeline, ["a star in a desert"] * 2, [0, 1], num_inference_steps=2)
    y = generate(loaded, ["a star in a desert"] * 2, [0, 1], num_inference_steps=2)
    assert np.array_equal(x, y)


def test_generation_is_seeded(random_mini_pipeline):
    a = generate(random_mini_pipeline, ["a box in a city", "a photo of a ring"], [3, 4], num_inference_steps=2)
    b = generate(random_mini_pipeline, ["a box in a city", "a photo of a ring"], [3, 4], num_inference_steps=2)
    c = generate(random_mini_pipeline, ["a box in a city", "a photo of a ring"], [5, 4], num_inference_steps=2)
    assert a.shape == (2, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a[0], c[0]) and np.array_equal(a[1], c[1])
    assert make_grid(a).size[0] > 128


def test_bundled_model_is_a_plain_stable_diffusion_folder():
    """The bundled model loads as diffusers' own StableDiffusionPipeline (no safety checker) and draws its world."""
    from diffusers import StableDiffusionPipeline

    pipe = load_pipeline("mini")
    assert type(pipe) is StableDiffusionPipeline and pipe.safety_checker is None
    assert (MINI_PATH / "training.json").is_file() and pipe.unet.dtype == torch.float32
    imgs = generate(pipe, ["a photo of a star in a desert"] * 4, list(range(4)), num_inference_steps=5)
    assert imgs.shape == (4, 64, 64, 3)
    assert imgs.std() > 10  # not a blank image


def test_missing_or_non_diffusers_folder(tmp_path):
    with pytest.raises(RevivalError, match="no such model folder"):
        load_pipeline(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RevivalError, match="model_index.json is missing"):
        load_pipeline(tmp_path / "empty")
