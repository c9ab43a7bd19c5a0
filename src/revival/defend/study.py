"""Defense-versus-attacker trials: defend an unlearned model, let an adaptive attacker revive it, measure.

Weight-space figures only (no images): the locator's precision, recall and AUROC against the true
masks, what the attack wrote at the truly pruned positions (ORACLE figures, `evaluate.attack_metrics`),
and the attacker's own data-free score of its located set (`holdout_score`, `attack.selection`).
Generation-side figures are
measured by the caller on `defend(...)` (once per defense) and on each `attack_trial(...).revived`:

    defended = defend(unlearned, masks, "gaussian", scale=1.0)
    for locator in ("global_bottom", "residual", "neuron"):
        lp = informed_locator_params(locator, "gaussian", 1.0)
        trial = attack_trial(defended, masks, original, locator=locator, locator_params=lp)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from torch import Tensor

from revival.attack import LOCATORS, revive
from revival.attack.adaptive_locate import locate_with_scores
from revival.attack.selection import holdout_sign_score
from revival.defend.masks import match_masks
from revival.defend.obfuscate import obfuscate
from revival.errors import RevivalError
from revival.evaluate.attack_metrics import restoration, score_attack
from revival.evaluate.locator_metrics import locator_report

__all__ = ["Trial", "attack_trial", "defend", "informed_locator_params", "oracle_trial", "restoration"]


@dataclass
class Trial:
    """One attack on published weights: what it located, the revived weights (None if it found nothing), figures."""

    located: dict[str, Tensor]
    revived: dict[str, Tensor] | None
    metrics: dict


def informed_locator_params(locator: str, defense: str, scale: float, defense_params: dict | None = None) -> dict:
    """Locator parameters of an attacker who knows the defense and its settings (Kerckhoffs).

    A locator's registry entry says what it `knows` (the fill law's scale, fill and gamma); a
    locator that models the fill takes it only for the fills it can model (gaussian, lowrank).
    `decoy` and `neuron` defenses are described by their fill.
    """
    params = dict(defense_params or {})
    fill = params.get("fill", "gaussian") if defense in ("decoy", "neuron") else defense
    knows = LOCATORS.meta(locator).get("knows", ())
    if "fill" in knows and fill not in ("gaussian", "lowrank"):
        return {}
    law = {"fill": fill, "scale": scale, "gamma": float(params.get("gamma", 0.0)) if fill == "lowrank" else 0.0}
    return {k: law[k] for k in knows}


def defend(unlearned: dict[str, Tensor], masks: dict[str, Tensor], defense: str = "gaussian", scope: str = "row",
           scale: float = 1.0, seed: int = 0, **defense_params) -> dict[str, Tensor]:
    """The published weights: `obfuscate` with `defense`, or the unlearned zeros as they are for "none"."""
    if defense == "none":
        return dict(unlearned)
    return obfuscate(unlearned, masks, method=defense, scope=scope, scale=scale, seed=seed, **defense_params)[0]


def attack_trial(defended: dict[str, Tensor], masks: dict[str, Tensor], reference: dict[str, Tensor], *,
                 locator: str = "neuron", locator_params: dict | None = None, seed: int = 0, layers: str = "ffn2",
                 **revive_params) -> Trial:
    """Locate on the published weights, revive with `revival.attack.revive`, and measure against the truth.

    `masks` are the true pruning masks and `reference` the original (unpruned) weights, used only
    to measure; `revive_params` go to `revive` (method, top_ratio, magnitude, completion
    parameters). The locator sees the masked layers of `defended`, as inside `revive`.
    """
    masks = match_masks(defended, masks)
    t0 = time.perf_counter()
    lp = dict(locator_params or {})
    weights = {n: defended[n].float() for n in masks}
    located, scores = locate_with_scores(locator, weights, **lp)
    report = locator_report(weights, located, scores, masks)
    t1 = time.perf_counter()
    metrics = {"defended_restoration": restoration(defended, reference, masks),
               "precision": report["precision"], "recall": report["recall"], "auroc": report["auroc"],
               "located": report["located"], "true": report["true"]}
    revived = None
    try:
        result = revive(defended, layers=layers, locator=locator, locator_params=lp, seed=seed, **revive_params)
        revived = result.state_dict
        s = score_attack(revived, result.located, result.completed, reference, masks)
        sr, n = s["sign_recovery"], max(1, s["sign_recovery"]["n_pruned"])
        matched = round((sr["retained"] or 0.0) * sr["n_retained"])
        metrics.update(revived_correct=matched / n, revived_wrong=(sr["n_retained"] - matched) / n,
                       sign_recovery_retained=sr["retained"], sign_recovery_overall=sr["overall"],
                       coverage=s["coverage"], collateral=s["collateral"], restoration=s["restoration"])
        # the attacker's own, data-free score of this located set (revival.attack.selection)
        metrics["holdout_score"] = holdout_sign_score(weights, result.located,
                                                      method=revive_params.get("method", "softimpute"), seed=seed)
    except RevivalError as e:
        if "nothing to revive" not in str(e):
            raise
        metrics.update(revived_correct=0.0, revived_wrong=0.0, sign_recovery_retained=None,
                       sign_recovery_overall=0.0, coverage=0.0, collateral=0.0,
                       restoration=metrics["defended_restoration"], holdout_score=None)
    metrics["seconds"] = {"locate": round(t1 - t0, 3), "revive": round(time.perf_counter() - t1, 3)}
    return Trial(located, revived, metrics)


def oracle_trial(defended: dict[str, Tensor], unlearned: dict[str, Tensor], masks: dict[str, Tensor],
                 reference: dict[str, Tensor], *, seed: int = 0, layers: str = "ffn2", **revive_params) -> Trial:
    """The perfect adaptive locator, an upper bound on every real one: it knows every entry the defense wrote.

    Those entries (the pruned positions, and any decoy or neuron fill) are set back to zero and the
    plain attack (`zeros` locator) runs on the result.
    """
    masks = match_masks(defended, masks)
    written = {n: m | (defended[n] != unlearned[n]) for n, m in masks.items()}
    zeroed = dict(defended)
    for n, w in written.items():
        zeroed[n] = defended[n].masked_fill(w, 0.0)
    trial = attack_trial(zeroed, masks, reference, locator="zeros", seed=seed, layers=layers, **revive_params)
    trial.metrics["defended_restoration"] = restoration(defended, reference, masks)
    return trial
