"""RQ2: signs versus magnitudes: every magnitude rule on the same completion and retained positions.

`sign_recovery_retained` of a rule is the share of the truly pruned positions it writes whose
written sign equals the original's: the signs that rule writes (true signs for `oracle_sign`,
random ones for `random_sign`), measured against the true masks (oracle, evaluation only).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from revival.attack import MAGNITUDES
from revival.experiments.context import Context, shares_only
from revival.findings import THRESHOLDS, combine, finding, gain, mean, pct, show
from revival.report.experiment_plots import magnitude_rules_figure
from revival.report.plots import save_png


def run(ctx: Context) -> dict:
    rules = list(ctx.config.magnitudes)
    for r in rules:
        MAGNITUDES.get(r)
    ctx.clock.plan(len(ctx.config.concepts) * (3 + 2 * len(rules)))
    rows = {}
    for c in ctx.config.concepts:
        orig = shares_only(ctx.accuracy(ctx.study.original, c, "original"))
        unlearned = ctx.unlearn(c)
        unl = shares_only(ctx.accuracy(unlearned, c, "unlearned"))
        per_rule = {}
        for rule in rules:
            tag = "default" if rule == ctx.study.s.magnitude else f"mag-{rule}"
            stage = ctx.revive(unlearned, tag, magnitude=rule)
            per_rule[rule] = {**shares_only(ctx.accuracy(stage, c, f"revived ({rule})")),
                              "sign_recovery_retained": stage.info["sign_recovery"]["retained"],
                              "oracle": bool(MAGNITUDES.meta(rule).get("needs_reference"))}
        rows[c] = {"family": ctx.family(c), "original": orig, "unlearned": unl, "rules": per_rule}
    return {"concepts": rows, "rules": rules}


def _erased(rows: Mapping) -> list[str]:
    return [c for c, r in rows.items() if gain(r["original"]["target"], r["unlearned"]["target"],
                                               THRESHOLDS["erased_drop"]) == "pass"]


def findings(fig: Mapping) -> list[dict]:
    rows, t = fig["concepts"], THRESHOLDS
    judged = _erased(rows)

    def acc(c: str, rule: str) -> dict | None:
        r = rows[c]["rules"].get(rule)
        return None if r is None else r["target"]

    def contest(a: str, others: list[str]) -> tuple[list[str], list[str]]:
        statuses, parts = [], []
        for c in judged:
            best = max((acc(c, x) for x in others if acc(c, x) is not None), key=lambda s: s["accuracy"], default=None)
            if acc(c, a) is None or best is None:
                continue
            statuses.append(gain(acc(c, a), best, 0.0))
            parts.append(f"{c} {show(acc(c, a))} vs {show(best)}")
        return statuses, parts or [f"no concept erased ({', '.join(rows)} not judged)"]

    out = []
    if {"nms", "random_sign"} <= set(fig["rules"]):
        st, parts = contest("nms", ["random_sign"])
        out.append(finding("Recovered signs carry the concept", combine(st),
                           "Same positions and NMS magnitudes, recovered signs (nms) versus random signs: "
                           + ", ".join(parts) + ". Holds for a concept when the difference's 95% interval lies above "
                           "0; only concepts the unlearning erased are judged."))
    plain = [r for r in ("row_mean", "sampled", "completed") if r in fig["rules"]]
    if "nms" in fig["rules"] and plain:
        st, parts = contest("nms", plain)
        out.append(finding("Large (row-max) magnitudes are needed, as NMS assumes", combine(st),
                           "Same recovered signs, NMS magnitudes versus the best of " + ", ".join(plain) + ": "
                           + ", ".join(parts) + ". Holds when the difference's 95% interval lies above 0."))
    oracle = [r for r in ("oracle_sign", "oracle_magnitude") if r in fig["rules"]]
    if oracle and "nms" in fig["rules"]:
        means = {r: mean([acc(c, r)["accuracy"] for c in judged]) for r in ["nms", *oracle]}
        sr = {r: mean([rows[c]["rules"][r]["sign_recovery_retained"] for c in rows]) for r in fig["rules"]}
        out.append(finding(
            "Oracle ablations (upper bounds, they read the original weights)", None,
            "Mean revived accuracy over the erased concepts: " + ", ".join(f"{r} {pct(v)}" for r, v in means.items())
            + ". Signs written that match the original, per rule: " + ", ".join(f"{r} {pct(v)}" for r, v in sr.items())
            + f". oracle_sign = true signs with NMS magnitudes; oracle_magnitude = true magnitudes with the "
            f"recovered signs. Revival threshold for reference: {pct(t['revival_gain'])}."))
    return out


def plot(fig: Mapping, out: Path) -> Path:
    rows = fig["concepts"]
    accuracy = {c: {k: v["target"]["accuracy"] for k, v in r["rules"].items()} for c, r in rows.items()}
    return save_png(magnitude_rules_figure(accuracy, {c: r["unlearned"]["target"]["accuracy"] for c, r in rows.items()},
                                           {c: r["original"]["target"]["accuracy"] for c, r in rows.items()},
                                           title="RQ2: revived accuracy by magnitude rule (signs vs magnitudes)"),
                    out)
