"""How concept-specific ConceptPrune's masks are on a bundled model (issue 14): Jaccard overlap between concepts.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mask_overlap.py \
        --source minisd=~/.cache/revival-bench/attack_real/minisd/pipeline-base-6000-HASH

Reads the masks `benchmarks/attack_real.py` caches (`masks_sr{RATIO}_{CONCEPT}.safetensors`, every
ff.net.2 layer of one model) and reports, per ratio, the mean Jaccard overlap |A & B| / |A | B| of
the pruned positions between pairs of objects, pairs of styles, and object-style pairs, beside what
two independent masks of the same density would give (about p / (2 - p)). Erasing one concept and
keeping the others needs masks that differ between concepts: a high overlap says the "skilled"
neurons are generic ("there is an object") rather than concept-specific.
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from revival.checkpoints import atomic_write_json


def jaccard(a: torch.Tensor, b: torch.Tensor) -> float:
    """|a & b| / |a | b| of two boolean masks."""
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 0.0


def mean_pairs(masks: dict[str, torch.Tensor], pairs) -> float | None:
    values = [jaccard(masks[a], masks[b]) for a, b in pairs]
    return round(sum(values) / len(values), 4) if values else None


def overlap(folder: Path, ratio: str, objects: tuple[str, ...], styles: tuple[str, ...]) -> dict:
    """Mean pairwise Jaccard within objects, within styles and across, with the independent-mask baseline."""
    masks = {}
    for c in (*objects, *styles):
        path = folder / f"masks_sr{ratio}_{c}.safetensors"
        if path.exists():
            masks[c] = torch.cat([v.flatten() for _, v in sorted(load_file(path).items())]).bool()
    objs = [c for c in objects if c in masks]
    stys = [c for c in styles if c in masks]
    density = sum(float(m.float().mean()) for m in masks.values()) / max(1, len(masks))
    return {"objects": len(objs), "styles": len(stys), "density": round(density, 4),
            "object_object": mean_pairs(masks, itertools.combinations(objs, 2)),
            "style_style": mean_pairs(masks, itertools.combinations(stys, 2)),
            "object_style": mean_pairs(masks, [(a, b) for a in objs for b in stys]),
            "independent_baseline": round(density / (2 - density), 4)}


def main() -> int:
    from revival.minisd import world

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", action="append", required=True, metavar="NAME=DIR",
                    help="minisd=DIR (or minisd:LABEL=DIR): the masks of a model of the bundled world (the "
                    "first generation's, mini=DIR, are in the stored results only: that model was removed)")
    ap.add_argument("--ratios", nargs="+", default=["0.02", "0.2"])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "mask_overlap.json")
    args = ap.parse_args()
    rows = {}
    for spec in args.source:
        name, _, folder = spec.partition("=")
        if name.split(":")[0] != "minisd":
            ap.error(f"--source {spec}: expected minisd=DIR or minisd:LABEL=DIR")
        rows[name] = {"masks": folder, **{f"sr{r}": overlap(Path(folder).expanduser(), r, tuple(world.OBJECTS),
                                                            tuple(world.STYLES)) for r in args.ratios}}
        print(name, rows[name], flush=True)
    atomic_write_json({"command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "sources": rows}, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
