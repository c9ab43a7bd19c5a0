"""`revival evaluate`: concept accuracy (target vs preserved) of a mini model, optionally with a replaced UNet."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from revival import budget, catalog, validate
from revival.cli._common import WORD_LIMIT, add_model_args, add_sampling_args, command_line
from revival.errors import RevivalError
from revival.modelfiles import FAMILY_SAMPLING, check_steps, folder_family, image_size, is_mini, resolve_model_path
from revival.outputs import staged_folder

GRID_SCALE = 4


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="accuracy of a concept and of the rest of its family (mini model)",
                       description="Generate N seeded images (image i: seed+i) of the concept's prompts and of "
                       "every other concept of its family, classify them with the mini-world evaluator, and write "
                       "DIR/result.json (accuracy {target, preserved}, per_concept) and DIR/grid.png. Families: "
                       "object ('a {object} in a {scene}'), style ('a {object} in the style of {style}'), "
                       f"attribute ('a photo of a {{object}} in a cage'; preserved = object accuracy on the "
                       f"control '{catalog.CONTROL}' prompts 'a photo of a {{object}}').")
    add_model_args(p)
    add_sampling_args(p)
    p.add_argument("--concept", required=True, type=validate.text(WORD_LIMIT),
                   help="concept word, e.g. star, neon, cage")
    p.add_argument("--family", choices=catalog.FAMILY_NAMES, default=None,
                   help="concept family (inferred from the word when omitted)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("-n", "--num-images", type=validate.positive_int, default=32,
                   help="images per concept (default %(default)s)")
    p.add_argument("--seed", type=validate.seed, default=0, help="image i of every concept uses seed+i")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder of ours")
    p.add_argument("--save-images", action="store_true", help="also write DIR/images/<concept>.png for every concept")
    p.set_defaults(func=run)


def _check_mini(path: Path) -> None:
    if not is_mini(path):
        raise RevivalError(f"{path}: is not the mini model; the mini-world evaluators apply to the "
                           "mini model only (Stable Diffusion evaluators come with the evaluation issue, #6)")


def run(args: argparse.Namespace) -> int:
    model_path = resolve_model_path(args.model)
    _check_mini(model_path)
    steps, guidance, batch = FAMILY_SAMPLING[folder_family(model_path)]
    args.steps, args.batch_size = args.steps or steps, args.batch_size or batch
    args.guidance = guidance if args.guidance is None else args.guidance
    check_steps(model_path, args.steps)
    from revival.evaluate.mini_eval import FAMILIES, resolve_concept

    concept, family = resolve_concept(args.concept, args.family)
    n_total = args.num_images * len(FAMILIES.get(family).concepts)
    grids = ((args.num_images, GRID_SCALE),) + (((n_total, 1),) if args.save_images else ())
    budget.check_images(n_total, args.batch_size, image_size(model_path), grids, n_value=args.num_images)
    out = Path(args.out)
    with staged_folder(out, overwrite=args.overwrite, inputs=[args.unet]) as tmp:
        summary = _evaluate(args, out, tmp, concept, family)
    print(summary)
    return 0


def _evaluate(args: argparse.Namespace, out: Path, tmp: Path, concept: str, family: str) -> str:
    """Generate, classify and write result.json and grid.png into `tmp`; the summary line."""
    from revival.evaluate.generate import make_grid
    from revival.evaluate.mini_eval import concept_accuracy, concept_intervals, evaluate_family
    from revival.mini.evaluator import DEFAULT_PATH as EVALUATOR_PATH
    from revival.mini.evaluator import load_evaluator
    from revival.models import load_pipeline
    from revival.results import base_result, write_result

    device = validate.resolve_device(args.device)
    t0 = time.time()
    pipe = load_pipeline(args.model, args.unet, device=device, dtype=args.dtype, allow_pickle=args.allow_pickle,
                         safety_checker=args.safety_checker)
    evaluator = load_evaluator()
    t1 = time.time()
    ev = evaluate_family(pipe, family, args.num_images, args.seed, args.steps, args.guidance, args.batch_size,
                         evaluator=evaluator, progress=True)
    t2 = time.time()
    outputs = {"result": str(out / "result.json"), "grid": str(out / "grid.png")}
    make_grid(ev.images[concept], scale=GRID_SCALE).save(tmp / "grid.png")
    if args.save_images:
        (tmp / "images").mkdir()
        for c, imgs in ev.images.items():
            make_grid(imgs, scale=1).save(tmp / "images" / f"{c}.png")
        outputs["images"] = str(out / "images")
    config = {"concept": concept, "family": family, "n_per_concept": args.num_images, "seed": args.seed,
              "steps": args.steps, "guidance": args.guidance, "batch_size": args.batch_size,
              "prompts": {c: sorted(set(p)) for c, p in ev.prompts.items()}}
    result = base_result(command_line(), config, {"model": args.model if args.model != "mini" else None,
                                                  "unet": args.unet, "evaluator": EVALUATOR_PATH})
    result["accuracy"] = concept_accuracy(ev.per_concept, concept)
    result["per_concept"] = ev.per_concept
    result["intervals"] = {**concept_intervals(ev.shares, concept), "per_concept": ev.shares,
                           "method": "Wilson 95% over images; preserved pools the other concepts' images"}
    result["outputs"] = outputs
    result["timings_s"] = {"load": round(t1 - t0, 2), "generate_and_classify": round(t2 - t1, 2)}
    write_result(result, tmp / "result.json")
    acc = result["accuracy"]
    ci = result["intervals"]
    return (f"{concept} ({family}): target {acc['target']:.3f} {ci['target']['ci95']}, preserved "
            f"{acc['preserved']:.3f} {ci['preserved']['ci95']} (95% intervals) -> {outputs['result']}")
