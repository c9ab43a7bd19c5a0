"""`revival demo`: the whole story on the bundled mini model, into one run folder with report.html."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from revival import validate
from revival.cli._common import WORD_LIMIT, add_device_arg, command_line
from revival.errors import RevivalError
from revival.outputs import claim_run_folder

from .experiment import check_mini, tqdm_progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="the whole story on the bundled mini model: erase, revive, defend, revive again; one report",
        description="For each concept (default: the object 'star', the style 'neon' and the attribute 'cage'): "
        "original -> unlearned (ConceptPrune) -> revived (the data-free attack) -> defended (Gaussian filling, row "
        "scope, scale 1) -> revived after the defense by the best adaptive locator. Writes OUT/result.json, "
        "results.csv, grids/ (the same prompts and seeds at every stage), plots/ and a self-contained report.html. "
        "About 4-5 minutes on 2 CPU cores (--quick: under 3). Interrupted runs continue with --resume OUT.")
    p.add_argument("--model", default="mini", help="the bundled `mini` model (the only one with evaluators here)")
    p.add_argument("--out", default=None, help="run folder (default runs/demo-YYYYmmdd-HHMMSS)")
    p.add_argument("--quick", action="store_true", help="fewer, shorter generations (smoke test, under 3 minutes)")
    p.add_argument("--resume", metavar="DIR", default=None,
                   help="continue an interrupted run in DIR with its own settings (cached stages are reused)")
    p.add_argument("--concepts", nargs="+", default=None, metavar="WORD", type=validate.text(WORD_LIMIT),
                   help="concepts to erase (default: star neon cage: an object, a style, the attribute)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder of ours")
    add_device_arg(p)
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


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    if args.resume and (args.out or args.quick or args.concepts):
        raise RevivalError("--resume DIR continues a run with its own settings: give no --out, --quick or "
                           "--concepts with it")
    model_path = check_mini(args.model, "demo")
    from tqdm import tqdm

    from revival.demo import RUN_FILE, DemoConfig, profile, resume_run, run_demo, start_run, write_outputs
    from revival.evaluate.mini_eval import resolve_concept
    from revival.experiments import config_to_dict
    from revival.mini.evaluator import DEFAULT_PATH as EVALUATOR_PATH
    from revival.models import load_pipeline
    from revival.results import base_result, describe_input

    device = validate.resolve_device(args.device)
    model = describe_input(model_path / "unet" / "diffusion_pytorch_model.safetensors")
    if args.resume:
        out = Path(args.resume)
        config = resume_run(out, model)
        claim_run_folder(out, resume=True)
    else:
        concepts = tuple(resolve_concept(c)[0] for c in args.concepts) if args.concepts else None
        config: DemoConfig = profile("quick" if args.quick else "full", concepts)
        out = claim_run_folder(Path(args.out) if args.out else Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S"),
                               overwrite=args.overwrite, inputs=[model_path], markers=[RUN_FILE])
        start_run(out, config, model)
    pipe = load_pipeline(args.model, device=device)
    t1 = time.perf_counter()
    try:
        with tqdm(desc="demo", unit="step", dynamic_ncols=True) as bar:
            demo = run_demo(pipe, out, config, progress=tqdm_progress(bar))
    except KeyboardInterrupt:
        print(f"revival demo: interrupted; finished stages are kept: continue with `revival demo --resume {out}`",
              file=sys.stderr)
        return 130
    base = base_result(command_line(), config_to_dict(config),
                       {"model": model_path, "evaluator": EVALUATOR_PATH})
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
