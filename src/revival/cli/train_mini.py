"""`revival train-mini`: reproduce the bundled mini model (and its evaluator) from scratch."""

from __future__ import annotations

import argparse
from pathlib import Path

from revival.mini.train import TrainConfig, train


def register(sub: argparse._SubParsersAction) -> None:
    d = TrainConfig()
    p = sub.add_parser("train-mini", help="train the bundled mini diffusion model from scratch (seeded, resumable)",
                       description="DDPM training of the mini model on the procedural world. Checkpoints to "
                       "WORKDIR every few minutes; rerun the same command to resume.")
    p.add_argument("--workdir", default="runs/train-mini", help="checkpoint folder (resumable)")
    p.add_argument("--out", default="runs/train-mini/mini-pipeline", help="exported pipeline folder (fp16)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    train(cfg, Path(args.workdir), export_to=Path(args.out), log=print)
    print(f"wrote {args.out}")
    return 0
