"""`revival generate`: a seeded image grid from a model (optionally with a replaced UNet)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from revival import budget, validate
from revival.cli._common import PROMPT_LIMIT, add_model_args, add_sampling_args, command_line
from revival.errors import RevivalError
from revival.modelfiles import check_steps, default_batch, image_size, resolve_model_path
from revival.outputs import staged_files


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="render a seeded grid of images for one prompt",
                       description="Render N images of one prompt (image i uses seed+i) into a grid PNG, "
                       "with a JSON record next to it.")
    add_model_args(p)
    add_sampling_args(p)
    p.add_argument("--prompt", required=True, type=validate.text(PROMPT_LIMIT))
    p.add_argument("-n", "--num-images", type=validate.positive_int, default=16)
    p.add_argument("--seed", type=validate.seed, default=0)
    p.add_argument("--out", default="grid.png", help="output PNG (a .json record is written beside it)")
    p.set_defaults(func=run)


def _grid_scale(size: tuple[int, int]) -> int:
    return 4 if size[0] <= 64 else 1


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise RevivalError(f"{out}: --out must be a .png file")
    model_path = resolve_model_path(args.model)
    check_steps(model_path, args.steps)
    size = image_size(model_path, args.height, args.width)
    budget.check_images(args.num_images, default_batch(model_path, args.batch_size), size,
                        ((args.num_images, _grid_scale(size)),))
    record = out.with_suffix(".json")
    with staged_files(out, record, inputs=[model_path, args.unet]) as (tmp_png, tmp_json):
        summary = _generate(args, out, tmp_png, tmp_json)
    print(summary)
    return 0


def _generate(args: argparse.Namespace, out: Path, tmp_png: Path, tmp_json: Path) -> str:
    """Render the grid and its record to the temporary names; the summary line."""
    from revival.evaluate.generate import generate, make_grid
    from revival.families import sampling
    from revival.minisd.tokenizer import check_prompt
    from revival.models import load_info, load_pipeline
    from revival.results import base_result, write_result
    from revival.worlds import world_of

    device = validate.resolve_device(args.device)
    t0 = time.time()
    pipe = load_pipeline(args.model, args.unet, device=device, dtype=args.dtype, allow_pickle=args.allow_pickle,
                         safety_checker=args.safety_checker)
    plan = sampling(pipe, args.steps, args.guidance, args.batch_size, args.height, args.width)
    if world_of(pipe) != "sd":  # a bundled world's word-level tokenizer: an unknown word would draw as <unk>
        check_prompt(pipe.tokenizer, args.prompt)  # before the progress bar: the error stays one line
    seeds = [args.seed + i for i in range(args.num_images)]
    t1 = time.time()
    images = generate(pipe, [args.prompt] * args.num_images, seeds, plan.steps, plan.guidance,
                      plan.batch_size, progress=True, height=plan.height, width=plan.width)
    t2 = time.time()
    make_grid(images, scale=_grid_scale(images.shape[1:3])).save(tmp_png, format="PNG")
    result = base_result(command_line(), {"prompt": args.prompt, "n": args.num_images, "seed": args.seed,
                                          "steps": plan.steps, "guidance": plan.guidance,
                                          "sampling": plan.record(), "pipeline": load_info(pipe)},
                         {"model": args.model if args.model != "mini" else None, "unet": args.unet})
    result["outputs"] = {"grid": str(out)}
    result["timings_s"] = {"load": round(t1 - t0, 2), "generate": round(t2 - t1, 2)}
    write_result(result, tmp_json)
    return f"wrote {out} ({args.num_images} images, {t2 - t1:.1f}s)"
