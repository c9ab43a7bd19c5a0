"""RQ1: revival from the positions alone: erased accuracy original -> unlearned -> revived, and sign recovery.

The "paper" column runs the paper's completion (`method="paper"`) at the same settings; ours (the
study's method) is reported beside it. With several `seeds`, ConceptPrune is repeated per seed and
the figures are given per seed with their mean and spread.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from pathlib import Path

from revival.experiments.context import Context, shares_only
from revival.findings import revival_finding, sign_recovery_finding
from revival.report.plots import plot_accuracy_by_stage

STAGES = ("original", "unlearned", "revived", "revived_paper")


def run(ctx: Context) -> dict:
    """Per concept (and seed): shares of every stage with 95% intervals, sign recovery of ours and the paper's."""
    seeds = ctx.config.seeds
    ctx.clock.plan(len(ctx.config.concepts) * (1 + 6 * len(seeds)))
    rows, spread = {}, {}
    for c in ctx.config.concepts:
        orig = shares_only(ctx.accuracy(ctx.study.original, c, "original"))
        per_seed = {}
        for seed in seeds:
            unlearned = ctx.unlearn(c, seed)
            sfx = "" if seed == ctx.study.s.seed else f"-s{seed}"
            ours = ctx.revive(unlearned, f"default{sfx}")
            paper = ctx.revive(unlearned, f"paper{sfx}", method="paper")
            per_seed[seed] = {
                "original": orig,
                "unlearned": shares_only(ctx.accuracy(unlearned, c, "unlearned")),
                "revived": shares_only(ctx.accuracy(ours, c, "revived")),
                "revived_paper": shares_only(ctx.accuracy(paper, c, "revived (paper's completion)")),
                "density": unlearned.info["density"],
                "sign_recovery": ours.info["sign_recovery"], "sign_recovery_paper": paper.info["sign_recovery"],
                "attack_seconds": ours.info["timings_s"]["total"],
                "attack_seconds_paper": paper.info["timings_s"]["total"]}
        first = per_seed[seeds[0]]
        rows[c] = {"family": ctx.family(c), **first, "seeds": {str(s): r for s, r in per_seed.items()}}
        if len(seeds) > 1:
            spread[c] = {s: _spread([r[s]["target"]["accuracy"] for r in per_seed.values()])
                         for s in ("unlearned", "revived", "revived_paper")}
            spread[c]["sign_recovery"] = _spread([r["sign_recovery"]["overall"] for r in per_seed.values()])
    return {"concepts": rows, "seeds": list(seeds), "over_seeds": spread,
            "methods": {"revived": ctx.study.s.method + " (ours)", "revived_paper": "paper (the paper's completion)"},
            "accuracy_by_stage": {c: {s: r[s]["target"]["accuracy"] for s in STAGES} for c, r in rows.items()},
            "preserved_by_stage": {c: {s: r[s]["preserved"]["accuracy"] for s in STAGES} for c, r in rows.items()}}


def _spread(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values), "min": min(values), "max": max(values),
            "n_seeds": len(values)}


def findings(fig: Mapping) -> list[dict]:
    rows = fig["concepts"]
    out = [revival_finding({c: {s: r[s]["target"] for s in ("original", "unlearned", "revived")}
                            for c, r in rows.items()}),
           sign_recovery_finding({c: r["sign_recovery"] for c, r in rows.items()},
                                 {c: r["sign_recovery"]["retained"] for c, r in rows.items()})]
    paper = revival_finding({c: {"original": r["original"]["target"], "unlearned": r["unlearned"]["target"],
                                 "revived": r["revived_paper"]["target"]} for c, r in rows.items()})
    paper["title"] += " (the paper's completion)"
    out.append(paper)
    return out


def plot(fig: Mapping, out: Path) -> Path:
    return plot_accuracy_by_stage(fig["accuracy_by_stage"], out,
                                  title="RQ1: erased-concept accuracy, original -> unlearned -> revived (ours, paper)")
