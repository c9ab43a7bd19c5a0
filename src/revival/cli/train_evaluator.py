"""`revival train-evaluator`: reproduce the shipped mini-world evaluator from scratch."""

from __future__ import annotations

import argparse
from pathlib import Path

from revival import validate
from revival.cli._common import command_line
from revival.errors import RevivalError
from revival.outputs import staged_files


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-evaluator",
                       help="train the first generation's 32x32 evaluator (object, style, cage heads)",
                       description="Train the first generation's 32x32 mini-world evaluator CNN (the bundled "
                       "model's own trains with `revival train-mini --component evaluator`) on fresh seeded renders, "
                       "single-threaded and deterministic; writes fp16 safetensors and a .json sidecar with held-out "
                       "accuracy. With the defaults (those of the shipped evaluator) it reproduces "
                       "src/revival/mini/assets/evaluator.safetensors.")
    p.add_argument("--out", default="runs/train-evaluator/evaluator.safetensors",
                   help="output .safetensors (sidecar .json beside it)")
    p.add_argument("--steps", type=validate.positive_int, default=None, help="training steps")
    p.add_argument("--batch-size", type=validate.integer(1, 1 << 16), default=None,
                   help="images per step")
    p.add_argument("--lr", type=validate.number(0, lo_open=True), default=None, help="learning rate")
    p.add_argument("--seed", type=validate.seed, default=None, help="seed")
    p.add_argument("--heldout", type=validate.integer(1, 1 << 20), default=None,
                   help="fresh images for the held-out accuracy")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise RevivalError(f"{out}: --out must end in .safetensors")
    with staged_files(out, out.with_suffix(".json")) as (tmp, tmp_sidecar):
        import torch

        from revival.mini.evaluator import EvaluatorTrainConfig, save_evaluator, train_evaluator

        given = {k: getattr(args, k) for k in ("steps", "batch_size", "lr", "seed", "heldout")}
        d = EvaluatorTrainConfig()
        c = {k: v if v is not None else getattr(d, k) for k, v in given.items()}
        torch.set_num_threads(1)  # the shipped weights were trained single-threaded; this keeps them reproducible
        model, record = train_evaluator(c["steps"], c["batch_size"], c["seed"], c["lr"], heldout=c["heldout"],
                                        log=print)
        save_evaluator(model, {"command": command_line(), **record}, tmp, sidecar=tmp_sidecar)
    acc = ", ".join(f"{k} {v:.4f}" for k, v in record["heldout_accuracy"].items())
    print(f"wrote {out} (held-out accuracy: {acc}; {record['wall_time_s']}s)")
    return 0
