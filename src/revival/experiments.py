"""The paper's research questions as named, reproducible experiments (`revival experiment rq1..rq4`).

- rq1: revival from the positions of the zeros alone (erased accuracy original -> unlearned -> revived,
  sign recovery overall and among the retained top-K);
- rq2: signs versus magnitudes (every magnitude rule, with the oracle ablations);
- rq3: which defenses hide the positions (precision, recall, AUROC of every locator against every
  defense; weight space only, so it runs on any model given its unlearned weights and masks);
- rq4: the Gaussian trade-off (erased, preserved and revived-after-the-best-locator accuracy by scale).

An experiment returns its figures; its findings (`revival.findings` verdicts) and its plot are computed
from those figures alone. Stages are cached by `revival.study.Study`, so a run resumes where it stopped.
The demo reuses `adaptive_round`, `best_locator` and `StepClock`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from torch import Tensor

from revival.attack import LOCATORS, MAGNITUDES
from revival.attack.adaptive_locate import locate_with_scores
from revival.defend import DEFENSES
from revival.defend.masks import match_masks
from revival.defend.study import defend, informed_locator_params
from revival.errors import RevivalError
from revival.evaluate.locator_metrics import locator_report
from revival.evaluate.mini_eval import concept_accuracy
from revival.findings import (
    THRESHOLDS,
    defense_finding,
    finding,
    mean,
    pct,
    revival_finding,
    share_verdict,
    sign_recovery_finding,
)
from revival.registry import Registry
from revival.report.experiment_plots import (
    gaussian_tradeoff_figure,
    locator_auroc_figure,
    magnitude_rules_figure,
)
from revival.report.plots import plot_accuracy_by_stage, save_png
from revival.study import Study, StudySettings, defense_tag, family_of

Progress = Callable[[int, int, str], None]  # (steps done, steps planned, label of the step starting)


@dataclass
class ExperimentConfig:
    """Everything an experiment varies (written into its result.json)."""

    concepts: tuple[str, ...] = ("star", "neon", "cage")
    family: str | None = None  # prompt family for pruning; None = inferred from the word (mini model)
    study: StudySettings = field(default_factory=lambda: StudySettings(n_eval=10, eval_steps=10))
    magnitudes: tuple[str, ...] = ("nms", "completed", "row_mean", "sampled", "oracle_sign", "oracle_magnitude",
                                   "random_sign")
    defenses: tuple[str, ...] = ()  # rq3; empty = "none" and every registered defense
    locators: tuple[str, ...] = ()  # empty = every registered locator
    scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)  # rq4
    defense_scale: float = 1.0  # rq3
    defense_scope: str = "row"

    def locator_names(self) -> list[str]:
        """The locators to try (every registered one by default)."""
        return list(self.locators) or LOCATORS.names()

    def defense_names(self) -> list[str]:
        """The defenses rq3 compares ("none" = the unlearned zeros as published)."""
        return list(self.defenses) or ["none", *DEFENSES.names()]


def quick_config(concepts: tuple[str, ...] = ExperimentConfig.concepts) -> ExperimentConfig:
    """Fewer, shorter generations: a smoke run in about a minute per experiment on 2 CPU cores."""
    return ExperimentConfig(concepts=tuple(concepts), study=StudySettings(n_eval=4, eval_steps=8))


def config_to_dict(config) -> dict:
    """A (nested) config dataclass as JSON-ready data."""
    return asdict(config)


def config_from_dict(cls, data: Mapping):
    """Inverse of `config_to_dict` for ExperimentConfig-like classes (tuples and nested StudySettings restored)."""
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        v = data[f.name]
        if f.name == "study":
            v = StudySettings(**v)
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)


class StepClock:
    """Counts and times the units of work of a run; `progress(done, planned, label)` hears each start."""

    def __init__(self, progress: Progress | None = None):
        self.progress = progress or (lambda done, total, label: None)
        self.planned = 0
        self.done = 0
        self.timings_s: dict[str, float] = {}

    def plan(self, steps: int) -> None:
        """Add `steps` units of work to the plan."""
        self.planned += steps

    @contextmanager
    def step(self, label: str, stage: str) -> Iterator[None]:
        """One unit of work; its wall time is added to `timings_s[stage]`."""
        self.progress(self.done, max(self.planned, self.done + 1), label)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings_s[stage] = round(self.timings_s.get(stage, 0.0) + time.perf_counter() - t0, 3)
            self.done += 1

    def finish(self) -> None:
        """Tell the progress callback that everything is done."""
        self.progress(self.done, self.done, "done")


# ---------------------------------------------------------------------------------------------- building blocks
def best_locator(trials: Mapping[str, Mapping]) -> tuple[str, str]:
    """(name, reason) of the locator whose attack put back most of the erased weights.

    Ranked by restoration (<revived, original> / <original, original> over the truly pruned
    positions: the net push of the attack back towards the erased weights, which is what revives
    the concept), ties broken by AUROC (how well its scores single out the pruned positions).
    """
    def key(name: str) -> tuple[float, float]:
        m = trials[name]
        r, a = m.get("restoration"), m.get("auroc")
        return (-math.inf if r is None else float(r), 0.0 if a is None else float(a))

    ranked = sorted(trials, key=key, reverse=True)
    best = ranked[0]

    def describe(name: str) -> str:
        m = trials[name]
        r, a = m.get("restoration"), m.get("auroc")
        return (f"{name} (restoration {'n/a' if r is None else f'{r:.3f}'}, AUROC "
                f"{'n/a' if a is None else f'{a:.2f}'}, recall {pct(m.get('recall'))})")

    reason = (f"highest restoration of the erased weights among the registered locators: {describe(best)}"
              + (f"; others: {', '.join(describe(n) for n in ranked[1:])}" if len(ranked) > 1 else ""))
    return best, reason


@dataclass
class AdaptiveRound:
    """A defended model attacked by every locator: the best one's revived weights and every trial's metrics."""

    defended: dict[str, Tensor]
    attacked: dict[str, Tensor]
    trials: dict[str, dict]
    best: str
    reason: str
    defended_key: str
    attacked_key: str


def adaptive_round(study: Study, concept: str, unlearned: dict[str, Tensor], masks: dict[str, Tensor],
                   defense: str, scale: float, locators: list[str], scope: str = "row",
                   clock: StepClock | None = None) -> AdaptiveRound:
    """Defend `concept`'s unlearned weights, attack with every locator (weight space), keep the best."""
    clock = clock or StepClock()
    trials, attacked, defended = {}, {}, None
    for loc in locators:
        with clock.step(f"{concept}: {defense} {scale:g}, attack with {loc}", "defend + adaptive attacks"):
            defended, attacked[loc], info = study.defend_and_attack(concept, unlearned, masks, defense, scale, loc,
                                                                    scope=scope)
        trials[loc] = info["metrics"]
    best, reason = best_locator(trials)
    tag = defense_tag(defense, scale, scope)
    return AdaptiveRound(defended, attacked[best], trials, best, reason, f"{concept}.defended-{tag}",
                         f"{concept}.{study.attack_name(tag, best)}")


