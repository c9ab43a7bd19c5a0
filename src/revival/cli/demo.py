"""`revival demo`: the whole story on the bundled mini model or a Stable Diffusion model, into one run folder."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from revival import validate
from revival.cli._common import WORD_LIMIT, add_device_arg, add_dtype_arg, add_evaluator_args, command_line
from revival.errors import RevivalError
from revival.modelfiles import bundled_world, resolve_model_path
from revival.outputs import claim_run_folder

from .experiment import tqdm_progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="the whole story on the bundled mini model: erase, revive, defend, revive again; one report",
        description="For each concept (default: the object 'star', the style 'neon' and the attribute 'striped'): "
        "original -> unlearned (ConceptPrune) -> revived (the data-free attack) -> defended (Gaussian filling, row "
        "scope, scale 1) -> revived after the defense by the best adaptive locator. Writes OUT/result.json, "
        "results.csv, grids/ (the same prompts and seeds at every stage), plots/ and a self-contained report.html. "
        "On the bundled model: the paper's settings, 32 images of each erased concept per stage, about 5 minutes on 2 "
        "CPU cores (--quick: 8 images, about 1 minute). Interrupted runs continue with --resume OUT. On a "
        "Stable Diffusion model (folder or Hub id; default concepts church and Van Gogh) the stages are measured "
        "with the paper's protocol: give --classifier for objects and --clip for artists (see `revival evaluate "
        "--help`), 20 prompts per class or artist and stage (--quick 2).")
    p.add_argument("--model", default="mini",
                   help="the bundled `mini` model, or a Stable Diffusion pipeline folder or Hub id")
    p.add_argument("--out", default=None, help="run folder (default runs/demo-YYYYmmdd-HHMMSS)")
    p.add_argument("--quick", action="store_true", help="fewer, shorter generations (smoke test, under 3 minutes)")
    p.add_argument("--resume", metavar="DIR", default=None,
                   help="continue an interrupted run in DIR with its own settings (cached stages are reused)")
    p.add_argument("--concepts", nargs="+", default=None, metavar="WORD", type=validate.text(WORD_LIMIT),
                   help="concepts to erase (default: star neon striped: an object, a style, an attribute)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder of ours")
    add_device_arg(p)
    add_dtype_arg(p)
    add_evaluator_args(p, nudity=False, prompt_files=False)
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow pickled weights (a .pth classifier, .bin pipeline components)")
    p.set_defaults(func=run)


def _table(result: dict) -> str:
    from revival.findings import show
    from revival.report.plots import STAGE_LABELS, STAGES

    cols = [STAGE_LABELS[s] for s in STAGES]
    lines = ["erased-concept accuracy [95% interval] (preserved) by stage", "concept  | " + " | ".join(cols)]
    for c, r in result["concepts"].items():
        cells = [f"{show(r['stages'][s]['target_share'])} ({r['stages'][s]['preserved']:.0%})" for s in STAGES]
        lines.append(f"{c:8s} | " + " | ".join(cells))
    return "\n".join(lines)


def _sd_evaluators(args: argparse.Namespace, concepts: tuple[str, ...], device: str):
    """The evaluators the concepts need on a Stable Diffusion model; one line when one is missing or wrong."""
    from revival.evaluate.sd_eval import Evaluators, protocol_of
    from revival.evaluate.sd_evaluators import SD_EVALUATORS
    from revival.models import quiet_libraries

    families = {protocol_of(c)[1] for c in concepts}
    quiet_libraries()
    ev = Evaluators()
    if families & {"object", "attribute"}:
        if not args.classifier:
            raise RevivalError("--classifier is needed for objects on Stable Diffusion (and for nudity, whose control "
                               "they are): torchvision's ResNet-50 weights file (resnet50-11ad3fa6.pth, IMAGENET1K_V2)")
        ev.classifier = SD_EVALUATORS.get("resnet50")(args.classifier, device=device, allow_pickle=args.allow_pickle)
    if "attribute" in families:
        ev.nudity = SD_EVALUATORS.get("nudenet")(None)
    if "style" in families:
        if not args.clip:
            raise RevivalError("--clip is needed for artists on Stable Diffusion: a CLIP model folder or Hub id "
                               "(the paper: openai/clip-vit-base-patch32)")
        ev.clip = SD_EVALUATORS.get("clip")(args.clip, device=device)
    return ev


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    if args.resume and (args.out or args.quick or args.concepts):
        raise RevivalError("--resume DIR continues a run with its own settings: give no --out, --quick or "
                           "--concepts with it")
    model_path = resolve_model_path(args.model)
    world_name = bundled_world(model_path)
    mini = world_name is not None
    from tqdm import tqdm

    from revival.checkpoints import find_unet_folder
    from revival.demo import (
        RUN_FILE,
        DemoConfig,
        minisd_profile,
        resume_run,
        run_demo,
        sd_profile,
        start_run,
        write_outputs,
    )
    from revival.evaluate.mini_eval import resolve_concept
    from revival.evaluate.sd_eval import protocol_of
    from revival.experiments import config_to_dict
    from revival.modelfiles import FAMILY_SAMPLING, folder_family
    from revival.models import load_info, load_pipeline
    from revival.results import base_result, describe_input
    from revival.worlds import world

    device = validate.resolve_device(args.device)
    model = describe_input(find_unet_folder(model_path) or model_path)
    evaluators = None
    if args.resume:
        out = Path(args.resume)
        config = resume_run(out, model)
        if not mini:
            evaluators = _sd_evaluators(args, config.concepts, device)
        claim_run_folder(out, resume=True)
    else:
        if mini:
            concepts = tuple(dict.fromkeys(resolve_concept(c, None, world_name)[0] for c in args.concepts)) \
                if args.concepts else None
            config: DemoConfig = minisd_profile(args.quick, concepts)
        else:
            concepts = tuple(dict.fromkeys("naked" if protocol_of(c)[1] == "attribute" else protocol_of(c)[0]
                                           for c in args.concepts)) if args.concepts else None
            sampling = FAMILY_SAMPLING.get(folder_family(model_path), FAMILY_SAMPLING["sd1"])
            config = sd_profile(args.quick, concepts, sampling)
            evaluators = _sd_evaluators(args, config.concepts, device)  # checked before anything is written
        out = claim_run_folder(Path(args.out) if args.out else Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S"),
                               overwrite=args.overwrite, inputs=[model_path], markers=[RUN_FILE])
        start_run(out, config, model)
    pipe = load_pipeline(model_path, device=device, dtype=args.dtype, allow_pickle=args.allow_pickle)
    t1 = time.perf_counter()
    try:
        with tqdm(desc="demo", unit="step", dynamic_ncols=True) as bar:
            demo = run_demo(pipe, out, config, progress=tqdm_progress(bar), evaluators=evaluators)
    except KeyboardInterrupt:
        print(f"revival demo: interrupted; finished stages are kept: continue with `revival demo --resume {out}`",
              file=sys.stderr)
        return 130
    base = base_result(command_line(), config_to_dict(config),
                       {"model": model_path, "evaluator": world(world_name).evaluator_path if mini else None,
                        "classifier": None if mini else args.classifier})
    if not mini:
        base["config"]["evaluators"] = {"classifier": args.classifier, "clip": args.clip}
        base["config"]["pipeline"] = load_info(pipe)
    base["resumed"] = bool(args.resume)
    demo.result["timings_s"] = {"load model": round(t1 - t0, 3), **demo.result["timings_s"]}
    paths = write_outputs(out, demo, base, config)
    total = time.perf_counter() - t0
    print(_table(demo.result))
    for f in demo.result["findings"]:
        if f["verdict"]:
            print(f"- {f['title']}: {f['verdict']}")
    print(f"wrote {paths['report']} ({total:.0f}s)")
    return 0
