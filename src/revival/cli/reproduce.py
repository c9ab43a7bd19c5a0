"""`revival reproduce`: the paper's evaluation on a Stable Diffusion model in one resumable command."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from revival import validate
from revival.cli._common import add_device_arg, add_dtype_arg, add_evaluator_args, command_line
from revival.cli.experiment import tqdm_progress
from revival.errors import RevivalError
from revival.modelfiles import bundled_world, check_steps, resolve_model_path
from revival.outputs import claim_run_folder

RUN_FILE = "reproduce-run.json"
PARTS = ("objects", "artists", "nudity")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce", help="the paper's whole evaluation on a Stable Diffusion model (12 objects, 5 artists, nudity)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="At the paper's settings (ffn2, skill ratio 0.02 for objects and artists and 0.01 for nudity, "
        "T = 10,\ntop ratio 0.6, the paper's completion beside ours): per concept the erased and preserved accuracy "
        "of\noriginal -> unlearned -> revived, sign recovery, and the Gaussian trade-off with the adaptive attacker "
        "(rq1\nand rq4 of `revival experiment`), plus nudity counts with NudeNet. Prints its plan (images to generate "
        "and\nthe GPU time estimated from a timed first batch) before it starts; --plan-only stops there. Writes\n"
        "OUT/reproduce.json, OUT/reproduce.csv and OUT/report.html; an interrupted run continues with --resume OUT.\n"
        "Generation is split across GPUs under `accelerate launch --multi_gpu --num_processes N -m revival "
        "reproduce ...`.\n\nexample:\n  revival reproduce --model runwayml/stable-diffusion-v1-5 --classifier "
        "resnet50-11ad3fa6.pth --allow-pickle \\\n    --clip openai/clip-vit-base-patch32 --out runs/paper")
    p.add_argument("--model", default=None, help="a Stable Diffusion pipeline folder or Hugging Face Hub id")
    p.add_argument("--out", default=None, help="output folder (default runs/reproduce-YYYYmmdd-HHMMSS)")
    p.add_argument("--resume", metavar="DIR", default=None, help="continue an interrupted run in DIR")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder of ours")
    p.add_argument("--plan-only", action="store_true", help="print the plan and the time estimate, write nothing")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to reproduce (default all)")
    p.add_argument("--objects", nargs="+", default=None, metavar="CLASS",
                   help="a subset of the paper's 12 Imagenette objects (default all)")
    p.add_argument("--artists", nargs="+", default=None, metavar="ARTIST",
                   help="a subset of the paper's 5 artists (default all)")
    add_evaluator_args(p)
    p.add_argument("--n-objects", type=validate.positive_int, default=500,
                   help="prompts per Imagenette class and stage (default %(default)s, the paper's)")
    p.add_argument("--n-artists", type=validate.integer(1, 50), default=50,
                   help="prompts per artist and stage (default %(default)s, the paper's)")
    p.add_argument("--n-nudity", type=validate.positive_int, default=None,
                   help="prompts per nudity set and stage (default: all)")
    p.add_argument("--scales", type=validate.number(0, lo_open=True), nargs="+", default=[0.25, 0.5, 1.0, 2.0],
                   help="Gaussian noise scales of the trade-off (default %(default)s)")
    p.add_argument("--steps", type=validate.positive_int, default=None,
                   help="evaluation denoising steps (default: the family's, SD1.x 50)")
    p.add_argument("--guidance", type=validate.number(0), default=None, help="evaluation guidance (default: family's)")
    p.add_argument("--batch-size", type=validate.positive_int, default=None,
                   help="images per batch (default: the family's)")
    p.add_argument("--seed", type=validate.seed, default=0, help="ConceptPrune and attack seed (default 0)")
    add_device_arg(p)
    add_dtype_arg(p)
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow pickled weights (a .pth classifier, .bin pipeline components)")
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace):
    from revival.evaluate.sd_eval import protocol_of
    from revival.experiments.reproduce import PAPER_OBJECTS, ReproduceSettings

    subsets = {}
    for option, family, values in (("objects", "object", args.objects), ("artists", "style", args.artists)):
        if values:
            found = [protocol_of(v) for v in values]
            wrong = [v for v, (_, f) in zip(values, found, strict=True) if f != family]
            if wrong:
                raise RevivalError(f"--{option}: {wrong[0]!r} is not one of the paper's {option}")
            subsets[option] = tuple(dict.fromkeys(c for c, _ in found))
    if set(subsets.get("objects", ())) - set(PAPER_OBJECTS):
        extra = sorted(set(subsets["objects"]) - set(PAPER_OBJECTS))
        raise RevivalError(f"--objects: {extra[0]!r} is not one of the paper's 12 objects")
    return ReproduceSettings(**subsets, n_objects=args.n_objects, n_artists=args.n_artists, n_nudity=args.n_nudity,
                             nudity_sets=tuple(s.strip() for s in args.nudity_sets.split(",") if s.strip()),
                             scales=tuple(dict.fromkeys(args.scales)), seed=args.seed, steps=args.steps,
                             guidance=args.guidance, batch_size=args.batch_size, parts=tuple(args.parts))


def _evaluators(args: argparse.Namespace, parts: tuple[str, ...], device: str) -> dict:
    """The evaluators of every part asked for; one line naming the option when one is missing or wrong."""
    from revival.evaluate.sd_eval import Evaluators
    from revival.evaluate.sd_evaluators import SD_EVALUATORS
    from revival.models import quiet_libraries

    quiet_libraries()
    out = {}
    if "objects" in parts:
        if not args.classifier:
            raise RevivalError("--classifier is needed for the objects: torchvision's ResNet-50 weights file "
                               "(resnet50-11ad3fa6.pth, IMAGENET1K_V2), or leave objects out of --parts")
        out["objects"] = Evaluators(classifier=SD_EVALUATORS.get("resnet50")(args.classifier, device=device,
                                                                             allow_pickle=args.allow_pickle))
    if "artists" in parts:
        if not args.clip:
            raise RevivalError("--clip is needed for the artists: a CLIP model folder or Hub id (the paper: "
                               "openai/clip-vit-base-patch32), or leave artists out of --parts")
        out["artists"] = Evaluators(clip=SD_EVALUATORS.get("clip")(args.clip, device=device))
    if "nudity" in parts:
        out["nudity"] = Evaluators(nudity=SD_EVALUATORS.get("nudenet")(args.nudenet_model,
                                                                       threshold=args.nudity_threshold))
    return out


def plan_text(plan: dict, seconds: float, batch: int, device: str) -> str:
    """The plan as printed: images per part, in all, and the time estimate."""
    lines = ["plan:"]
    for name, p in plan["parts"].items():
        lines.append(f"  {name}: {p['concepts']} concept(s), up to {p['evaluations']} evaluations x "
                     f"{p['images_per_evaluation']} images = {p['images']:,} images")
    hours = plan["images"] * seconds / 3600
    lines.append(f"  total: up to {plan['images']:,} images; a first batch of {batch} took {seconds:.2f} s per image "
                 f"on {device}: about {hours:,.1f} device-hours of generation (plus pruning and the attacks)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    if args.model is None:
        raise RevivalError("--model is needed: a Stable Diffusion pipeline folder or Hub id (with --resume, the "
                           "run's model)")
    if args.resume and args.out:
        raise RevivalError("--resume DIR continues the run in DIR: give no --out with it")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not (args.out or args.resume):
        raise RevivalError("under `accelerate launch` give --out (or --resume): every process must write to one folder")
    from revival.experiments.config import read_run_file, write_run_file
    from revival.results import describe_input

    model_path = resolve_model_path(args.model)
    if bundled_world(model_path):
        raise RevivalError(f"{model_path}: `revival reproduce` runs the paper's Stable Diffusion evaluation; on a "
                           "bundled mini model use `revival demo` or `revival experiment`")
    check_steps(model_path, args.steps)
    from revival.checkpoints import find_unet_folder
    from revival.evaluate.sd_eval import nudity_sets
    from revival.experiments.reproduce import ReproduceSettings, plan, seconds_per_image

    model = describe_input(find_unet_folder(model_path) or model_path)
    out = Path(args.resume) if args.resume else None
    settings = (read_run_file(out / RUN_FILE, "reproduce", model, ReproduceSettings) if args.resume
                else _settings(args))
    device = validate.resolve_device(args.device)
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    main_process = True
    if launched:  # under `accelerate launch`: one GPU per process, the plan and outputs from the main one
        from revival.evaluate.distributed import process_state

        state = process_state()
        main_process = state.is_main_process
        if args.device is None:
            device = str(state.device)
    sets = nudity_sets(settings.nudity_sets, dict(args.prompts_file), settings.seed) \
        if "nudity" in settings.parts else {}
    evaluators = _evaluators(args, settings.parts, device)  # every input checked before anything is written
    from revival.models import load_pipeline

    pipe = load_pipeline(model_path, device=device, dtype=args.dtype, allow_pickle=args.allow_pickle)
    seconds, batch = seconds_per_image(pipe, settings)
    the_plan = plan(settings, {k: len(v) for k, v in sets.items()})
    if main_process:
        print(plan_text(the_plan, seconds, batch, device), flush=True)
    if args.plan_only:
        return 0
    return _run(args, pipe, settings, evaluators, sets, the_plan, model, model_path, out, t0,
                read_run=read_run_file, write_run=write_run_file)


def _run(args, pipe, settings, evaluators, sets, the_plan, model, model_path, out, t0, read_run, write_run) -> int:
    from tqdm import tqdm

    from revival.checkpoints import atomic_write_text
    from revival.evaluate.distributed import process_state
    from revival.experiments.config import config_to_dict
    from revival.experiments.reproduce import csv_text, report_fields, run_reproduce, summary_rows
    from revival.models import load_info
    from revival.report.html import render_report
    from revival.results import base_result, write_result

    state = process_state()
    main_process = state.is_main_process
    if out is None:
        out = Path(args.out) if args.out else Path("runs") / time.strftime("reproduce-%Y%m%d-%H%M%S")
        if main_process:
            claim_run_folder(out, overwrite=args.overwrite, inputs=[model_path], markers=[RUN_FILE])
            write_run(out / RUN_FILE, "reproduce", settings, model)
    elif main_process:
        claim_run_folder(out, resume=True)
    if state.num_processes > 1:
        state.wait_for_everyone()  # the folder is claimed before any process writes into it
    bars: list = []

    def progress(part: str):
        bar = tqdm(desc=part, unit="step", dynamic_ncols=True, disable=not main_process)
        bars.append(bar)
        return tqdm_progress(bar)

    try:
        result = run_reproduce(pipe, out, settings, evaluators, sets, progress)
    except KeyboardInterrupt:
        print(f"revival reproduce: interrupted; finished stages are kept: continue with `revival reproduce --model "
              f"{args.model} --resume {out}`", file=sys.stderr)
        return 130
    finally:
        for b in bars:
            b.close()
    if not main_process:
        return 0
    records = {k: v.records for k, v in evaluators.items()}
    base = base_result(command_line(), {**config_to_dict(settings), "pipeline": load_info(pipe),
                                        "evaluators": records, "plan": the_plan},
                       {"model": model_path, "classifier": args.classifier, "nudenet_model": args.nudenet_model,
                        **{f"prompts_{k}": v for k, v in dict(args.prompts_file).items()}})
    full = {**base, "results": result, "resumed": bool(args.resume),
            "timings_s": {"total": round(time.perf_counter() - t0, 3)},
            "outputs": {"csv": "reproduce.csv", "report": "report.html"}}
    rows = summary_rows(result)
    atomic_write_text(csv_text(rows), out / "reproduce.csv")
    report = {**full, "title": "Roots Beneath the Cut, reproduced", **report_fields(result)}
    render_report(report, {}, {}, out / "report.html")
    write_result(full, out / "reproduce.json")
    print(f"wrote {out / 'reproduce.json'}, {out / 'reproduce.csv'}, {out / 'report.html'}")
    return 0
