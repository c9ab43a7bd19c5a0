"""Shared fixtures: seeded, small, CPU-only."""

from __future__ import annotations

import pytest
import torch

from revival.mini.model import build_pipeline


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def random_mini_pipeline():
    """A random-init mini pipeline (fast, no trained weights needed)."""
    pipe = build_pipeline(0)
    pipe.set_progress_bar_config(disable=True)
    return pipe
