"""Argument helpers shared by command modules (nothing heavy: parsing must answer at once)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from revival import validate

PROMPT_LIMIT = 2000  # characters of a --prompt (CLIP reads 77 tokens of it)
WORD_LIMIT = 100  # characters of a concept word


def add_model_args(p: argparse.ArgumentParser, unet: bool = True) -> None:
    """--model, --unet, --device, --allow-pickle."""
    p.add_argument("--model", default="mini", help="`mini` (bundled) or a local diffusers pipeline folder")
    if unet:
        p.add_argument("--unet", default=None,
                       help="replace the UNet weights by this checkpoint (UNet/pipeline folder or .safetensors)")
    add_device_arg(p, "torch device: cpu, cuda, cuda:N, mps (default: cuda when available, else cpu)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow .pt/.ckpt checkpoints (read with torch.load(weights_only=True))")


def add_device_arg(p: argparse.ArgumentParser, help: str, default: str | None = None) -> None:
    """--device, checked to name a torch device type (availability is checked before the work)."""
    p.add_argument("--device", type=validate.device_name, default=default, help=help)


def add_sampling_args(p: argparse.ArgumentParser, steps: int = 25, guidance: float = 4.0) -> None:
    """--steps, --guidance, --batch-size."""
    p.add_argument("--steps", type=validate.positive_int, default=steps, help="denoising steps (default %(default)s)")
    p.add_argument("--guidance", type=validate.number(0), default=guidance,
                   help="classifier-free guidance scale, >= 0 (default %(default)s)")
    p.add_argument("--batch-size", type=validate.positive_int, default=64, help="images per forward batch")


def command_line() -> str:
    """The command line as typed, for result JSON."""
    return "revival " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def key_value(text: str) -> tuple[str, object]:
    """`key=value` with value parsed as JSON when possible (numbers, true/false), else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {validate.shorten(text)!r}")
    try:
        return key, json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        return key, value
