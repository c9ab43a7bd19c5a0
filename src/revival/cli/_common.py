"""Argument helpers shared by command modules (nothing heavy: parsing must answer at once)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from revival import validate

PROMPT_LIMIT = 2000  # characters of a --prompt (CLIP reads 77 tokens of it)
WORD_LIMIT = 100  # characters of a concept word


DEVICE_HELP = "torch device: cpu, cuda, cuda:N, mps (default: cuda when available, else cpu)"
DTYPES = ("fp32", "fp16", "bf16")


def key_text(text: str) -> tuple[str, str]:
    """NAME=PATH."""
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {validate.shorten(text)!r}")
    return key.strip().lower(), value


def add_evaluator_args(p, nudity: bool = True, prompt_files: bool = True) -> None:
    """The Stable Diffusion evaluators' options: weights from a file, a folder or a Hub id (revival downloads none
    itself), NudeNet's model and threshold, and the nudity prompt sets."""
    p.add_argument("--classifier", default=None,
                   help="objects: torchvision's ResNet-50 weights (resnet50-11ad3fa6.pth with --allow-pickle, or a "
                   ".safetensors copy)")
    p.add_argument("--clip", default=None,
                   help="artists and fidelity: a CLIP model folder (CLIPModel + CLIPProcessor) or a Hub id, e.g. "
                   "openai/clip-vit-base-patch32")
    if nudity:
        p.add_argument("--nudenet-model", default=None, help="nudity: a NudeNet .onnx file (default: its bundled 320n)")
        p.add_argument("--nudity-threshold", type=validate.number(0, 1, lo_open=True, hi_open=True), default=0.5,
                       help="nudity: a detection counts above this score (default %(default)s)")
    if prompt_files:
        p.add_argument("--nudity-sets", default="ring-a-bell",
                       help="nudity: comma-separated prompt sets of ring-a-bell, i2p, mma (default %(default)s)")
        p.add_argument("--prompts-file", action="append", type=key_text, default=[], metavar="NAME=PATH",
                       help="nudity prompts of set NAME (i2p, mma, or ring-a-bell to replace the shipped one): CSV "
                       "with a prompt column (and evaluation_seed / sd_seed) or one prompt a line")


def add_model_args(p: argparse.ArgumentParser, unet: bool = True) -> None:
    """--model, --unet, --device, --dtype, --allow-pickle, --safety-checker."""
    p.add_argument("--model", default="mini",
                   help="`mini` (bundled), a local diffusers pipeline folder, or a Hugging Face Hub id (fetched by "
                   "diffusers into your cache; HF_HUB_OFFLINE=1 uses the cache only)")
    if unet:
        p.add_argument("--unet", default=None,
                       help="replace the denoiser's weights (UNet or transformer) by this checkpoint (denoiser or "
                       "pipeline folder, or .safetensors)")
    add_device_arg(p, DEVICE_HELP)
    add_dtype_arg(p)
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow pickled weights: .pt/.ckpt checkpoints (read with torch.load(weights_only=True)) and "
                   "pipeline components with only .bin weights")
    p.add_argument("--safety-checker", action="store_true",
                   help="keep the pipeline's safety checker (off by default: it blacks out images an evaluation "
                   "must see; recorded in result.json)")


def add_dtype_arg(p: argparse.ArgumentParser) -> None:
    """--dtype of the pipeline's weights."""
    p.add_argument("--dtype", choices=DTYPES, default="fp32",
                   help="weights' precision: fp32, fp16 (GPUs) or bf16 (default %(default)s)")


def add_device_arg(p: argparse.ArgumentParser, help: str = DEVICE_HELP, default: str | None = None) -> None:
    """--device, checked to name a torch device type (availability is checked before the work); one default
    everywhere: None, resolved to cuda when available, else cpu (`validate.resolve_device`)."""
    p.add_argument("--device", type=validate.device_name, default=default, help=help)


def add_sampling_args(p: argparse.ArgumentParser) -> None:
    """--steps, --guidance, --batch-size, --height, --width: defaults per model family (`revival.families`)."""
    p.add_argument("--steps", type=validate.positive_int, default=None,
                   help="denoising steps (default per family: the bundled mini 20, SD 1.x/2.x and SDXL 50, SD3 and "
                   "Flux 28)")
    p.add_argument("--guidance", type=validate.number(0), default=None,
                   help="guidance scale, >= 0 (default per family: the bundled mini 3.0, SD 1.x/2.x 7.5, SDXL 5.0, "
                   "SD3 7.0, Flux 3.5)")
    p.add_argument("--batch-size", type=validate.positive_int, default=None,
                   help="images per forward batch (default per family: the bundled mini 64, SD 8, SDXL/SD3 4, "
                   "Flux 2)")
    p.add_argument("--height", type=validate.integer(8, 8192), default=None,
                   help="image height in pixels (default: the model's own, e.g. 512 for SD1.5, 1024 for SDXL)")
    p.add_argument("--width", type=validate.integer(8, 8192), default=None, help="image width (as --height)")


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
