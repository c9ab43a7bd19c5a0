"""Completion speed and sign recovery on the 16 ff.net.2 shapes of SD1.5: `paper` vs the default.

Data (SD1.5 weights are not available offline, so the matrices are synthetic but trained-like):
- W (d x 4d) = 0.02 * diag(r) [sqrt(.5) L + sqrt(.5) N] diag(c): half the energy in a low-rank part
  L of rank d/4 with a decaying spectrum (s_k ~ k^-1/2), half in heavy-tailed noise N (Student t,
  4 degrees of freedom: kurtosis well above a Gaussian's, as in trained layers), with log-normal
  output-row scales r and hidden-column scales c (sigma 0.35): rows and neurons differ in scale by
  a factor of ~2-3, as in trained feed-forward layers.
- GEGLU input weights ff.net.0.proj (8d x d) for the structured method's side rows: for each half,
  `--side-coupling` c times a signal built from the same column factors as L, plus sqrt(1 - c^2)
  times Gaussian noise. The default c = 0 means the side rows carry nothing: any gain of
  `structured` then comes from the MNAR hole filling alone.
- ConceptPrune-like masks: for each of 10 "timesteps" t, per row the top 2% of |W| * a_t, where
  a_t = exp(b + 0.3 e_t) is a positive activation-norm vector (b ~ N(0, 0.7^2) per neuron shared
  over t, e_t fresh noise, so the t's are correlated); the union over t is pruned (about 4.7%).

Sign recovery = share of pruned positions whose completed sign equals the original one (overall)
and among the top 60% by |completed value| (retained), pooled over matrices.

`paper` takes a full float64 SVD per step (about 20 s per step on 1280 x 5120 on one core), so it
runs on the first `--paper-per-shape` matrices of each shape; the other matrices' paper times are
extrapolated as (seconds per step measured on that shape) x (steps measured on that shape), and
marked `measured: false`. `structured` runs on the same subset. Other methods run on all 16.
Side runs for item 9: `--no-side` (structured = MNAR hole filling alone) and `--side-coupling 0.5`
(side rows that do share the column factors), each saved under its own `--out`.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/attack_speed.py --threads 1
Issue 13 (the holdout default; paper reused from the run above, same seeded matrices):
OMP_NUM_THREADS=2 .venv/bin/python benchmarks/attack_speed.py --threads 2 \
  --methods "softimpute|softimpute:lam=auto,mnar=false|softimpute:dtype=float64" \
  --paper-from benchmarks/results/attack_speed.json --out benchmarks/results/attack_speed_holdout_2threads.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import re
import shlex
import sys
import time
from pathlib import Path

import torch

from revival.attack import COMPLETERS, DEFAULT_METHOD, retain_top
from revival.attack.structured import side_features
from revival.checkpoints import atomic_write_json

SHAPES = {"small": ((320, 1280), 5), "medium": ((640, 2560), 5), "large": ((1280, 5120), 6)}
SUBSET_METHODS = ("paper", "structured")


def trained_like(m: int, n: int, seed: int, coupling: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(ff.net.2 weight (m x n), ff.net.0.proj weight (2n x m)): see the module docstring."""
    g = torch.Generator().manual_seed(seed)
    k = max(1, m // 4)
    U, _ = torch.linalg.qr(torch.randn(m, k, generator=g))
    V, _ = torch.linalg.qr(torch.randn(n, k, generator=g))
    s = (1 + torch.arange(k, dtype=torch.float32)) ** -0.5
    L = (U * s) @ V.T
    L = L / L.pow(2).mean().sqrt()
    chi2 = sum(torch.randn(m, n, generator=g) ** 2 for _ in range(4)) / 4
    N = torch.randn(m, n, generator=g) / chi2.sqrt()
    N = N / N.pow(2).mean().sqrt()
    r = torch.exp(0.35 * torch.randn(m, 1, generator=g))
    c = torch.exp(0.35 * torch.randn(1, n, generator=g))
    W2 = 0.02 * r * (math.sqrt(0.5) * L + math.sqrt(0.5) * N) * c
    halves = []
    for _ in range(2):
        sig = (V * s) @ torch.randn(k, m, generator=g)
        sig = sig / sig.pow(2).mean().sqrt()
        halves.append(0.02 * (coupling * sig + math.sqrt(1 - coupling**2) * torch.randn(n, m, generator=g)))
    return W2, torch.cat(halves, 0)


def conceptprune_mask(W: torch.Tensor, seed: int, steps: int = 10, ratio: float = 0.02) -> torch.Tensor:
    """Union over `steps` of the per-row top `ratio` of |W| * a_t, a_t correlated over t."""
    g = torch.Generator().manual_seed(seed + 1)
    m, n = W.shape
    base = 0.7 * torch.randn(n, generator=g)
    k = int(ratio * n)
    mask = torch.zeros(m, n, dtype=torch.bool)
    A = W.abs()
    for _ in range(steps):
        a = torch.exp(base + 0.3 * torch.randn(n, generator=g))
        mask.scatter_(1, (A * a).topk(k, dim=1).indices, True)
    return mask


def parse_spec(spec: str) -> tuple[str, dict]:
    """`name` or `name:key=value,...` -> (name, params); values parsed as JSON when possible (lists in brackets)."""
    name, _, rest = spec.partition(":")
    params = {}
    for item in filter(None, re.split(r",(?![^\[]*\])", rest)):
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    COMPLETERS.get(name)
    return name, params


def sign_scores(completed: torch.Tensor, W: torch.Tensor, mask: torch.Tensor, top_ratio: float) -> tuple[int, int, int]:
    """(matches overall, retained count, matches among retained)."""
    same = torch.sign(completed) == torch.sign(W)
    kept = retain_top(completed, mask, top_ratio)
    return int((same & mask).sum()), int(kept.sum()), int((same & kept).sum())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads (2 only when the CPU is free)")
    p.add_argument("--methods", default=f"paper|{DEFAULT_METHOD}|als|structured",
                   help="|-separated completion methods, each name or name:key=value,... (completion parameters)")
    p.add_argument("--paper-from", default=None,
                   help="a previous result JSON whose paper totals serve as the reference when paper is not run")
    p.add_argument("--shapes", default="small,medium,large", help="comma-separated shape groups")
    p.add_argument("--paper-per-shape", type=int, default=1, help="matrices per shape on which paper/structured run")
    p.add_argument("--paper-max-iters", type=int, default=500, help="cap on paper steps (500 = faithful)")
    p.add_argument("--side-coupling", type=float, default=0.0, help="ff.net.0 <-> ff.net.2 coupling (see docstring)")
    p.add_argument("--no-side", action="store_true", help="structured without side rows (MNAR hole filling only)")
    p.add_argument("--top-ratio", type=float, default=0.6)
    p.add_argument("--out", default="benchmarks/results/attack_speed.json")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Run every method on every (or the subset) matrix; per-matrix records and totals."""
    methods = [m.strip() for m in args.methods.split("|") if m.strip()]
    specs = {m: parse_spec(m) for m in methods}
    matrices = []
    for group in args.shapes.split(","):
        shape, count = SHAPES[group]
        matrices += [(group, shape, i < args.paper_per_shape) for i in range(count)]
    records = []
    for idx, (group, (m, n), in_subset) in enumerate(matrices):
        W, W0 = trained_like(m, n, seed=idx, coupling=args.side_coupling)
        mask = conceptprune_mask(W, seed=idx)
        pruned = torch.where(mask, 0.0, W)
        rec = {"index": idx, "group": group, "shape": [m, n], "missing": int(mask.sum()),
               "missing_fraction": round(float(mask.float().mean()), 5), "methods": {}}
        for name in methods:
            base, params = specs[name]
            if base in SUBSET_METHODS and not in_subset:
                continue
            params = {"max_iters": args.paper_max_iters, **params} if base == "paper" else dict(params)
            if base == "structured" and not args.no_side:
                params["side"] = side_features(W0, n)
            stats: dict = {}
            t0 = time.perf_counter()
            completed = COMPLETERS.get(base)(pruned, mask, device="cpu", stats=stats, **params)
            dt = time.perf_counter() - t0
            match, kept, match_kept = sign_scores(completed, W, mask, args.top_ratio)
            rec["methods"][name] = {"seconds": round(dt, 3), "measured": True, "iterations": stats.get("iterations"),
                                    "converged": stats.get("converged"), "match": match, "retained": kept,
                                    "match_retained": match_kept,
                                    "sign_recovery_overall": round(match / rec["missing"], 5),
                                    "sign_recovery_retained": round(match_kept / kept, 5) if kept else None,
                                    "stats": {k: v for k, v in stats.items()
                                              if k not in ("iterations", "converged")}}
            print(f"[{idx:2d}] {group:6s} {m}x{n} {name:10s} {dt:8.2f}s it={stats.get('iterations')} "
                  f"overall={match / rec['missing']:.4f} retained={match_kept / max(kept, 1):.4f}", flush=True)
        records.append(rec)
    return {"records": records, "methods": methods}


def extrapolate_paper(records: list[dict], max_iters: int) -> dict:
    """Per shape group: seconds per step and steps of the measured paper runs; fill in the others."""
    per_group: dict[str, dict] = {}
    for r in records:
        p = r["methods"].get("paper")
        if p and p["measured"]:
            g = per_group.setdefault(r["group"], {"seconds": 0.0, "iterations": 0, "runs": 0, "converged": True})
            g["seconds"] += p["seconds"]
            g["iterations"] += p["iterations"]
            g["runs"] += 1
            g["converged"] &= bool(p["converged"])
    conv_steps = [g["iterations"] / g["runs"] for g in per_group.values() if g["converged"]]
    for g in per_group.values():
        g["seconds_per_iteration"] = g["seconds"] / g["iterations"]
        g["iterations_assumed"] = g["iterations"] / g["runs"] if g["converged"] else \
            (max(conv_steps) if conv_steps else max_iters)
    for r in records:
        g = per_group.get(r["group"])
        if "paper" not in r["methods"] and g:
            r["methods"]["paper"] = {"seconds": round(g["seconds_per_iteration"] * g["iterations_assumed"], 3),
                                     "measured": False, "iterations": g["iterations_assumed"]}
        elif g and not r["methods"]["paper"]["converged"]:
            full = g["seconds_per_iteration"] * g["iterations_assumed"]
            r["methods"]["paper"]["seconds_full_estimate"] = round(full, 3)
    return {k: {kk: (round(vv, 4) if isinstance(vv, float) else vv) for kk, vv in v.items()}
            for k, v in per_group.items()}


def pooled(records: list[dict], name: str, subset: bool) -> dict:
    """Pooled sign recovery and time of a method over all matrices, or over the paper subset."""
    rows = [r for r in records if name in r["methods"] and r["methods"][name].get("match") is not None
            and (not subset or r["methods"].get("paper", {}).get("measured"))]
    if not rows:
        return {}
    miss = sum(r["missing"] for r in rows)
    kept = sum(r["methods"][name]["retained"] for r in rows)
    return {"matrices": len(rows), "seconds": round(sum(r["methods"][name]["seconds"] for r in rows), 3),
            "sign_recovery_overall": round(sum(r["methods"][name]["match"] for r in rows) / miss, 5),
            "sign_recovery_retained": round(sum(r["methods"][name]["match_retained"] for r in rows) / kept, 5)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    res = run(args)
    records, methods = res["records"], res["methods"]
    if args.paper_from and "paper" not in methods:  # same seeded matrices: reuse the slow paper runs
        previous = {p["index"]: p for p in json.loads(Path(args.paper_from).read_text())["per_matrix"]}
        for r in records:
            old = previous[r["index"]]
            if old["shape"] != r["shape"] or abs(old["missing"] - r["missing"]) > 1e-4 * r["missing"]:  # float ties
                raise SystemExit(f"{args.paper_from}: matrix {r['index']} differs from this run's")
            if old["methods"].get("paper", {}).get("measured"):
                r["methods"]["paper"] = {**old["methods"]["paper"], "from": args.paper_from}
        methods = ["paper", *methods]
    paper_fit = extrapolate_paper(records, args.paper_max_iters) if "paper" in methods else {}
    totals = {}
    for name in methods:
        all_rows = [r for r in records if name in r["methods"]]
        totals[name] = {
            "all_matrices": {"matrices": len(all_rows),
                             "seconds_including_extrapolated": round(sum(r["methods"][name]["seconds"]
                                                                         for r in all_rows), 3),
                             "all_measured": all(r["methods"][name]["measured"] for r in all_rows)},
            "measured": pooled(records, name, subset=False),
            "paper_subset": pooled(records, name, subset=True),
        }
    comparison = {}
    if "paper" in methods:
        base_sub = totals["paper"]["paper_subset"]
        base_all = totals["paper"]["all_matrices"]["seconds_including_extrapolated"]
        for name in methods:
            if name == "paper" or not totals[name]["paper_subset"]:
                continue
            sub = totals[name]["paper_subset"]
            comparison[name] = {
                "speedup_on_paper_subset": round(base_sub["seconds"] / sub["seconds"], 2),
                "speedup_all_16_vs_paper_extrapolated": round(base_all / totals[name]["all_matrices"]
                                                              ["seconds_including_extrapolated"], 2)
                if totals[name]["all_matrices"]["matrices"] == len(records) else None,
                "sign_recovery_overall_points_vs_paper": round(100 * (sub["sign_recovery_overall"]
                                                                      - base_sub["sign_recovery_overall"]), 2),
                "sign_recovery_retained_points_vs_paper": round(100 * (sub["sign_recovery_retained"]
                                                                       - base_sub["sign_recovery_retained"]), 2),
            }
    d = comparison.get(DEFAULT_METHOD, {})
    default_all = totals.get(DEFAULT_METHOD, {}).get("all_matrices", {})
    targets = {
        "default_at_least_50x_faster": (d.get("speedup_all_16_vs_paper_extrapolated") or 0) >= 50 if d else None,
        "default_sign_recovery_within_0.5_points": d.get("sign_recovery_overall_points_vs_paper", -1e9) >= -0.5
        if d else None,
        f"default_whole_set_under_10s_on_{args.threads}_threads":
            default_all.get("seconds_including_extrapolated", 1e9) < 10 if default_all.get("matrices") == 16 else None,
    }
    out = {
        "command": f"OMP_NUM_THREADS={args.threads} .venv/bin/python " + " ".join(shlex.quote(a) for a in sys.argv),
        "config": vars(args), "default_method": DEFAULT_METHOD,
        "environment": {"torch": torch.__version__, "threads": torch.get_num_threads(), "platform": platform.platform(),
                        "processor": platform.processor()},
        "paper_extrapolation": paper_fit, "totals": totals, "comparison_vs_paper": comparison, "targets": targets,
        "wall_seconds": round(time.perf_counter() - t0, 1), "per_matrix": records,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, Path(args.out))
    print(f"wrote {args.out}: targets {targets}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
