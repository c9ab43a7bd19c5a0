"""Which ConceptPrune settings erase on a bundled-world model? Target accuracy only, per concept and setting.

    python benchmarks/erase_search.py [--model mini|FOLDER]   # -> benchmarks/results/erase_search.json

The bundled model by default, or any folder of its world (a miniature Stable Diffusion from `revival
train-mini`), sampled at its world's own steps and guidance.

A cheap screen (the erased concept's own images, n per concept) run before the full unlearning
table, which also measures preserved accuracy. Setting = hook module(s), skill_ratio, T.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from revival.checkpoints import atomic_write_json
from revival.evaluate.generate import generate
from revival.evaluate.mini_eval import families
from revival.modelfiles import WORLD_SAMPLING
from revival.models import load_pipeline
from revival.study import family_of
from revival.unlearn import concept_prune
from revival.worlds import world, world_of

SETTINGS = [  # (hooks, skill_ratio, timesteps)
    (("ffn2",), 0.02, 10), (("ffn2",), 0.05, 10), (("ffn2",), 0.10, 10), (("ffn2",), 0.20, 10),
    (("attn_v",), 0.05, 10), (("attn_v",), 0.10, 10), (("ffn2", "attn_v"), 0.05, 10),
]


def target_accuracy(pipe, concept: str, n: int, steps: int) -> float:
    name = world_of(pipe)
    fam = families(name).get(family_of(concept, name))
    prompts = fam.prompts(concept, n)
    images = generate(pipe, prompts, list(range(n)), steps, WORLD_SAMPLING[name][1], 64, autocast=torch.bfloat16)
    return float(np.mean(fam.hits(concept, prompts, world(name).classify(images))))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mini", help="the bundled model or a folder of a bundled world")
    ap.add_argument("--concepts", nargs="*", default=None, help="default: star, neon and the world's first attribute")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "erase_search.json"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    pipe = load_pipeline(args.model)
    name = world_of(pipe)
    if name == "sd":
        ap.error(f"--model {args.model}: draws no bundled world")
    concepts = args.concepts or ["star", "neon", world(name).attributes[0]]
    original = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    rows = []
    for c in concepts:
        base = target_accuracy(pipe, c, args.n, args.steps)
        for hooks, sr, T in SETTINGS:
            t0 = time.time()
            pipe.unet.load_state_dict(original)
            pruned = 0
            for hook in hooks:
                res = concept_prune(pipe, c, family_of(c, name), skill_ratio=sr, timesteps=T, hook=hook, seed=0)
                pruned += sum(v["pruned"] for v in res.per_layer.values())
            acc = target_accuracy(pipe, c, args.n, args.steps)
            rows.append({"concept": c, "hooks": list(hooks), "skill_ratio": sr, "timesteps": T,
                         "target_before": base, "target_after": acc, "pruned": pruned,
                         "seconds": round(time.time() - t0, 1)})
            print(rows[-1], flush=True)
    pipe.unet.load_state_dict(original)
    atomic_write_json({"command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "world": name, "n": args.n,
                       "steps": args.steps, "rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