@dataclass
class Context:
    """What an experiment runs on: the Study (None for weight-space runs on given weights) and its settings."""

    config: ExperimentConfig
    study: Study | None
    clock: StepClock
    given: dict[str, tuple[dict[str, Tensor], dict[str, Tensor]]] | None = None  # {label: (unlearned, masks)}

    def family(self, concept: str) -> str:
        """The prompt family of `concept`."""
        return self.config.family or family_of(concept)

    def stage(self, key: str, state: dict[str, Tensor], concept: str, label: str) -> dict:
        """{target, preserved, images, prompts} of `concept` at one model stage (cached), timed as `label`."""
        with self.clock.step(f"{concept}: evaluate {key}", f"evaluate {label}"):
            rec = self.study.evaluate(key, state, self.family(concept))
        return {**concept_accuracy(rec["per_concept"], concept), "images": rec["images"][concept],
                "prompts": rec["prompts"][concept]}

    def accuracy(self, key: str, state: dict[str, Tensor], concept: str, label: str) -> dict:
        """{target, preserved} of `concept` at one model stage (cached), timed as `label`."""
        return _acc_pair(self.stage(key, state, concept, label))

    def unlearned(self, concept: str) -> tuple[dict[str, Tensor], dict[str, Tensor], dict]:
        """(unlearned state, true masks, prune info) of `concept`, pruned once and cached."""
        if self.given is not None:
            unlearned, masks = self.given[concept]
            return unlearned, masks, {}
        with self.clock.step(f"{concept}: prune", "prune"):
            return self.study.unlearn(concept, self.family(concept))

    def revive(self, concept: str, unlearned: dict[str, Tensor], tag: str = "default", **overrides):
        """(revived state, revive info) under `tag`, cached."""
        with self.clock.step(f"{concept}: revive [{tag}]", "revive"):
            return self.study.revive(concept, tag, unlearned, **overrides)


