"""RQ3: which defenses hide the positions: every locator against every defense, in weight space only.

Each adaptive locator runs at budgets of 0.5x, 1x and 2x the method's true pruned share (its recall
is capped by its budget), for every ConceptPrune seed; AUROC (budget-free) and the budget sweep are
reported as means over concepts and seeds. Precision, recall and AUROC read the true masks: they
measure the locators, they are not something an attacker sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from torch import Tensor

from revival.attack import LOCATORS
from revival.attack.adaptive_locate import locate_with_scores
from revival.defend.masks import match_masks
from revival.defend.study import defend, informed_locator_params
from revival.evaluate.locator_metrics import locator_report
from revival.experiments.context import Context, adaptive_round, round_plan
from revival.findings import THRESHOLDS, finding, mean, pct
from revival.report.experiment_plots import locator_auroc_figure
from revival.report.plots import save_png

BUDGET_FACTORS = (0.5, 1.0, 2.0)


def locator_trial(defended: dict[str, Tensor], masks: dict[str, Tensor], locator: str, params: dict) -> dict:
    """Precision, recall and AUROC of one locator on published weights, against the true masks (no attack)."""
    masks = match_masks(defended, masks)
    weights = {n: defended[n].float() for n in masks}
    located, scores = locate_with_scores(locator, weights, **params)
    report = locator_report(weights, located, scores, masks)
    return {k: report[k] for k in ("precision", "recall", "auroc", "located", "true")}


def _density(masks: dict[str, Tensor]) -> float:
    return sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())


def _cases(ctx: Context):
    """(label, seed, unlearned state, masks) of every case: given weights, or each concept x seed pruned here."""
    if ctx.given is not None:
        for label, (state, masks) in ctx.given.items():
            yield label, None, state, masks
        return
    for c in ctx.config.concepts:
        for seed in ctx.config.seeds:
            u = ctx.unlearn(c, seed)
            yield c, seed, u.state(ctx.study.original_state), u.masks


def run(ctx: Context) -> dict:
    cfg = ctx.config
    defenses, locators = cfg.defense_names(), cfg.locator_names()
    n_cases = len(ctx.given) if ctx.given is not None else len(cfg.concepts) * len(cfg.seeds)
    # every step up front: each case's prune and defenses, then each attacker-vs-oracle round (its cached prune
    # counts as a step) with its attacks
    rounds = 0 if ctx.study is None else len(cfg.concepts) * len(defenses) * (1 + round_plan(ctx))
    ctx.clock.plan(n_cases * (len(defenses) + (0 if ctx.given is not None else 1)) + rounds)
    rows = []
    seed0 = ctx.study.s.seed if ctx.study is not None else 0
    for label, seed, unlearned, masks in _cases(ctx):
        share = _density(masks)
        for d in defenses:
            with ctx.clock.step(f"{label}: {d} against {len(locators)} locators", "defend + locate"):
                defended = defend(unlearned, masks, d, scope=cfg.defense_scope, scale=cfg.defense_scale, seed=seed0)
                for loc in locators:
                    adaptive = LOCATORS.meta(loc).get("adaptive")
                    for f in BUDGET_FACTORS if adaptive else (None,):
                        params = informed_locator_params(loc, d, cfg.defense_scale)
                        if f is not None:
                            params["ratio"] = round(f * share, 6)
                        rows.append({"concept": label, "seed": seed, "defense": d, "locator": loc,
                                     "budget_factor": f, "pruned_share": share, "locator_params": params,
                                     **locator_trial(defended, masks, loc, params)})
    at_1x = [r for r in rows if r["budget_factor"] in (None, 1.0)]
    table = {d: {loc: mean([r["auroc"] for r in at_1x if r["defense"] == d and r["locator"] == loc])
                 for loc in locators} for d in defenses}
    recall = {d: {loc: mean([r["recall"] for r in at_1x if r["defense"] == d and r["locator"] == loc])
                  for loc in locators} for d in defenses}
    sweep = {d: {loc: {f"{f:g}x": mean([r["recall"] for r in rows if r["defense"] == d and r["locator"] == loc
                                          and r["budget_factor"] == f]) for f in BUDGET_FACTORS}
                 for loc in locators if LOCATORS.meta(loc).get("adaptive")} for d in defenses}
    labels = list(dict.fromkeys(r["concept"] for r in rows))
    return {"rows": rows, "auroc": table, "recall": recall, "recall_by_budget": sweep, "concepts": labels,
            "attacker_vs_oracle": _attacker_vs_oracle(ctx, defenses) if ctx.study is not None else None,
            "seeds": list(cfg.seeds) if ctx.given is None else None, "budget_factors": list(BUDGET_FACTORS),
            "scale": cfg.defense_scale, "scope": cfg.defense_scope,
            "note": "oracle figures: precision, recall and AUROC against the true masks"}


def _attacker_vs_oracle(ctx: Context, defenses: list[str]) -> dict:
    """Per defense: the attacker's data-free choice of locator and budget against the oracle's (by restoration),
    with the restoration each achieves (weight space; the attacks run on the study's default seed)."""
    cfg = ctx.config
    out = {}
    for d in defenses:
        per = {}
        for c in cfg.concepts:
            rnd = adaptive_round(ctx, ctx.unlearn(c), d, cfg.defense_scale, cfg.defense_scope)
            per[c] = {"attacker": rnd.attacker, "oracle": rnd.oracle,
                      "attacker_restoration": rnd.trials[rnd.attacker]["restoration"],
                      "oracle_restoration": rnd.trials[rnd.oracle]["restoration"],
                      "attacker_holdout_score": rnd.trials[rnd.attacker]["holdout_score"],
                      "same_choice": rnd.attacker == rnd.oracle}
        out[d] = {"concepts": per, "mean_attacker_restoration": mean([v["attacker_restoration"] for v in per.values()]),
                  "mean_oracle_restoration": mean([v["oracle_restoration"] for v in per.values()]),
                  "agreement": mean([float(v["same_choice"]) for v in per.values()])}
    return out


def findings(fig: Mapping) -> list[dict]:
    t, auroc, recall = THRESHOLDS, fig["auroc"], fig["recall"]
    out = []

    def best(d: str) -> tuple[str | None, float | None]:
        known = {loc: a for loc, a in auroc[d].items() if a is not None}
        if not known:
            return None, None
        loc = max(known, key=known.get)
        return loc, known[loc]

    if "gaussian" in recall and "zeros" in recall["gaussian"]:
        out.append(finding(
            "Gaussian filling leaves no exact zeros for the plain attack", None,
            f"The zeros locator finds {pct(recall['gaussian']['zeros'])} of the pruned positions after Gaussian "
            "filling. True by construction (noise is never exactly zero): a check that the defense ran, not a "
            "finding.", kind="sanity check"))
    if "gaussian" in auroc:
        loc, a = best("gaussian")
        verdict = ("inconclusive" if a is None else "holds" if a < t["hidden_auroc"] else
                   "does not hold" if a >= t["exposed_auroc"] else "partly holds")
        out.append(finding(
            "Gaussian filling hides the positions from adaptive locators", verdict,
            f"Best locator against Gaussian filling: {loc} with AUROC {a if a is None else round(a, 3)}; "
            + ", ".join(f"{n} {v:.2f}" for n, v in auroc["gaussian"].items() if v is not None)
            + f" (means over {len(fig['concepts'])} concept(s)" + (f" x {len(fig['seeds'])} seed(s)" if fig["seeds"]
                                                                  else "")
            + f"). Holds below AUROC {t['hidden_auroc']:.2f} (near chance), does not hold at or above "
            f"{t['exposed_auroc']:.2f}. The paper leaves this open; its authors' attacker uses global_bottom."))
    hidden = [d for d in auroc if d != "none" and best(d)[1] is not None and best(d)[1] < t["hidden_auroc"]]
    exposed = {d: best(d) for d in auroc if d != "none" and d not in hidden}
    out.append(finding(
        "Which defenses hide the positions from every registered locator", None,
        (f"Hidden (best AUROC < {t['hidden_auroc']:.2f}): {', '.join(hidden) if hidden else 'none'}. "
         "Exposed or partly exposed: "
         + (", ".join(f"{d} (best {loc}, AUROC {a:.2f})" for d, (loc, a) in exposed.items() if a is not None)
            or "none") + ". Recall at 0.5x / 1x / 2x the true pruned share is in recall_by_budget.")))
    if fig.get("attacker_vs_oracle"):
        out.append(finding(
            "The attacker's own choice of locator against the oracle's", None,
            "Mean restoration of the truly pruned weights, attacker's data-free choice vs the oracle's: "
            + ", ".join(f"{d} {v['mean_attacker_restoration']:.3f} vs {v['mean_oracle_restoration']:.3f} "
                        f"(same pick {pct(v['agreement'])})" for d, v in fig["attacker_vs_oracle"].items())
            + ". The oracle reads the true masks: it is an upper bound, not an attacker."))
    return out


def plot(fig: Mapping, out: Path) -> Path:
    return save_png(locator_auroc_figure(fig["auroc"], title=f"RQ3: locator AUROC by defense (scale {fig['scale']:g},"
                                                             f" mean over {len(fig['concepts'])} concept(s))"), out)
