"""RQ4: the Gaussian trade-off: erased and preserved accuracy of the defended model, and revival after the
adaptive attacker (its own data-free choice of locator and budget) beside the oracle's choice (upper bound)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from revival.experiments.context import ATTACKER_RULE, ORACLE_RULE, Context, adaptive_round, base_stages, round_plan
from revival.findings import combine, defense_finding, finding, mean
from revival.report.experiment_plots import gaussian_tradeoff_figure
from revival.report.plots import save_png


def run(ctx: Context) -> dict:
    cfg = ctx.config
    # per concept: the 5 steps of base_stages, then per scale an adaptive round and 3 evaluations
    ctx.clock.plan(len(cfg.concepts) * (5 + len(cfg.scales) * (round_plan(ctx) + 3)))
    concepts, rows = {}, []
    for c in cfg.concepts:
        base = base_stages(ctx, c)
        concepts[c] = {"family": ctx.family(c), **base.accuracy}
        for s in cfg.scales:
            rnd = adaptive_round(ctx, base.unlearned, "gaussian", s, cfg.defense_scope)
            dacc = ctx.accuracy(rnd.defended, c, "defended")
            aacc = ctx.accuracy(rnd.attacks[rnd.attacker], c, "revived after defense")
            oacc = ctx.accuracy(rnd.attacks[rnd.oracle], c, "revived after defense (oracle)")
            rows.append({"concept": c, "scale": s, "erased": dacc["target"], "preserved": dacc["preserved"],
                         "revived": aacc["target"], "preserved_after_attack": aacc["preserved"],
                         "revived_oracle": oacc["target"], "attacker_choice": rnd.attacker,
                         "oracle_choice": rnd.oracle, "choice_reason": rnd.reason, "trials": rnd.trials})
    means = [{"scale": s, **{k: mean([r[k]["accuracy"] for r in rows if r["scale"] == s])
                             for k in ("erased", "preserved", "revived", "revived_oracle")}} for s in cfg.scales]
    return {"concepts": concepts, "rows": rows, "means": means, "attacker_rule": ATTACKER_RULE,
            "oracle_rule": ORACLE_RULE,
            "baselines": {"unlearned": mean([r["unlearned"]["target"]["accuracy"] for r in concepts.values()]),
                          "unlearned_preserved": mean([r["unlearned"]["preserved"]["accuracy"]
                                                       for r in concepts.values()])}}


def findings(fig: Mapping) -> list[dict]:
    out, verdicts = [], []
    for s in sorted({r["scale"] for r in fig["rows"]}):
        rows = {}
        for r in fig["rows"]:
            if r["scale"] == s:
                base = fig["concepts"][r["concept"]]
                rows[r["concept"]] = {"original": base["original"]["target"], "unlearned": base["unlearned"]["target"],
                                      "revived": base["revived"]["target"], "defended": r["erased"],
                                      "revived_after_defense": r["revived"],
                                      "unlearned_preserved": base["unlearned"]["preserved"],
                                      "defended_preserved": r["preserved"]}
        out.append(defense_finding(f"Gaussian obfuscation at scale {s:g} defends against the attacker", rows))
        verdicts.append(out[-1]["verdict"])
    summary = ("holds" if "holds" in verdicts else "partly holds" if "partly holds" in verdicts else
               combine(["inconclusive" if v == "inconclusive" else "fail" for v in verdicts]))
    out.insert(0, finding(
        "A Gaussian noise scale exists that keeps the concept erased, the rest intact and stops revival", summary,
        "Per scale below. The attacker picks its locator and budget by " + ATTACKER_RULE
        + "; the oracle's pick (" + ORACLE_RULE + ") is reported beside it as revived_oracle."))
    return out


def plot(fig: Mapping, out: Path) -> Path:
    return save_png(gaussian_tradeoff_figure(fig["means"], fig["baselines"]), out)
