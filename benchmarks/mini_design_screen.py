"""Design screen of the second-generation bundled model (issue 14): each variant scored by how SD-like it is.

    python benchmarks/mini_design_screen.py --pipeline ~/.cache/revival-minisd/pipeline-base-2000 --variant base

For one trained pipeline folder (a plain `StableDiffusionPipeline`), with seeded images classified by
the 64x64 world's evaluator, each accuracy with its 95% Wilson interval:
- quality: object, style and attribute accuracy of the original model;
- where concepts live: object and style accuracy with every ff.net.2 zeroed, every attn2.to_v
  zeroed, and every ff.net.2 halved (tells early whether FFN pruning can erase at all);
- erasure at the paper's settings: ConceptPrune (ffn2, skill_ratio 0.02, attributes 0.01, T = 10)
  per screened concept: erased accuracy before/after, preserved accuracy before/after, and the mean
  Jaccard overlap of its mask with the other screened concepts' of its family (concept-specific
  masks differ; `benchmarks/mask_overlap.py`);
- with --skill-ratios: the same erasure at other ratios (attributes at half of each), saved under
  `erasure_vs_skill_ratio` (with --sweep-only, added to the variant's stored row, reusing its quality).
Rows are merged into benchmarks/results/mini_design_screen.json by variant name.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from mask_overlap import jaccard  # noqa: E402

from revival.checkpoints import atomic_write_json  # noqa: E402
from revival.evaluate.intervals import pooled, share  # noqa: E402
from revival.minisd import world  # noqa: E402
from revival.minisd.evaluator import classify, load_evaluator  # noqa: E402
from revival.minisd.world import prune_prompt_pairs  # noqa: E402
from revival.modelfiles import WORLD_SAMPLING  # noqa: E402
from revival.unlearn import concept_prune  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "mini_design_screen.json"
SCREEN = {"object": ("star", "house", "fish", "key"), "style": ("neon", "sepia"), "attribute": world.ATTRIBUTES}


def prompts(family: str, concept: str, n: int) -> list[str]:
    """n evaluation prompts of a concept, cycling over the fillers (scenes for objects, objects otherwise)."""
    if family == "object":
        return [world.TEMPLATES["object_in_scene"].format(object=concept, scene=world.SCENES[i % 8]) for i in range(n)]
    objs = [world.OBJECTS[i % len(world.OBJECTS)] for i in range(n)]
    if family == "style":
        return [world.TEMPLATES["style"].format(object=o, style=concept) for o in objs]
    return [world.TEMPLATES[concept].format(object=o) for o in objs]


def hits(family: str, concept: str, pred: dict) -> np.ndarray:
    if family == "object":
        return pred["object"] == concept
    if family == "style":
        return pred["style"] == concept
    return pred[concept]


def load_candidate(path: Path):
    """A candidate pipeline folder as a plain fp32 `StableDiffusionPipeline`, safety checker and progress bars off."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(path, safety_checker=None, requires_safety_checker=False,
                                                   torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


class Scorer:
    """Seeded generation (image i: seed first_seed + i) and classification of concept accuracies."""

    def __init__(self, pipe, evaluator, n: int, steps: int, guidance: float, first_seed: int = 0):
        self.pipe, self.evaluator, self.n, self.steps, self.guidance = pipe, evaluator, n, steps, guidance
        self.first_seed = first_seed

    def accuracy(self, family: str, concepts) -> dict[str, dict]:
        out = {}
        for c in concepts:
            ps = prompts(family, c, self.n)
            gens = [torch.Generator().manual_seed(self.first_seed + i) for i in range(self.n)]
            with torch.no_grad():
                imgs = self.pipe(ps, num_inference_steps=self.steps, guidance_scale=self.guidance, generator=gens,
                                 output_type="np").images
            h = np.asarray(hits(family, c, classify(self.evaluator, np.round(imgs * 255).astype(np.uint8))), bool)
            out[c] = share(int(h.sum()), len(h))
        return out


def where_concepts_live(scorer: Scorer, unet) -> dict:
    original = {k: v.clone() for k, v in unet.state_dict().items()}
    cases = {"zero_ffn2": lambda k, v: torch.zeros_like(v) if k.endswith("ff.net.2.weight") else v,
             "zero_attn2_to_v": lambda k, v: torch.zeros_like(v) if k.endswith("attn2.to_v.weight") else v,
             "halve_ffn2": lambda k, v: v * 0.5 if k.endswith("ff.net.2.weight") else v}
    out = {}
    for name, f in cases.items():
        unet.load_state_dict({k: f(k, v) for k, v in original.items()})
        out[name] = {fam: pooled(list(scorer.accuracy(fam, SCREEN[fam]).values())) for fam in ("object", "style")}
    unet.load_state_dict(original)
    return out


