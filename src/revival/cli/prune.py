"""`revival prune`: ConceptPrune a model and write the unlearned UNet, its masks and result.json.

Output folder layout (written to a temporary sibling, then renamed into place):
  unet/               diffusers UNet folder (config.json + diffusion_pytorch_model.safetensors),
                      loadable by `revival generate --unet DIR/unet` and `load_checkpoint`
  masks.safetensors   bool mask per pruned parameter (True = pruned); for evaluation only
  result.json         command, config (every hyper-parameter, seeds, prompts), inputs (sha256),
                      outputs, per_layer {name: {shape, pruned, density}}, per_concept, timings_s
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from revival.checkpoints import LAYER_PRESETS, atomic_save_safetensors, atomic_write_json, find_unet_folder
from revival.cli._common import add_model_args, command_line
from revival.errors import RevivalError
from revival.models import load_pipeline, resolve_model_path
from revival.results import base_result
from revival.unlearn import concept_prune, read_prompt_pairs
from revival.unlearn.prompts import FAMILY_NAMES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prune", help="erase a concept with ConceptPrune (zero its skilled UNet weights)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="ConceptPrune: sample base and target prompts with hooks on the UNet layers, score\n"
        "weights by WANDA (|W| * activation norm), keep per output row the top skill-ratio weights\n"
        "whose target score beats the base score, unite over the first T denoising steps and over\n"
        "concepts, and set them to 0.\n\n"
        "OUT receives unet/ (a diffusers UNet folder), masks.safetensors (for evaluation only) and\n"
        "result.json.\n\nexamples:\n  revival prune --model mini --concept star --out runs/star\n"
        "  revival prune --model path/to/sd15 --concept naked --family attribute --skill-ratio 0.01 --out runs/nude",
    )
    add_model_args(p)
    p.add_argument("--concept", action="append", default=[],
                   help="concept word (repeat for several concepts: union of masks); with --prompts, a label")
    p.add_argument("--family", choices=FAMILY_NAMES, default="object",
                   help="prompt family: object ('a {scene}' vs 'a {concept} in a {scene}'), style ('a photo of "
                   "a {thing}' vs 'a {thing} in the style of {concept}'), attribute ('a photo of a {person}' vs "
                   "'a photo of a {concept} {person}'; mini model: '... of a {object} in a {concept}')")
    p.add_argument("--prompts", default=None, help="CSV/TSV file with `base` and `target` columns (replaces --family)")
    p.add_argument("--out", required=True, help="output folder (must be empty or absent unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    p.add_argument("--skill-ratio", type=float, default=0.02, help="share of each row's columns kept as skilled")
    p.add_argument("--timesteps", type=int, default=10, help="first T denoising steps whose masks are united")
    p.add_argument("--select-ratio", type=float, default=0.0,
                   help="prune a weight when selected in more than select_ratio*T steps (0 = union)")
    p.add_argument("--hook", choices=list(LAYER_PRESETS), default="ffn2", help="layers to hook and prune")
    p.add_argument("--seed", type=int, default=0, help="noise seed of every collection image")
    p.add_argument("--steps", type=int, default=None,
                   help="DDIM steps of the collection sampler (default 50 for SD, 25 for mini); only T are run")
    p.add_argument("--guidance", type=float, default=None, help="CFG scale (default 7.5 for SD, 4.0 for mini)")
    p.add_argument("--batch-size", type=int, default=16, help="prompts per sampling batch")
    p.set_defaults(func=run)


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise RevivalError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RevivalError(f"{out}: folder exists and is not empty (pass --overwrite to replace it)")


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished temporary folder to `out`, replacing what was there."""
    old = None
    if out.exists():
        old = out.with_name(f"{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _check_out(out, args.overwrite)
    if not 0 < args.skill_ratio < 1:
        raise RevivalError(f"--skill-ratio must be in (0, 1), got {args.skill_ratio}")
    if args.batch_size < 1:
        raise RevivalError(f"--batch-size must be >= 1, got {args.batch_size}")
    prompts = read_prompt_pairs(args.prompts) if args.prompts else None
    if prompts is not None and len(args.concept) > 1:
        raise RevivalError("--prompts describes one concept: give at most one --concept (its label)")
    concepts = args.concept or ([Path(args.prompts).stem] if prompts is not None else [])
    if not concepts:
        raise RevivalError("give at least one --concept (or --prompts FILE)")
    model_path = resolve_model_path(args.model)
    unet_folder = find_unet_folder(model_path)
    if unet_folder is None:
        raise RevivalError(f"{model_path}: no UNet in this pipeline folder (expected unet/config.json and "
                           "unet/diffusion_pytorch_model.safetensors)")

    t0 = time.perf_counter()
    pipe = load_pipeline(args.model, args.unet, device=args.device, allow_pickle=args.allow_pickle)
    t1 = time.perf_counter()
    result = concept_prune(
        pipe, concepts, family=args.family, skill_ratio=args.skill_ratio, timesteps=args.timesteps,
        select_ratio=args.select_ratio, hook=args.hook, seed=args.seed, num_inference_steps=args.steps,
        guidance_scale=args.guidance, prompts=prompts, batch_size=args.batch_size, progress=True,
    )
    t2 = time.perf_counter()

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    try:
        pipe.unet.save_pretrained(tmp / "unet", safe_serialization=True)
        atomic_save_safetensors(result.masks, tmp / "masks.safetensors",
                                metadata={"format": "pt", "content": "ConceptPrune masks, True = pruned"})
        report = base_result(command_line(), {**result.config, "model": str(model_path), "unet": args.unet,
                                              "device": str(args.device)},
                             {"unet": args.unet or unet_folder, "text_encoder": model_path / "text_encoder",
                              "prompts": args.prompts})
        report["outputs"] = {"checkpoint": str(out / "unet"), "masks": str(out / "masks.safetensors"),
                             "format": "diffusers UNet folder (config.json + diffusion_pytorch_model.safetensors)"}
        report["per_layer"] = result.per_layer
        report["per_concept"] = result.per_concept
        pruned = sum(v["pruned"] for v in result.per_layer.values())
        size = sum(v["shape"][0] * v["shape"][1] for v in result.per_layer.values())
        report["summary"] = {"layers": len(result.per_layer), "pruned": pruned, "density": pruned / size}
        report["timings_s"] = {"load": round(t1 - t0, 3), **result.timings_s,
                               "save": round(time.perf_counter() - t2, 3)}
        atomic_write_json(report, tmp / "result.json")
        _publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {out}: pruned {pruned} weights in {len(result.per_layer)} layers "
          f"(density {pruned / size:.4f}, {t2 - t1:.1f}s)")
    return 0