@dataclass
class BaseStages:
    """One concept's first three stages: the unlearned and revived weights and {target, preserved} of each stage."""

    unlearned: dict[str, Tensor]
    masks: dict[str, Tensor]
    prune_info: dict
    revive_info: dict
    accuracy: dict[str, dict]  # {"original" | "unlearned" | "revived": {target, preserved}}


def base_stages(ctx: Context, concept: str) -> BaseStages:
    """original -> unlearned -> revived (default attack) for `concept`, each evaluated (all cached)."""
    orig = ctx.accuracy("original", ctx.study.original, concept, "original")
    unlearned, masks, pinfo = ctx.unlearned(concept)
    unl = ctx.accuracy(f"{concept}.unlearned", unlearned, concept, "unlearned")
    revived, rinfo = ctx.revive(concept, unlearned)
    rev = ctx.accuracy(f"{concept}.revived", revived, concept, "revived")
    return BaseStages(unlearned, masks, pinfo, rinfo, {"original": orig, "unlearned": unl, "revived": rev})


def _acc_pair(acc: Mapping) -> dict:
    return {"target": acc["target"], "preserved": acc["preserved"]}


# ---------------------------------------------------------------------------------------------- rq1
def run_rq1(ctx: Context) -> dict:
    """Per concept: erased/preserved accuracy original -> unlearned -> revived, and sign recovery."""
    ctx.clock.plan(5 * len(ctx.config.concepts))
    rows = {}
    for c in ctx.config.concepts:
        base = base_stages(ctx, c)
        rows[c] = {"family": ctx.family(c), **base.accuracy, "density": base.prune_info.get("density"),
                   "sign_recovery": base.revive_info["sign_recovery"],
                   "attack_seconds": base.revive_info["timings_s"]["total"]}
    return {"concepts": rows,
            "accuracy_by_stage": {c: {s: r[s]["target"] for s in ("original", "unlearned", "revived")}
                                  for c, r in rows.items()},
            "preserved_by_stage": {c: {s: r[s]["preserved"] for s in ("original", "unlearned", "revived")}
                                   for c, r in rows.items()}}


def findings_rq1(fig: Mapping) -> list[dict]:
    rows = fig["concepts"]
    return [revival_finding(fig["accuracy_by_stage"]),
            sign_recovery_finding({c: r["sign_recovery"]["overall"] for c, r in rows.items()},
                                  {c: r["sign_recovery"]["retained"] for c, r in rows.items()})]


def plot_rq1(fig: Mapping, out: Path) -> Path:
    return plot_accuracy_by_stage(fig["accuracy_by_stage"], out,
                                  title="RQ1: erased-concept accuracy, original -> unlearned -> revived")


# ---------------------------------------------------------------------------------------------- rq2
def run_rq2(ctx: Context) -> dict:
    """Per concept and magnitude rule: revived accuracy (same completion and retained signs, different values)."""
    rules = list(ctx.config.magnitudes)
    for r in rules:
        MAGNITUDES.get(r)
    ctx.clock.plan(len(ctx.config.concepts) * (3 + 2 * len(rules)))
    rows = {}
    for c in ctx.config.concepts:
        orig = ctx.accuracy("original", ctx.study.original, c, "original")
        unlearned, _, _ = ctx.unlearned(c)
        unl = ctx.accuracy(f"{c}.unlearned", unlearned, c, "unlearned")
        per_rule = {}
        for rule in rules:
            default = rule == ctx.study.s.magnitude
            state, info = ctx.revive(c, unlearned, "default" if default else f"mag-{rule}", magnitude=rule)
            key = f"{c}.revived" if default else f"{c}.revived-mag-{rule}"
            acc = ctx.accuracy(key, state, c, f"revived ({rule})")
            per_rule[rule] = {**_acc_pair(acc), "sign_recovery_retained": info["sign_recovery"]["retained"]}
        rows[c] = {"family": ctx.family(c), "original": _acc_pair(orig), "unlearned": _acc_pair(unl),
                   "rules": per_rule}
    return {"concepts": rows, "rules": rules}


def _erased(rows: Mapping) -> list[str]:
    return [c for c, r in rows.items()
            if r["original"]["target"] - r["unlearned"]["target"] >= THRESHOLDS["erased_drop"]]


