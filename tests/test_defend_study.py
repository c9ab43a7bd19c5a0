import pytest
import torch

from revival.defend.study import attack_trial, defend, informed_locator_params, oracle_trial, restoration


def _model():
    g = torch.Generator().manual_seed(0)
    original, masks = {}, {}
    for i, (m, n) in enumerate([(16, 64), (24, 96)]):
        name = f"b{i}.ff.net.2.weight"
        original[name] = (torch.randn(m, 3, generator=g) @ torch.randn(3, n, generator=g)
                          + 0.3 * torch.randn(m, n, generator=g))
        masks[name] = torch.rand(m, n, generator=g) < 0.05
    unlearned = {n: w.masked_fill(masks[n], 0.0) for n, w in original.items()}
    return original, unlearned, masks


REVIVE = {"method": "softimpute", "rank": 8, "max_iters": 20}


def test_undefended_zeros_attack_revives_with_correct_signs():
    original, unlearned, masks = _model()
    trial = attack_trial(defend(unlearned, masks, "none"), masks, original, locator="zeros", **REVIVE)
    m = trial.metrics
    assert m["precision"] == m["recall"] == m["auroc"] == 1.0 and m["defended_restoration"] == 0.0
    assert m["revived_correct"] + m["revived_wrong"] == pytest.approx(0.6, abs=0.02)  # top_ratio of each layer
    assert m["sign_recovery_retained"] > 0.8 and m["collateral"] == 0.0 and m["restoration"] > 0.5


def test_gaussian_hides_zeros_and_oracle_is_the_undefended_attack():
    original, unlearned, masks = _model()
    defended = defend(unlearned, masks, "gaussian", scale=1.0)
    blind = attack_trial(defended, masks, original, locator="zeros", **REVIVE)
    assert blind.revived is None and blind.metrics["recall"] == 0.0
    assert blind.metrics["restoration"] == blind.metrics["defended_restoration"] == restoration(defended, original,
                                                                                               masks)
    oracle = oracle_trial(defended, unlearned, masks, original, **REVIVE).metrics
    plain = attack_trial(unlearned, masks, original, locator="zeros", **REVIVE).metrics
    assert oracle["revived_correct"] == plain["revived_correct"] and oracle["restoration"] == plain["restoration"]


def test_adaptive_trial_runs_through_revive():
    original, unlearned, masks = _model()
    defended = defend(unlearned, masks, "gaussian", scale=2.0)
    lp = {"ratio": 0.05, **informed_locator_params("neuron", "gaussian", 2.0)}
    trial = attack_trial(defended, masks, original, locator="neuron", locator_params=lp, **REVIVE)
    assert trial.revived is not None and 0 < trial.metrics["auroc"] <= 1
    changed = {n: trial.revived[n] != defended[n] for n in masks}
    assert all(not (changed[n] & ~trial.located[n]).any() for n in masks)  # the attack writes only where it located


def test_informed_params():
    assert informed_locator_params("row_outlier", "gaussian", 0.5) == {"scale": 0.5}
    assert informed_locator_params("neuron", "lowrank", 1.0, {"gamma": 0.5}) == {"fill": "lowrank", "scale": 1.0,
                                                                                 "gamma": 0.5}
    assert informed_locator_params("neuron", "decoy", 1.0, {"fill": "lowrank"})["fill"] == "lowrank"
    assert informed_locator_params("residual", "gaussian", 1.0) == {}
