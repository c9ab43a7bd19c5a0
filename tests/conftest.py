"""Shared fixtures: seeded, small, CPU-only."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the Hub: an id that is not cached fails at once

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def random_mini_folder(tmp_path_factory):
    """A random-init miniature Stable Diffusion folder: the bundled model's world, VAE and text encoder around a
    tiny UNet (`revival.testing.tiny_minisd_pipeline`; fast, no trained weights needed). Read-only: copy to change."""
    from revival.testing import tiny_minisd_pipeline

    return tiny_minisd_pipeline(tmp_path_factory.mktemp("random-mini") / "pipe")


@pytest.fixture(scope="session")
def random_mini_pipeline(random_mini_folder):
    """`random_mini_folder` loaded as the bundled model is, a plain diffusers StableDiffusionPipeline."""
    from revival.models import load_pipeline

    return load_pipeline(random_mini_folder)
