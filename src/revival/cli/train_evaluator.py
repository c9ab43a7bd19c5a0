"""`revival train-evaluator`: reproduce the shipped mini-world evaluator from scratch."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from revival.cli._common import command_line
from revival.errors import RevivalError
from revival.mini.evaluator import EvaluatorTrainConfig, save_evaluator, train_evaluator


def register(sub: argparse._SubParsersAction) -> None:
    d = EvaluatorTrainConfig()
    p = sub.add_parser("train-evaluator", help="train the mini-world evaluator (object, style, cage heads)",
                       description="Train the mini-world evaluator CNN on fresh seeded renders, single-threaded "
                       "and deterministic; writes fp16 safetensors and a .json sidecar with held-out accuracy. "
                       "With the defaults it reproduces src/revival/mini/assets/evaluator.safetensors.")
    p.add_argument("--out", default="runs/train-evaluator/evaluator.safetensors",
                   help="output .safetensors (sidecar .json beside it)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--heldout", type=int, default=d.heldout, help="fresh images for the held-out accuracy")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise RevivalError(f"{out}: --out must end in .safetensors")
    if args.steps < 1 or args.batch_size < 1 or args.heldout < 1:
        raise RevivalError("--steps, --batch-size and --heldout must be >= 1")
    torch.set_num_threads(1)  # the shipped weights were trained single-threaded; this keeps them reproducible
    model, record = train_evaluator(args.steps, args.batch_size, args.seed, args.lr, heldout=args.heldout, log=print)
    save_evaluator(model, {"command": command_line(), **record}, out)
    acc = ", ".join(f"{k} {v:.4f}" for k, v in record["heldout_accuracy"].items())
    print(f"wrote {out} (held-out accuracy: {acc}; {record['wall_time_s']}s)")
    return 0