def findings_rq2(fig: Mapping) -> list[dict]:
    rows, t = fig["concepts"], THRESHOLDS
    judged = _erased(rows)

    def acc(c: str, rule: str) -> float | None:
        r = rows[c]["rules"].get(rule)
        return None if r is None else r["target"]

    def gap(a: str, b: str | list[str]) -> tuple[list[str], dict[str, float]]:
        """Concepts where rule a beats (the best of) b by the revival gain, and every gap."""
        bs = [b] if isinstance(b, str) else b
        gaps = {}
        for c in judged:
            others = [acc(c, x) for x in bs if acc(c, x) is not None]
            if acc(c, a) is not None and others:
                gaps[c] = acc(c, a) - max(others)
        return [c for c, g in gaps.items() if g >= t["revival_gain"]], gaps

    out = []
    if {"nms", "random_sign"} <= set(fig["rules"]):
        won, gaps = gap("nms", "random_sign")
        out.append(finding(
            "Recovered signs carry the concept", share_verdict(len(won), len(gaps)),
            "Same positions and NMS magnitudes, recovered signs (nms) versus random signs (random_sign): "
            + ", ".join(f"{c} {pct(acc(c, 'nms'))} vs {pct(acc(c, 'random_sign'))}" for c in gaps)
            + f". Holds for a concept when the recovered signs revive at least {pct(t['revival_gain'])} more; "
            "only concepts the unlearning erased are judged."))
    plain = [r for r in ("row_mean", "sampled", "completed") if r in fig["rules"]]
    if "nms" in fig["rules"] and plain:
        won, gaps = gap("nms", plain)
        out.append(finding(
            "Large (row-max) magnitudes are needed, as NMS assumes", share_verdict(len(won), len(gaps)),
            "Same recovered signs, NMS magnitudes versus the best of " + ", ".join(plain) + ": "
            + ", ".join(f"{c} {pct(acc(c, 'nms'))} vs {pct(max(acc(c, r) for r in plain))}" for c in gaps)
            + f". Holds for a concept when NMS revives at least {pct(t['revival_gain'])} more."))
    oracle = [r for r in ("oracle_sign", "oracle_magnitude") if r in fig["rules"]]
    if oracle and "nms" in fig["rules"]:
        means = {r: mean([acc(c, r) for c in judged]) for r in ["nms", *oracle]}
        out.append(finding(
            "Oracle ablations (upper bounds, they read the original weights)", None,
            "Mean revived accuracy over the erased concepts: "
            + ", ".join(f"{r} {pct(v)}" for r, v in means.items())
            + ". oracle_sign = true signs with NMS magnitudes (what perfect sign recovery would give); "
            "oracle_magnitude = true magnitudes with the recovered signs."))
    return out


def plot_rq2(fig: Mapping, out: Path) -> Path:
    rows = fig["concepts"]
    accuracy = {c: {k: v["target"] for k, v in r["rules"].items()} for c, r in rows.items()}
    return save_png(magnitude_rules_figure(accuracy, {c: r["unlearned"]["target"] for c, r in rows.items()},
                                           {c: r["original"]["target"] for c, r in rows.items()},
                                           title="RQ2: revived accuracy by magnitude rule (signs vs magnitudes)"),
                    out)


# ---------------------------------------------------------------------------------------------- rq3
def locator_trial(defended: dict[str, Tensor], masks: dict[str, Tensor], locator: str, params: dict) -> dict:
    """Precision, recall and AUROC of one locator on published weights, against the true masks (no attack)."""
    masks = match_masks(defended, masks)
    weights = {n: defended[n].float() for n in masks}
    located, scores = locate_with_scores(locator, weights, **params)
    report = locator_report(weights, located, scores, masks)
    return {k: report[k] for k in ("precision", "recall", "auroc", "located", "true")}


def run_rq3(ctx: Context) -> dict:
    """Every defense (at `defense_scale`) against every locator: weight-space metrics, no generation."""
    cfg = ctx.config
    defenses, locators = cfg.defense_names(), cfg.locator_names()
    labels = list(ctx.given) if ctx.given is not None else list(cfg.concepts)
    ctx.clock.plan(len(labels) * (1 + len(defenses)))
    rows = []
    seed = ctx.study.s.seed if ctx.study is not None else 0
    for c in labels:
        unlearned, masks, _ = ctx.unlearned(c)
        for d in defenses:
            with ctx.clock.step(f"{c}: {d} against {len(locators)} locators", "defend + locate"):
                defended = defend(unlearned, masks, d, scope=cfg.defense_scope, scale=cfg.defense_scale, seed=seed)
                for loc in locators:
                    params = informed_locator_params(loc, d, cfg.defense_scale)
                    if ctx.study is not None:
                        params |= ctx.study.locator_budget(loc)
                    rows.append({"concept": c, "defense": d, "locator": loc, "locator_params": params,
                                 **locator_trial(defended, masks, loc, params)})
    table = {d: {loc: mean([r["auroc"] for r in rows if r["defense"] == d and r["locator"] == loc])
                 for loc in locators} for d in defenses}
    recall = {d: {loc: mean([r["recall"] for r in rows if r["defense"] == d and r["locator"] == loc])
                  for loc in locators} for d in defenses}
    return {"rows": rows, "auroc": table, "recall": recall, "concepts": labels, "scale": cfg.defense_scale,
            "scope": cfg.defense_scope}


