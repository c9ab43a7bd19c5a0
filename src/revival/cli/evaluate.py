"""`revival evaluate`: concept accuracy (target vs preserved) of a mini model, optionally with a replaced UNet."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from revival.checkpoints import atomic_write_json
from revival.cli._common import add_model_args, add_sampling_args, command_line
from revival.errors import RevivalError
from revival.evaluate.generate import make_grid
from revival.evaluate.mini_eval import (
    CONTROL,
    FAMILIES,
    concept_accuracy,
    concept_intervals,
    evaluate_family,
    resolve_concept,
)
from revival.mini.evaluator import DEFAULT_PATH as EVALUATOR_PATH
from revival.mini.evaluator import load_evaluator
from revival.mini.pipeline import MiniPipeline
from revival.models import load_pipeline, resolve_model_path
from revival.results import base_result, prepare_out_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="accuracy of a concept and of the rest of its family (mini model)",
                       description="Generate N seeded images (image i: seed+i) of the concept's prompts and of "
                       "every other concept of its family, classify them with the mini-world evaluator, and write "
                       "DIR/result.json (accuracy {target, preserved}, per_concept) and DIR/grid.png. Families: "
                       "object ('a {object} in a {scene}'), style ('a {object} in the style of {style}'), "
                       f"attribute ('a photo of a {{object}} in a cage'; preserved = object accuracy on the "
                       f"control '{CONTROL}' prompts 'a photo of a {{object}}').")
    add_model_args(p)
    add_sampling_args(p)
    p.add_argument("--concept", required=True, help="concept word, e.g. star, neon, cage")
    p.add_argument("--family", choices=FAMILIES.names(), default=None,
                   help="concept family (inferred from the word when omitted)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("-n", "--num-images", type=int, default=32, help="images per concept (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="image i of every concept uses seed+i")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--save-images", action="store_true", help="also write DIR/images/<concept>.png for every concept")
    p.set_defaults(func=run)


def _check_mini(model: str) -> None:
    path = resolve_model_path(model)
    index = json.loads((path / "model_index.json").read_text())
    if index.get("_class_name") != MiniPipeline.__name__:
        raise RevivalError(f"{path}: is a {index.get('_class_name')} model; the mini-world evaluators apply to the "
                           "mini model only (Stable Diffusion evaluators come with the evaluation issue, #6)")


def _save_png(image, target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp.png")
    image.save(tmp)
    tmp.replace(target)


def run(args: argparse.Namespace) -> int:
    if args.num_images < 1:
        raise RevivalError(f"-n must be >= 1, got {args.num_images}")
    concept, family = resolve_concept(args.concept, args.family)
    _check_mini(args.model)
    t0 = time.time()
    pipe = load_pipeline(args.model, args.unet, device=args.device, allow_pickle=args.allow_pickle)
    evaluator = load_evaluator()
    out = prepare_out_dir(args.out, args.overwrite)
    t1 = time.time()
    ev = evaluate_family(pipe, family, args.num_images, args.seed, args.steps, args.guidance, args.batch_size,
                         evaluator=evaluator, progress=True)
    t2 = time.time()
    outputs = {"result": str(out / "result.json"), "grid": str(out / "grid.png")}
    _save_png(make_grid(ev.images[concept], scale=4), out / "grid.png")
    if args.save_images:
        (out / "images").mkdir()
        for c, imgs in ev.images.items():
            _save_png(make_grid(imgs, scale=1), out / "images" / f"{c}.png")
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
    atomic_write_json(result, out / "result.json")
    acc = result["accuracy"]
    ci = result["intervals"]
    print(f"{concept} ({family}): target {acc['target']:.3f} {ci['target']['ci95']}, preserved "
          f"{acc['preserved']:.3f} {ci['preserved']['ci95']} (95% intervals) -> {outputs['result']}")
    return 0
