"""When does the miniature Stable Diffusion commit to an object, and does ConceptPrune erase once its window covers it?

    python benchmarks/minisd_commit_time.py --pipeline PIPELINE_FOLDER --threads 1

1. Commit time: images start from "a {A} in a {scene}" and switch to "a {B} in a {scene}" after step k of 50
   (DDIM, guidance 7.5: the sampling ConceptPrune collects activations with). The share the evaluator reads as A
   is the share already committed to A by step k. ConceptPrune looks at the first T = 10 of 50 steps only
   (t >= 820), so it can find an object's neurons only if the object is decided there.
2. Window: ConceptPrune at skill_ratio 0.02 with T = 10 of 50 steps (the paper's setting) against T = 50 of 50
   (the whole trajectory; a diagnostic, not the paper's setting), erased accuracy of a few objects at each.
Results -> benchmarks/results/minisd_commit_time.json (fractions with Wilson 95% intervals).
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
from revival.evaluate.intervals import share
from revival.minisd import world
from revival.models import load_pipeline
from revival.unlearn import concept_prune
from revival.worlds import world as world_named

RESULTS = Path(__file__).parent / "results" / "minisd_commit_time.json"
PAIRS = (("star", "heart"), ("house", "tree"), ("fish", "key"), ("ball", "box"), ("moon", "bell"), ("cup", "crown"),
         ("ring", "cross"), ("arrow", "flower"))
STEPS, GUIDANCE = 50, 7.5  # ConceptPrune's collection sampling (SPEC section 1)


def _prompt(obj: str, i: int) -> str:
    return world.TEMPLATES["object_in_scene"].format(object=obj, scene=world.SCENES[(i // len(PAIRS)) % 8])


def switched(pipe, n: int, k: int) -> np.ndarray:
    """n images that follow prompt A for the first k steps and prompt B after (k = STEPS: A throughout)."""
    first = [_prompt(PAIRS[i % len(PAIRS)][0], i) for i in range(n)]
    second = [_prompt(PAIRS[i % len(PAIRS)][1], i) for i in range(n)]
    pos, neg = pipe.encode_prompt(second, pipe.device, 1, True)
    swap = torch.cat([neg, pos])

    def callback(p, i, t, kw):
        if i + 1 == k:  # runs after step i: steps k.. see B
            kw["prompt_embeds"] = swap
        return kw

    gens = [torch.Generator("cpu").manual_seed(s) for s in range(n)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = pipe(prompt=second if k == 0 else first, num_inference_steps=STEPS, guidance_scale=GUIDANCE,
                   generator=gens, output_type="np", callback_on_step_end=callback,
                   callback_on_step_end_tensor_inputs=["prompt_embeds"]).images
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def commit_time(pipe, n: int, ks: list[int]) -> dict:
    w = world_named("minisd")
    a = np.array([PAIRS[i % len(PAIRS)][0] for i in range(n)])
    b = np.array([PAIRS[i % len(PAIRS)][1] for i in range(n)])
    rows = {}
    for k in ks:
        pred = w.classify(switched(pipe, n, k))["object"]
        rows[str(k)] = {"switch_after_step": k, "t_at_switch": int(pipe.scheduler.timesteps[k]) if k < STEPS else 0,
                        "reads_as_first": share(int((pred == a).sum()), n),
                        "reads_as_second": share(int((pred == b).sum()), n)}
        print(f"k={k}: first {rows[str(k)]['reads_as_first']['accuracy']:.2f} "
              f"second {rows[str(k)]['reads_as_second']['accuracy']:.2f}", flush=True)
    return rows


def erased(pipe, concept: str, n: int) -> dict:
    w = world_named("minisd")
    prompts = [_prompt(concept, i * len(PAIRS)) for i in range(n)]  # every scene in turn
    gens = [torch.Generator("cpu").manual_seed(s) for s in range(n)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = pipe(prompt=prompts, num_inference_steps=20, guidance_scale=5.0, generator=gens, output_type="np").images
    pred = w.classify((np.clip(out, 0, 1) * 255).round().astype(np.uint8))["object"]
    return share(int((pred == concept).sum()), n)


def window(pipe, concepts: list[str], n: int, windows: list[int]) -> dict:
    unet = pipe.unet
    original = {k: v.clone() for k, v in unet.state_dict().items()}
    rows = {}
    for c in concepts:
        rows[c] = {"before": erased(pipe, c, n)}
        for T in windows:
            concept_prune(pipe, c, "object", skill_ratio=0.02, timesteps=T, num_inference_steps=STEPS,
                          guidance_scale=GUIDANCE, apply=True)
            rows[c][f"T{T}"] = erased(pipe, c, n)
            unet.load_state_dict(original)
        print(c, {k: v["accuracy"] for k, v in rows[c].items()}, flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pipeline", type=Path, required=True)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--ks", type=int, nargs="*", default=[0, 5, 10, 15, 20, 25, 30, 40, 50])
    ap.add_argument("--concepts", nargs="*", default=["star", "house", "fish", "key"])
    ap.add_argument("--windows", type=int, nargs="*", default=[10, 50])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.pipeline)
    pipe.scheduler.set_timesteps(STEPS)
    t0 = time.time()
    result = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "pipeline": str(args.pipeline),
              "settings": {"n": args.n, "steps": STEPS, "guidance": GUIDANCE, "pairs": PAIRS, "skill_ratio": 0.02,
                           "eval_steps": 20, "eval_guidance": 5.0, "autocast": "bf16"},
              "commit_time": commit_time(pipe, args.n, args.ks),
              "window": window(pipe, args.concepts, args.n, args.windows),
              "notes": "commit_time: share of images read as the first prompt's object when the prompt switches to "
                       "the second after step k of 50 (k = 0: the second throughout; 50: the first throughout). "
                       "window: erased accuracy after ConceptPrune with the first T of 50 steps (T = 10 is the "
                       "paper's; T = 50 the whole trajectory, a diagnostic)."}
    result["wall_s"] = round(time.time() - t0, 1)
    result["threads"] = args.threads
    atomic_write_json(result, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