def findings_rq3(fig: Mapping) -> list[dict]:
    t, auroc, recall = THRESHOLDS, fig["auroc"], fig["recall"]
    out = []

    def best(d: str) -> tuple[str | None, float | None]:
        known = {loc: a for loc, a in auroc[d].items() if a is not None}
        if not known:
            return None, None
        loc = max(known, key=known.get)
        return loc, known[loc]

    if "gaussian" in auroc and "zeros" in recall.get("gaussian", {}):
        r = recall["gaussian"]["zeros"]
        out.append(finding(
            "Gaussian filling hides the positions from the plain attack",
            "holds" if r is not None and r <= t["zeros_recall"] else "does not hold",
            f"The zeros locator finds {pct(r)} of the pruned positions after Gaussian filling "
            f"(holds at <= {pct(t['zeros_recall'])})."))
    if "gaussian" in auroc:
        loc, a = best("gaussian")
        verdict = ("inconclusive" if a is None else "holds" if a < t["hidden_auroc"] else
                   "does not hold" if a >= t["exposed_auroc"] else "partly holds")
        out.append(finding(
            "Gaussian filling hides the positions from adaptive locators", verdict,
            f"Best locator against Gaussian filling: {loc} with AUROC {a if a is None else round(a, 3)}; "
            + ", ".join(f"{n} {v:.2f}" for n, v in auroc["gaussian"].items() if v is not None)
            + f". Holds below AUROC {t['hidden_auroc']:.2f} (near chance), does not hold at or above "
            f"{t['exposed_auroc']:.2f}. The paper leaves this open; its authors' attacker uses global_bottom."))
    hidden = [d for d in auroc if d != "none" and best(d)[1] is not None and best(d)[1] < t["hidden_auroc"]]
    exposed = {d: best(d) for d in auroc if d != "none" and d not in hidden}
    out.append(finding(
        "Which defenses hide the positions from every registered locator", None,
        (f"Hidden (best AUROC < {t['hidden_auroc']:.2f}): {', '.join(hidden) if hidden else 'none'}. "
         "Exposed or partly exposed: "
         + (", ".join(f"{d} (best {loc}, AUROC {a:.2f})" for d, (loc, a) in exposed.items() if a is not None)
            or "none") + ".")))
    return out


def plot_rq3(fig: Mapping, out: Path) -> Path:
    return save_png(locator_auroc_figure(fig["auroc"], title=f"RQ3: locator AUROC by defense (scale {fig['scale']:g},"
                                                             f" mean over {len(fig['concepts'])} concept(s))"), out)


# ---------------------------------------------------------------------------------------------- rq4
def run_rq4(ctx: Context) -> dict:
    """Per concept and Gaussian scale: erased/preserved accuracy of the defended model and after the best locator."""
    cfg = ctx.config
    locators = cfg.locator_names()
    ctx.clock.plan(len(cfg.concepts) * (4 + len(cfg.scales) * (len(locators) + 2)))
    concepts, rows = {}, []
    for c in cfg.concepts:
        base = base_stages(ctx, c)
        concepts[c] = {"family": ctx.family(c), **base.accuracy}
        for s in cfg.scales:
            rnd = adaptive_round(ctx.study, c, base.unlearned, base.masks, "gaussian", s, locators, cfg.defense_scope,
                                 ctx.clock)
            dacc = ctx.accuracy(rnd.defended_key, rnd.defended, c, "defended")
            aacc = ctx.accuracy(rnd.attacked_key, rnd.attacked, c, "revived after defense")
            rows.append({"concept": c, "scale": s, "erased": dacc["target"], "preserved": dacc["preserved"],
                         "revived": aacc["target"], "preserved_after_attack": aacc["preserved"],
                         "best_locator": rnd.best, "best_locator_reason": rnd.reason, "trials": rnd.trials})
    means = [{"scale": s, **{k: mean([r[k] for r in rows if r["scale"] == s])
                             for k in ("erased", "preserved", "revived")}} for s in cfg.scales]
    return {"concepts": concepts, "rows": rows, "means": means,
            "baselines": {"unlearned": mean([r["unlearned"]["target"] for r in concepts.values()]),
                          "unlearned_preserved": mean([r["unlearned"]["preserved"] for r in concepts.values()])}}


