"""Shared fixtures: seeded, small, CPU-only."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the Hub: an id that is not cached fails at once

import pytest  # noqa: E402
import torch  # noqa: E402

from revival.mini.model import build_pipeline  # noqa: E402


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def random_mini_pipeline():
    """A random-init mini pipeline (fast, no trained weights needed)."""
    pipe = build_pipeline(0)
    pipe.set_progress_bar_config(disable=True)
    return pipe