def erasure(scorer: Scorer, pipe, before: dict[str, dict[str, dict]], timesteps: int, ratio: float = 0.02) -> dict:
    """ConceptPrune per screened concept at `ratio` (attributes at half of it, as the paper's 0.02 / 0.01)."""
    unet = pipe.unet
    original = {k: v.clone() for k, v in unet.state_dict().items()}
    rows, masks = {}, {}
    for fam, concepts in SCREEN.items():
        for c in concepts:
            r = ratio / 2 if fam == "attribute" else ratio
            res = concept_prune(pipe, c, prompts=prune_prompt_pairs(fam, c), skill_ratio=r, timesteps=timesteps,
                                num_inference_steps=scorer.steps, guidance_scale=scorer.guidance, apply=True)
            after = scorer.accuracy(fam, SCREEN[fam])
            others = [o for o in SCREEN[fam] if o != c]
            rows[c] = {"family": fam, "skill_ratio": r,
                       "density": sum(v["pruned"] for v in res.per_layer.values())
                       / sum(int(np.prod(v["shape"])) for v in res.per_layer.values()),
                       "erased_before": before[fam][c], "erased_after": after[c],
                       "preserved_before": pooled([before[fam][o] for o in others]) if others else None,
                       "preserved_after": pooled([after[o] for o in others]) if others else None}
            masks[c] = torch.cat([m.flatten() for _, m in sorted(res.masks.items())]).bool()
            print(f"  {c}: {rows[c]['erased_before']['accuracy']:.2f} -> {rows[c]['erased_after']['accuracy']:.2f}",
                  flush=True)
            unet.load_state_dict(original)
    for c, row in rows.items():  # concept-specific masks differ between concepts (benchmarks/mask_overlap.py)
        same = [jaccard(masks[c], masks[o]) for o in SCREEN[row["family"]] if o != c]
        row["mask_jaccard_same_family"] = round(sum(same) / len(same), 4) if same else None
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pipeline", type=Path, required=True)
    ap.add_argument("--variant", required=True)
    ap.add_argument("--evaluator", type=Path, default=Path.home() / ".cache" / "revival-minisd" /
                    "evaluator.safetensors")
    ap.add_argument("--n", type=int, default=16, help="images per concept")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=WORLD_SAMPLING["minisd"][1], help="default: the bundled model's")
    ap.add_argument("--timesteps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skill-ratios", type=float, nargs="*", default=[], help="erasure at these ratios as well")
    ap.add_argument("--sweep-only", action="store_true", help="only the --skill-ratios sweep, into the stored row")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    pipe = load_candidate(args.pipeline)
    scorer = Scorer(pipe, load_evaluator(args.evaluator), args.n, args.steps, args.guidance)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"rows": {}}
    if args.sweep_only:
        row = data["rows"][args.variant]
        quality = {f: q["per_concept"] for f, q in row["quality"].items()}
    else:
        quality = {fam: scorer.accuracy(fam, world.OBJECTS if fam == "object" else world.STYLES if fam == "style"
                                        else world.ATTRIBUTES) for fam in ("object", "style", "attribute")}
        print({f: pooled(list(q.values()))["accuracy"] for f, q in quality.items()}, flush=True)
        live = where_concepts_live(scorer, pipe.unet)
        print({k: {f: v["accuracy"] for f, v in d.items()} for k, d in live.items()}, flush=True)
        erased = erasure(scorer, pipe, quality, args.timesteps)
        training = json.loads((args.pipeline / "training.json").read_text()) \
            if (args.pipeline / "training.json").exists() else None
        row = {"variant": args.variant, "pipeline": str(args.pipeline), "training": training,
               "quality": {f: {"mean": pooled(list(q.values())), "per_concept": q} for f, q in quality.items()},
               "where_concepts_live": live, "erasure_paper_settings": erased, "wall_s": round(time.time() - t0, 1),
               "settings": {"n": args.n, "steps": args.steps, "guidance": args.guidance,
                            "timesteps": args.timesteps, "threads": args.threads}}
    for ratio in args.skill_ratios:
        print(f"skill_ratio {ratio}", flush=True)
        row.setdefault("erasure_vs_skill_ratio", {})[str(ratio)] = erasure(scorer, pipe, quality, args.timesteps, ratio)
        data["rows"][args.variant] = row
        atomic_write_json(data, RESULTS)  # one ratio at a time: an interrupted sweep keeps what it measured
    data["rows"][args.variant] = row
    data["command_last"] = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    atomic_write_json(data, RESULTS)
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
