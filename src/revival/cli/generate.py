"""`revival generate`: a seeded image grid from a model (optionally with a replaced UNet)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from revival.checkpoints import atomic_write_json
from revival.cli._common import add_model_args, add_sampling_args, command_line
from revival.errors import RevivalError
from revival.evaluate.generate import generate, make_grid
from revival.models import load_pipeline
from revival.results import base_result


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="render a seeded grid of images for one prompt",
                       description="Render N images of one prompt (image i uses seed+i) into a grid PNG, "
                       "with a JSON record next to it.")
    add_model_args(p)
    add_sampling_args(p)
    p.add_argument("--prompt", required=True)
    p.add_argument("-n", "--num-images", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="grid.png", help="output PNG (a .json record is written beside it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.num_images < 1:
        raise RevivalError(f"-n must be >= 1, got {args.num_images}")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise RevivalError(f"{out}: --out must be a .png file")
    t0 = time.time()
    pipe = load_pipeline(args.model, args.unet, device=args.device, allow_pickle=args.allow_pickle)
    seeds = [args.seed + i for i in range(args.num_images)]
    t1 = time.time()
    images = generate(pipe, [args.prompt] * args.num_images, seeds, args.steps, args.guidance,
                      args.batch_size, progress=True)
    t2 = time.time()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    make_grid(images, scale=4 if images.shape[1] <= 64 else 1).save(tmp)
    tmp.replace(out)
    result = base_result(command_line(), {"prompt": args.prompt, "n": args.num_images, "seed": args.seed,
                                          "steps": args.steps, "guidance": args.guidance},
                         {"model": args.model if args.model != "mini" else None, "unet": args.unet})
    result["outputs"] = {"grid": str(out)}
    result["timings_s"] = {"load": round(t1 - t0, 2), "generate": round(t2 - t1, 2)}
    atomic_write_json(result, out.with_suffix(".json"))
    print(f"wrote {out} ({args.num_images} images, {t2 - t1:.1f}s)")
    return 0
