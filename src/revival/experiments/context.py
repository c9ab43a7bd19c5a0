"""The building blocks experiments and the demo compose: timed stage steps, the first three stages, and the
adaptive attacker's round (every locator and budget; its own data-free choice beside the oracle's)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor

from revival.attack import LOCATORS
from revival.attack.selection import EXPOSED_ZERO_SHARE, zero_share
from revival.experiments.config import ExperimentConfig
from revival.experiments.progress import StepClock
from revival.findings import pct
from revival.stages import Attacked, Defended, Revived, Stage, Unlearned
from revival.study import Study, family_of
from revival.worlds import world_of

ATTACKER_RULE = ("the attacker's choice, from the published weights alone: the exact zeros when the attacked layers "
                 "hold more than 0.1% of them (positions in plain sight), else the locator and budget whose completion "
                 "best predicts the signs of held-out surviving entries (revival.attack.selection)")
ORACLE_RULE = ("ORACLE upper bound: the locator and budget with the highest restoration of the truly pruned weights "
               "(reads the true masks and the original weights; no real attacker can choose this way)")


@dataclass
class Context:
    """What an experiment runs on: the Study (None for weight-space runs on given weights) and its settings."""

    config: ExperimentConfig
    study: Study | None
    clock: StepClock
    given: dict[str, tuple[dict[str, Tensor], dict[str, Tensor]]] | None = None  # {label: (unlearned, masks)}

    def family(self, concept: str) -> str:
        """The prompt family of `concept`."""
        world_name = world_of(self.study.pipe) if self.study is not None else "minisd"
        return self.config.family or family_of(concept, world_name)

    def accuracy(self, stage: Stage, concept: str, label: str) -> dict:
        """{target, preserved} shares (with intervals), images and prompts of `concept` at `stage`, timed."""
        with self.clock.step(f"{concept}: evaluate {stage.key}", f"evaluate {label}"):
            return self.study.accuracy(stage, concept, self.family(concept))

    def unlearn(self, concept: str, seed: int | None = None) -> Unlearned:
        """The unlearned stage of `concept` (pruned once and cached)."""
        with self.clock.step(f"{concept}: prune", "prune"):
            return self.study.unlearn(concept, self.family(concept), seed)

    def revive(self, unlearned: Unlearned, tag: str = "default", **overrides) -> Revived:
        """The attack on `unlearned` under `tag` (cached)."""
        with self.clock.step(f"{unlearned.info['concept']}: revive [{tag}]", "revive"):
            return self.study.revive(unlearned, unlearned, tag, **overrides)


def shares_only(acc: dict) -> dict:
    """{target, preserved} of an accuracy record, without images and prompts."""
    return {"target": acc["target"], "preserved": acc["preserved"]}


@dataclass
class BaseStages:
    """One concept's first three stages and their {target, preserved} shares."""

    unlearned: Unlearned
    revived: Revived
    accuracy: dict[str, dict]  # {"original" | "unlearned" | "revived": {target, preserved} shares}


def base_stages(ctx: Context, concept: str) -> BaseStages:
    """original -> unlearned -> revived (default attack) for `concept`, each evaluated (all cached)."""
    orig = ctx.accuracy(ctx.study.original, concept, "original")
    unlearned = ctx.unlearn(concept)
    unl = ctx.accuracy(unlearned, concept, "unlearned")
    revived = ctx.revive(unlearned)
    rev = ctx.accuracy(revived, concept, "revived")
    return BaseStages(unlearned, revived, {"original": shares_only(orig), "unlearned": shares_only(unl),
                                           "revived": shares_only(rev)})


def choose(trials: dict[str, dict], metric: str) -> str:
    """The trial label with the highest `metric` (None counts lowest), ties broken by label order."""
    return max(trials, key=lambda k: -math.inf if trials[k].get(metric) is None else float(trials[k][metric]))


def attacker_choice(trials: dict[str, dict], published: dict) -> str:
    """The attacker's pick (ATTACKER_RULE): the exact zeros when in plain sight, else the best held-out score."""
    if "zeros" in trials and zero_share(published) > EXPOSED_ZERO_SHARE:
        return "zeros"
    return choose(trials, "holdout_score")


def describe(label: str, m: dict) -> str:
    """One trial's figures for a findings text."""
    def f(x, spec):
        return "n/a" if x is None else format(x, spec)
    return (f"{label} (held-out sign score {f(m.get('holdout_score'), '.3f')}, restoration "
            f"{f(m.get('restoration'), '.3f')}, AUROC {f(m.get('auroc'), '.2f')}, recall {pct(m.get('recall'))})")


@dataclass
class AdaptiveRound:
    """A defended stage attacked by every locator at every budget: the attacker's and the oracle's pick."""

    defended: Defended
    attacks: dict[str, Attacked]  # {"locator@budget": stage}
    trials: dict[str, dict]  # weight-space metrics per label
    attacker: str
    oracle: str
    reason: str


def adaptive_round(ctx: Context, unlearned: Unlearned, defense: str, scale: float, scope: str = "row") -> AdaptiveRound:
    """Defend `unlearned`, attack with every locator and budget (weight space), pick as attacker and as oracle."""
    study, concept = ctx.study, unlearned.info["concept"]
    defended = study.defend(unlearned, defense, scale, scope)
    attacks = {}
    for loc in ctx.config.locator_names():
        budgets = study.budgets(unlearned) if LOCATORS.meta(loc).get("adaptive") else [None]
        for b in budgets:
            label = loc if b is None else f"{loc}@{b:g}"
            with ctx.clock.step(f"{concept}: {defense} {scale:g}, attack with {label}", "defend + adaptive attacks"):
                attacks[label] = study.attack(defended, unlearned, loc, b)
    trials = {k: a.info["metrics"] for k, a in attacks.items()}
    attacker, oracle = attacker_choice(trials, defended.layers), choose(trials, "restoration")
    reason = (f"attacker: {describe(attacker, trials[attacker])}, by {ATTACKER_RULE}; oracle: "
              f"{describe(oracle, trials[oracle])}, the {ORACLE_RULE}")
    return AdaptiveRound(defended, attacks, trials, attacker, oracle, reason)


def round_plan(ctx: Context) -> int:
    """Attacks one adaptive round runs (for progress bars)."""
    n_budgets = 1 if ctx.study.s.locator_ratio is not None else len(ctx.study.s.budget_factors)
    return sum(n_budgets if LOCATORS.meta(loc).get("adaptive") else 1 for loc in ctx.config.locator_names())
