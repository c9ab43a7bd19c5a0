"""`revival train-mini`: reproduce the bundled mini model (and its evaluator) from scratch."""

from __future__ import annotations

import argparse
from pathlib import Path

from revival import validate
from revival.outputs import check_output, claim_run_folder

EXPORT_MARKER = "training.json"  # what every export of ours holds beside the pipeline


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-mini", help="train the bundled mini diffusion model from scratch (seeded, resumable)",
                       description="DDPM training of the mini model on the procedural world. Checkpoints to "
                       "WORKDIR every few minutes; rerun the same command to resume. The defaults are the "
                       "shipped model's.")
    p.add_argument("--workdir", default="runs/train-mini", help="checkpoint folder (resumable)")
    p.add_argument("--out", default="runs/train-mini/mini-pipeline",
                   help="exported pipeline folder (fp16); an existing one must be an earlier export")
    p.add_argument("--steps", type=validate.positive_int, default=None, help="training steps")
    p.add_argument("--batch-size", type=validate.integer(1, 1 << 16), default=None, help="images per step")
    p.add_argument("--lr", type=validate.number(0, lo_open=True), default=None, help="learning rate")
    p.add_argument("--seed", type=validate.seed, default=None, help="seed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    workdir, out = Path(args.workdir), Path(args.out)
    check_output(out, overwrite=True, inputs=[workdir], markers=[EXPORT_MARKER])
    claim_run_folder(workdir, resume=workdir.is_dir())
    from revival.mini.train import TrainConfig, train

    given = {k: getattr(args, k) for k in ("steps", "batch_size", "lr", "seed")}
    cfg = TrainConfig(**{k: v for k, v in given.items() if v is not None})
    train(cfg, workdir, export_to=out, log=print)
    print(f"wrote {out}")
    return 0
