"""`revival train-mini`: reproduce the bundled mini model from scratch: the miniature Stable Diffusion and its
evaluator (`revival.minisd`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from revival import catalog, validate
from revival.cli._common import add_device_arg
from revival.errors import RevivalError
from revival.outputs import TRAINING, check_output, claim_run_folder

WORKDIR = "runs/train-minisd"
UNET_ONLY = ("out", "steps", "variant", "autocast", "compile", "init")  # options of the UNet and its exported pipeline


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-mini", help="train the bundled mini diffusion model from scratch (seeded, resumable)",
                       description="Train the bundled mini model, the miniature Stable Diffusion (evaluator, VAE, "
                       "frozen CLIP text encoder, UNet), on the procedural world, each component skipped once done. "
                       "Checkpoints to WORKDIR every few minutes; rerun the same command to resume. The defaults are "
                       "the shipped model's; its UNet: --steps 6000, rerun with --steps 10000, then continued to 16000 "
                   "from the 10,000-step weights with --init (the folder's training.json says how).")
    p.add_argument("--workdir", default=None, help=f"checkpoint folder (resumable; default {WORKDIR})")
    p.add_argument("--out", default=None,
                   help="exported pipeline folder; an existing one must be an earlier export (default "
                   "WORKDIR/pipeline-VARIANT-STEPS)")
    p.add_argument("--steps", type=validate.positive_int, default=None, help="the UNet's training steps")
    p.add_argument("--init", default=None,
                   help="start the UNet from this warm start (EMA weights and their step, fp16 safetensors, as "
                   "`python -m revival.minisd.build warmstart` writes) with a fresh optimizer and warm-up, when "
                   "WORKDIR holds no UNet checkpoint yet (a rerun resumes the checkpoint)")
    p.add_argument("--component", choices=("all", *catalog.MINISD_COMPONENTS), default=None,
                   help="what to train (default all: evaluator, vae, text, unet in order)")
    p.add_argument("--variant", choices=catalog.MINISD_VARIANTS, default=None,
                   help="the UNet variant (default base)")
    add_device_arg(p, "torch device to train on: cpu, cuda, cuda:N, mps (default: cuda when available, else cpu)")
    p.add_argument("--autocast", choices=("auto", "bf16", "fp32"), default=None,
                   help="the UNet's training precision (default auto: bf16 where the device runs it natively, "
                   "e.g. CUDA)")
    p.add_argument("--compile", choices=("auto", "on", "off"), default=None,
                   help="torch.compile the UNet's training step (default auto: on with bf16 autocast, where it "
                   "measured 15%% faster on a CPU after about 3 minutes of compiling; off in fp32, where it "
                   "measured slower)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_options(args)
    return train(args, Path(args.workdir or WORKDIR))


def check_options(args: argparse.Namespace) -> None:
    """One line for an option the chosen component does not take."""
    if args.component not in (None, "all", "unet"):
        given = [k for k in UNET_ONLY if getattr(args, k) is not None]
        if given:
            raise RevivalError(f"--{given[0]}: only with --component all or unet (it sets the UNet's training or "
                               f"export), not --component {args.component}")


def train(args: argparse.Namespace, workdir: Path) -> int:
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
    if args.init is not None:
        check_init(Path(args.init), cfg, workdir)
    out = Path(args.out) if args.out is not None else build.pipeline_folder(workdir, cfg)
    if component in ("all", "unet"):
        check_output(out, overwrite=True, inputs=[workdir], markers=[TRAINING])
    claim_run_folder(workdir, resume=workdir.is_dir())
    print(f"train-mini: {component} on {device} in {workdir}")
    build.train_components(component, workdir, cfg, build.timed_log(), init=None if args.init is None else
                           Path(args.init), device=device, out=out)
    return 0


def check_init(path: Path, cfg, workdir: Path) -> None:
    """One line when --init is not a warm start of the chosen UNet variant, or was taken after --steps; a note when
    WORKDIR's checkpoint will be resumed instead."""
    from revival.minisd.training import warm_start_header
    from revival.minisd.unet import build_unet

    try:
        step, names = warm_start_header(path)
    except RevivalError as e:
        raise RevivalError(f"--init {e}") from None
    want = {f"unet.{k}" for k in build_unet(cfg.variant).state_dict()}
    if names != want:
        raise RevivalError(f"--init {path}: not a warm start of the `{cfg.variant}` UNet ({len(want - names)} of its "
                           f"{len(want)} tensors missing, {len(names - want)} unknown)")
    if step > cfg.steps:
        raise RevivalError(f"--init {path}: taken at step {step}, after --steps {cfg.steps}")
    if (workdir / f"unet-{cfg.variant}.pt").exists():
        print(f"train-mini: {workdir / f'unet-{cfg.variant}.pt'} exists: resuming it (--init only starts a run)")