def findings_rq4(fig: Mapping) -> list[dict]:
    out, passing = [], []
    for s in sorted({r["scale"] for r in fig["rows"]}):
        rows = {}
        for r in fig["rows"]:
            if r["scale"] == s:
                base = fig["concepts"][r["concept"]]
                rows[r["concept"]] = {"original": base["original"]["target"],
                                      "unlearned": base["unlearned"]["target"],
                                      "revived": base["revived"]["target"], "defended": r["erased"],
                                      "revived_after_defense": r["revived"],
                                      "unlearned_preserved": base["unlearned"]["preserved"],
                                      "defended_preserved": r["preserved"]}
        out.append(defense_finding(f"Gaussian obfuscation at scale {s:g} defends", rows))
        if out[-1]["verdict"] == "holds":
            passing.append(f"{s:g}")
    verdicts = [f["verdict"] for f in out]
    summary = ("holds" if "holds" in verdicts else "partly holds" if "partly holds" in verdicts else
               "inconclusive" if all(v == "inconclusive" for v in verdicts) else "does not hold")
    out.insert(0, finding(
        "A Gaussian noise scale exists that keeps the concept erased, the rest intact and stops revival", summary,
        f"Scales that pass for every judged concept: {', '.join(passing) or 'none'} (details below; the "
        "adaptive attacker uses the best registered locator at each scale, chosen by restoration)."))
    return out


def plot_rq4(fig: Mapping, out: Path) -> Path:
    return save_png(gaussian_tradeoff_figure(fig["means"], fig["baselines"]), out)


# ---------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Experiment:
    """A named research question: how to run it, judge it and draw it."""

    name: str
    title: str
    question: str
    needs_images: bool  # False: weight space only (runs on any model)
    run: Callable[[Context], dict]
    findings: Callable[[Mapping], list[dict]]
    plot: Callable[[Mapping, Path], Path]


EXPERIMENTS: Registry[Experiment] = Registry("experiment")
for _exp in (
    Experiment("rq1", "RQ1: revival from the positions alone",
               "Does the data-free attack bring back a concept ConceptPrune erased, from the pruned weights alone?",
               True, run_rq1, findings_rq1, plot_rq1),
    Experiment("rq2", "RQ2: signs versus magnitudes",
               "Do the recovered signs or the magnitudes carry the concept? (magnitude rules and oracle ablations)",
               True, run_rq2, findings_rq2, plot_rq2),
    Experiment("rq3", "RQ3: which defenses hide the positions",
               "Can an adaptive attacker still locate the pruned positions after each defense? (weight space only)",
               False, run_rq3, findings_rq3, plot_rq3),
    Experiment("rq4", "RQ4: the Gaussian trade-off",
               "Which noise scale keeps the concept erased, the rest intact, and stops the best adaptive revival?",
               True, run_rq4, findings_rq4, plot_rq4),
):
    EXPERIMENTS.register(_exp.name)(_exp)


def run_experiment(name: str, study: Study | None, config: ExperimentConfig,
                   given: dict[str, tuple[dict[str, Tensor], dict[str, Tensor]]] | None = None,
                   progress: Progress | None = None) -> dict:
    """Run experiment `name`: {experiment, title, question, figures, findings, thresholds, timings_s}.

    `study` runs every stage (cached); `given` ({label: (unlearned weights, true masks)}) replaces the
    pruning for the weight-space experiment (rq3), and then `study` may be None.
    """
    exp = EXPERIMENTS.get(name)
    if study is None and (exp.needs_images or given is None):
        raise RevivalError(f"{name} needs a model to {'generate images from' if exp.needs_images else 'prune'}")
    if given is not None and exp.needs_images:
        raise RevivalError(f"{name} measures generated images: it prunes the model itself and takes no given masks")
    clock = StepClock(progress)
    figures = exp.run(Context(config, study, clock, given))
    clock.finish()
    return {"experiment": name, "title": exp.title, "question": exp.question, "figures": figures,
            "findings": exp.findings(figures), "thresholds": dict(THRESHOLDS), "timings_s": clock.timings_s}
