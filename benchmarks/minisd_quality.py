"""Quality gates of a second-generation bundled model candidate (issue 14), >= 64 images per class.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/minisd_quality.py --pipeline DIR --evaluator FILE.safetensors

Seeded images (image i of a concept: seed i, or FIRST_SEED + i with `--first-seed`; the prompts of
`mini_design_screen.prompts`) of a plain
`StableDiffusionPipeline` folder, classified by the 64x64 world's evaluator. Every accuracy carries
its 95% Wilson interval. The gates (issue 14): object mean >= 0.90 and no object under 0.75, style
mean >= 0.85, each attribute >= 0.85. `gates` keeps today's keys and meaning (the point estimate meets
the threshold); `gate_verdicts` reads each gate from the intervals: "pass" when the interval lies
above the threshold, "fail" when below, "inconclusive" when it spans it. Writes
benchmarks/results/minisd_quality.json by default (keys as the first generation's quality JSON, plus intervals and
verdicts); the bundled model's gates are `--pipeline src/revival/minisd/assets/pipeline --out
benchmarks/results/mini_quality.json`. `--objects crown key --n 256` takes a closer look at a few objects
(same seeds, more of them; no gates, since the other classes are not measured).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from mini_design_screen import Scorer, load_candidate  # noqa: E402

from revival.checkpoints import atomic_write_json  # noqa: E402
from revival.evaluate.intervals import pooled, versus  # noqa: E402
from revival.minisd import world  # noqa: E402
from revival.minisd.evaluator import load_evaluator  # noqa: E402
from revival.modelfiles import WORLD_SAMPLING  # noqa: E402

GATES = {"object_mean>=0.90": 0.90, "object_min>=0.75": 0.75, "style_mean>=0.85": 0.85, "attribute>=0.85": 0.85}


def verdict(interval: list[float], threshold: float) -> str:
    """pass / fail / inconclusive of "rate >= threshold" from a 95% interval."""
    return {"above": "pass", "below": "fail"}.get(versus(interval, threshold), "inconclusive")


def gates(quality: dict) -> tuple[dict, dict]:
    """(point-estimate gates, interval verdicts); a min-over-classes gate fails on any class below and passes
    only when every class's interval is above."""
    obj, sty, att = quality["object"], quality["style"], quality["attribute"]
    point = {"object_mean>=0.90": obj["mean"]["accuracy"] >= 0.90,
             "object_min>=0.75": min(s["accuracy"] for s in obj["per_class_ci"].values()) >= 0.75,
             "style_mean>=0.85": sty["mean"]["accuracy"] >= 0.85,
             "attribute>=0.85": min(s["accuracy"] for s in att["per_class_ci"].values()) >= 0.85}

    def all_of(shares: dict, threshold: float) -> str:
        verdicts = {verdict(s["ci95"], threshold) for s in shares.values()}
        return "fail" if "fail" in verdicts else "pass" if verdicts == {"pass"} else "inconclusive"

    verdicts = {"object_mean>=0.90": verdict(obj["mean"]["ci95"], 0.90),
                "object_min>=0.75": all_of(obj["per_class_ci"], 0.75),
                "style_mean>=0.85": verdict(sty["mean"]["ci95"], 0.85),
                "attribute>=0.85": all_of(att["per_class_ci"], 0.85)}
    return point, verdicts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pipeline", type=Path, required=True)
    ap.add_argument("--evaluator", type=Path, required=True)
    ap.add_argument("--n", type=int, default=64, help="images per class")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=WORLD_SAMPLING["minisd"][1], help="default: the bundled model's")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="image i is drawn with seed FIRST_SEED + i (fresh seeds confirm a setting chosen on 0..n-1)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "minisd_quality.json")
    ap.add_argument("--objects", nargs="+", choices=world.OBJECTS, default=None,
                    help="measure only these objects (no gates)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    pipe = load_candidate(args.pipeline)
    scorer = Scorer(pipe, load_evaluator(args.evaluator), args.n, args.steps, args.guidance, args.first_seed)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    settings = {"n_eval": args.n, "eval_steps": args.steps, "guidance": args.guidance,
                "seed": f"image i: seed {args.first_seed} + i"}
    if args.objects:
        shares = scorer.accuracy("object", args.objects)
        atomic_write_json({"command": command, "settings": settings, "model": {"pipeline": str(args.pipeline)},
                           "object": {"per_class_ci": shares}, "wall_s": round(time.time() - t0, 1),
                           "threads": args.threads}, args.out)
        print(f"wrote {args.out}: {({c: s['ci95'] for c, s in shares.items()})}")
        return 0
    quality = {}
    for fam, concepts in (("object", world.OBJECTS), ("style", world.STYLES), ("attribute", world.ATTRIBUTES)):
        shares = scorer.accuracy(fam, concepts)
        quality[fam] = {"per_class": {c: s["accuracy"] for c, s in shares.items()}, "per_class_ci": shares,
                        "mean": pooled(list(shares.values()))}
        print(fam, {c: round(s["accuracy"], 2) for c, s in shares.items()}, flush=True)
    quality["attribute"]["accuracy"] = quality["attribute"]["mean"]["accuracy"]
    point, verdicts = gates(quality)
    training = args.pipeline / "training.json"
    atomic_write_json({
        "command": command, "settings": settings,
        "model": {"name": "minisd", "pipeline": str(args.pipeline),
                  "training": json.loads(training.read_text()) if training.exists() else None},
        **quality, "gates": point, "gate_verdicts": verdicts,
        "gates_met": sum(v == "pass" for v in verdicts.values()), "wall_s": round(time.time() - t0, 1),
        "threads": args.threads}, args.out)
    print(f"wrote {args.out}: {verdicts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
