"""Device placement without a GPU: every tensor the attack, the defenses and the trials create must be placed
explicitly (on the weights' device, or deliberately on the CPU). With torch's default device set to `meta`, any
tensor created without a device lands on meta and fails against the CPU weights, as a CPU tensor would fail
against CUDA weights; the CUDA smoke test in test_families.py runs the real thing where a GPU exists."""

from __future__ import annotations

import pytest
import torch

from revival.attack import revive
from revival.catalog import COMPLETION_METHODS, DEFENSE_NAMES, LOCATOR_NAMES, MAGNITUDE_RULES, SCOPES
from revival.defend.obfuscate import obfuscate
from revival.defend.study import attack_trial, oracle_trial
from revival.evaluate.attack_metrics import score_attack

NAMES = [f"blocks.{i}.ff.net.2.weight" for i in range(2)]


@pytest.fixture(scope="module")
def weights():
    g = torch.Generator().manual_seed(0)
    original = {n: torch.randn(16, 64, generator=g) for n in NAMES}
    masks = {n: torch.rand(16, 64, generator=g) < 0.1 for n in NAMES}
    return original, masks, {n: w.masked_fill(masks[n], 0) for n, w in original.items()}


@pytest.fixture
def implicit_is_meta():
    torch.set_default_device("meta")
    try:
        yield
    finally:
        torch.set_default_device("cpu")


@pytest.mark.parametrize("method", COMPLETION_METHODS)
def test_completion_places_its_tensors(weights, implicit_is_meta, method):
    original, masks, pruned = weights
    res = revive(pruned, device="cpu", method=method)
    scores = score_attack(res.state_dict, res.located, res.completed, original, masks)
    assert scores["sign_recovery"]["overall"] is not None


@pytest.mark.parametrize("magnitude", MAGNITUDE_RULES)
def test_magnitude_rules_draw_on_the_weights_device(weights, implicit_is_meta, magnitude):
    original, _, pruned = weights
    res = revive(pruned, device="cpu", magnitude=magnitude, reference=original)
    assert all(res.state_dict[n].device.type == "cpu" for n in NAMES)


@pytest.mark.parametrize("defense", DEFENSE_NAMES)
@pytest.mark.parametrize("scope", SCOPES)
def test_defenses_draw_on_the_weights_device(weights, implicit_is_meta, defense, scope):
    _, masks, pruned = weights
    if defense == "lowrank" and scope == "global":
        pytest.skip("lowrank takes row or layer scope")
    out, _ = obfuscate(pruned, masks, method=defense, scope=scope)
    assert all(out[n].device.type == "cpu" for n in NAMES)


@pytest.mark.parametrize("locator", LOCATOR_NAMES)
def test_adaptive_attack_trials_place_their_tensors(weights, implicit_is_meta, locator):
    original, masks, pruned = weights
    defended, _ = obfuscate(pruned, masks)
    trial = attack_trial(defended if locator != "zeros" else pruned, masks, original, locator=locator)
    assert trial.metrics["recall"] is not None
    assert oracle_trial(defended, pruned, masks, original).metrics["coverage"] is not None
