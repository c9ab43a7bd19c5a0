"""`revival prune`: ConceptPrune a model and write the unlearned UNet, its masks and result.json.

Output folder layout (written to a temporary sibling, then renamed into place):
  unet/               diffusers UNet folder (config.json + diffusion_pytorch_model.safetensors;
                      transformer/ for SD3 and Flux),
                      loadable by `revival generate --unet DIR/unet` and `load_checkpoint`
  masks.safetensors   bool mask per pruned parameter (True = pruned); for evaluation only
  result.json         command, config (every hyper-parameter, seeds, prompts), inputs (sha256),
                      outputs, per_layer {name: {shape, pruned, density}}, per_concept, timings_s
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from revival import catalog, validate
from revival.cli._common import WORD_LIMIT, add_model_args, command_line
from revival.errors import RevivalError
from revival.modelfiles import check_steps, resolve_model_path
from revival.outputs import staged_folder


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
    p.add_argument("--concept", action="append", default=[], type=validate.text(WORD_LIMIT),
                   help="concept word (repeat for several concepts: union of masks); with --prompts, a label")
    p.add_argument("--family", choices=catalog.FAMILY_NAMES, default="object",
                   help="prompt family: object ('a {scene}' vs 'a {concept} in a {scene}'), style ('a photo of "
                   "a {thing}' vs 'a {thing} in the style of {concept}'), attribute ('a photo of a {person}' vs "
                   "'a photo of a {concept} {person}'; mini model: '... of a {object} in a {concept}')")
    p.add_argument("--prompts", default=None, help="CSV/TSV file with `base` and `target` columns (replaces --family)")
    p.add_argument("--out", required=True, help="output folder (must be empty or absent unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out of ours")
    p.add_argument("--skill-ratio", type=validate.ratio, default=0.02,
                   help="share of each row's columns kept as skilled, in (0, 1)")
    p.add_argument("--timesteps", type=validate.positive_int, default=10,
                   help="first T denoising steps whose masks are united")
    p.add_argument("--select-ratio", type=validate.number(0, 1, hi_open=True), default=0.0,
                   help="prune a weight when selected in more than select_ratio*T steps, in [0, 1) (0 = union)")
    p.add_argument("--hook", choices=list(catalog.LAYER_PRESETS), default="ffn2", help="layers to hook and prune")
    p.add_argument("--seed", type=validate.seed, default=0, help="noise seed of every collection image")
    p.add_argument("--steps", type=validate.positive_int, default=None,
                   help="DDIM steps of the collection sampler (default 50, the paper's); only T are run")
    p.add_argument("--guidance", type=validate.number(0), default=None,
                   help="CFG scale, >= 0 (default 7.5, the paper's)")
    p.add_argument("--batch-size", type=validate.positive_int, default=16, help="prompts per sampling batch")
    p.add_argument("--height", type=validate.integer(8, 8192), default=None,
                   help="collection image height (default: the model's own, e.g. 512 for SD1.5)")
    p.add_argument("--width", type=validate.integer(8, 8192), default=None, help="collection image width")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.prompts is not None and len(args.concept) > 1:
        raise RevivalError("--prompts describes one concept: give at most one --concept (its label)")
    concepts = args.concept or ([Path(args.prompts).stem] if args.prompts is not None else [])
    if not concepts:
        raise RevivalError("give at least one --concept (or --prompts FILE)")
    if args.steps is not None and args.timesteps > args.steps:
        raise RevivalError(f"--timesteps {args.timesteps} exceeds --steps {args.steps}: only the first T of the "
                           "sampler's steps can be united")
    model_path = resolve_model_path(args.model)
    check_steps(model_path, args.steps)
    with staged_folder(out, overwrite=args.overwrite, inputs=[model_path, args.unet, args.prompts]) as tmp:
        summary = _prune(args, out, tmp, model_path, concepts)
    print(summary)
    return 0


def _prune(args: argparse.Namespace, out: Path, tmp: Path, model_path: Path, concepts: list[str]) -> str:
    """ConceptPrune the model and write unet/, masks.safetensors and result.json into `tmp`; the summary line."""
    from revival.checkpoints import atomic_save_safetensors, find_unet_folder
    from revival.families import denoiser, denoiser_name
    from revival.models import load_info, load_pipeline
    from revival.results import base_result, write_result
    from revival.unlearn import concept_prune, hook_layers, read_prompt_pairs

    device = validate.resolve_device(args.device)
    prompts = read_prompt_pairs(args.prompts) if args.prompts else None
    unet_folder = find_unet_folder(model_path)
    if unet_folder is None:
        raise RevivalError(f"{model_path}: no UNet or transformer in this pipeline folder (expected unet/ or "
                           "transformer/ with config.json and diffusion_pytorch_model safetensors weights)")

    t0 = time.perf_counter()
    pipe = load_pipeline(model_path, args.unet, device=device, dtype=args.dtype, allow_pickle=args.allow_pickle,
                         safety_checker=args.safety_checker)
    model = denoiser(pipe)
    try:
        hook_layers(model, args.hook)  # one line, before any sampling, when the method does not apply
    except RevivalError as e:
        raise RevivalError(f"{model_path}: {e}") from None
    t1 = time.perf_counter()
    result = concept_prune(
        pipe, concepts, family=args.family, skill_ratio=args.skill_ratio, timesteps=args.timesteps,
        select_ratio=args.select_ratio, hook=args.hook, seed=args.seed, num_inference_steps=args.steps,
        guidance_scale=args.guidance, prompts=prompts, batch_size=args.batch_size, progress=True,
        height=args.height, width=args.width,
    )
    t2 = time.perf_counter()

    component = denoiser_name(pipe)
    model.save_pretrained(tmp / component, safe_serialization=True)
    atomic_save_safetensors(result.masks, tmp / "masks.safetensors",
                            metadata={"format": "pt", "content": "ConceptPrune masks, True = pruned"})
    report = base_result(command_line(), {**result.config, "model": str(model_path), "unet": args.unet,
                                          "device": str(device), "pipeline": load_info(pipe)},
                         {"unet": args.unet or unet_folder, "text_encoder": model_path / "text_encoder",
                          "prompts": args.prompts})
    report["outputs"] = {"checkpoint": str(out / component), "masks": str(out / "masks.safetensors"),
                         "format": f"diffusers {type(model).__name__} folder (config.json + "
                         "diffusion_pytorch_model.safetensors)"}
    report["per_layer"] = result.per_layer
    report["per_concept"] = result.per_concept
    pruned = sum(v["pruned"] for v in result.per_layer.values())
    size = sum(v["shape"][0] * v["shape"][1] for v in result.per_layer.values())
    report["summary"] = {"layers": len(result.per_layer), "pruned": pruned, "density": pruned / size}
    report["timings_s"] = {"load": round(t1 - t0, 3), **result.timings_s,
                           "save": round(time.perf_counter() - t2, 3)}
    write_result(report, tmp / "result.json")
    return (f"wrote {out}: pruned {pruned} weights in {len(result.per_layer)} layers "
            f"(density {pruned / size:.4f}, {t2 - t1:.1f}s)")
