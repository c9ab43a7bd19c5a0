"""`revival train-mini`: reproduce a mini model from scratch: the bundled second generation (the miniature Stable
Diffusion and its evaluator, `revival.minisd`) or the first (one small DDPM and its text encoder, `revival.mini`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from revival import catalog, validate
from revival.cli._common import add_device_arg
from revival.errors import RevivalError
from revival.outputs import TRAINING, check_output, claim_run_folder

WORKDIR = {1: "runs/train-mini", 2: "runs/train-minisd"}
GENERATION_ONLY = {1: ("batch_size", "lr", "seed"), 2: ("component", "variant", "device", "autocast", "compile")}
# generation 2: options of the UNet and its exported pipeline
UNET_ONLY = ("out", "steps", "variant", "autocast", "compile")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-mini", help="train a bundled mini diffusion model from scratch (seeded, resumable)",
                       description="Train a bundled mini model on the procedural world. Checkpoints to WORKDIR "
                       "every few minutes; rerun the same command to resume. The defaults are the shipped model's "
                       "(its UNet: --steps 6000, then rerun with --steps 10000). --generation 2 (default): the "
                       "miniature Stable Diffusion (evaluator, VAE, frozen CLIP text encoder, UNet), each component "
                       "skipped once done; --generation 1: the first generation's 32x32 DDPM (no longer shipped).")
    p.add_argument("--generation", type=int, choices=(1, 2), default=2,
                   help="2: the miniature Stable Diffusion, the bundled model (default); 1: the first generation's "
                   "32x32 DDPM")
    p.add_argument("--workdir", default=None,
                   help="checkpoint folder (resumable; default runs/train-mini, generation 2 runs/train-minisd)")
    p.add_argument("--out", default=None,
                   help="exported pipeline folder; an existing one must be an earlier export (default "
                   "runs/train-mini/mini-pipeline, fp16; generation 2 WORKDIR/pipeline-VARIANT-STEPS)")
    p.add_argument("--steps", type=validate.positive_int, default=None,
                   help="training steps (generation 2: the UNet's)")
    p.add_argument("--batch-size", type=validate.integer(1, 1 << 16), default=None,
                   help="images per step (generation 1)")
    p.add_argument("--lr", type=validate.number(0, lo_open=True), default=None, help="learning rate (generation 1)")
    p.add_argument("--seed", type=validate.seed, default=None, help="seed (generation 1)")
    p.add_argument("--component", choices=("all", *catalog.MINISD_COMPONENTS), default=None,
                   help="generation 2: what to train (default all: evaluator, vae, text, unet in order)")
    p.add_argument("--variant", choices=catalog.MINISD_VARIANTS, default=None,
                   help="generation 2: the UNet variant (default base)")
    add_device_arg(p, "generation 2: torch device to train on: cpu, cuda, cuda:N, mps (default: cuda when "
                   "available, else cpu)")
    p.add_argument("--autocast", choices=("auto", "bf16", "fp32"), default=None,
                   help="generation 2: the UNet's training precision (default auto: bf16 where the device runs it "
                   "natively, e.g. CUDA)")
    p.add_argument("--compile", choices=("auto", "on", "off"), default=None,
                   help="generation 2: torch.compile the UNet's training step (default auto: on with bf16 autocast, "
                   "where it measured 15%% faster on a CPU after about 3 minutes of compiling; off in fp32, where it "
                   "measured slower)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_options(args)
    workdir = Path(args.workdir or WORKDIR[args.generation])
    return train_generation_1(args, workdir) if args.generation == 1 else train_generation_2(args, workdir)


def check_options(args: argparse.Namespace) -> None:
    """One line for an option the chosen generation, or generation 2's component, does not take."""
    other = 2 if args.generation == 1 else 1
    given = [k for k in GENERATION_ONLY[other] if getattr(args, k) is not None]
    if given:
        raise RevivalError(f"--{given[0].replace('_', '-')}: only with --generation {other}")
    if args.generation == 2 and args.component not in (None, "all", "unet"):
        given = [k for k in UNET_ONLY if getattr(args, k) is not None]
        if given:
            raise RevivalError(f"--{given[0]}: only with --component all or unet (it sets the UNet's training or "
                               f"export), not --component {args.component}")


def train_generation_1(args: argparse.Namespace, workdir: Path) -> int:
    """The mini DDPM (`revival.mini.train`), exported to --out."""
    out = Path(args.out or "runs/train-mini/mini-pipeline")
    check_output(out, overwrite=True, inputs=[workdir], markers=[TRAINING])
    claim_run_folder(workdir, resume=workdir.is_dir())
    from revival.mini.train import TrainConfig, train

    given = {k: getattr(args, k) for k in ("steps", "batch_size", "lr", "seed")}
    cfg = TrainConfig(**{k: v for k, v in given.items() if v is not None})
    train(cfg, workdir, export_to=out, log=print)
    print(f"wrote {out}")
    return 0


def train_generation_2(args: argparse.Namespace, workdir: Path) -> int:
    """The miniature Stable Diffusion's components (`revival.minisd.build`); with the UNet, its pipeline to --out.

    Every check that can fail (device, --out, --workdir and its lock) comes before any training, and all but the
    default --out's (inside WORKDIR) before the models' modules are imported."""
    device = validate.resolve_device(args.device)
    if args.out is not None:
        check_output(args.out, overwrite=True, inputs=[workdir], markers=[TRAINING])
    from revival.evaluate.generate import resolve_autocast
    from revival.minisd import build
    from revival.minisd.unet import UNetTrainConfig, resolve_compile

    defaults = UNetTrainConfig()
    bf16 = resolve_autocast(args.autocast or "auto", device) is not None
    cfg = UNetTrainConfig(variant=args.variant or defaults.variant, steps=args.steps or defaults.steps,
                          autocast=bf16, compile=resolve_compile(args.compile or "auto", bf16))
    component = args.component or "all"
    out = Path(args.out) if args.out is not None else build.pipeline_folder(workdir, cfg)
    if component in ("all", "unet"):
        check_output(out, overwrite=True, inputs=[workdir], markers=[TRAINING])
    claim_run_folder(workdir, resume=workdir.is_dir())
    print(f"train-mini --generation 2: {component} on {device} in {workdir}")
    build.train_components(component, workdir, cfg, build.timed_log(), device=device, out=out)
    return 0
