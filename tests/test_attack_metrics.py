"""Each metric on hand-built cases whose answer is known."""

import numpy as np
import pytest
import torch

from revival.attack import revive
from revival.attack.selection import choose, holdout_sign_score, zero_share
from revival.evaluate.attack_metrics import score_attack
from revival.evaluate.intervals import difference, share, wilson
from revival.experiments.context import attacker_choice
from revival.findings import combine, gain


def _pruned(seed: int = 0, shape=(48, 192), share_=0.1):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(shape[0], 6, generator=g) @ torch.randn(6, shape[1], generator=g) + 0.05 * torch.randn(
        shape, generator=g)
    masks = {"l.ff.net.2.weight": torch.rand(shape, generator=g) < share_}
    ref = {"l.ff.net.2.weight": W}
    return ref, masks, {"l.ff.net.2.weight": W.masked_fill(masks["l.ff.net.2.weight"], 0)}


@pytest.mark.parametrize("rule,lo,hi", [("oracle_sign", 1.0, 1.0), ("random_sign", 0.45, 0.55)])
def test_retained_sign_recovery_is_the_rules_written_signs(rule, lo, hi):
    ref, masks, published = _pruned(share_=0.2)
    res = revive(published, layers="*ff.net.2.weight", magnitude=rule, reference=ref, top_ratio=1.0)
    s = score_attack(res.state_dict, res.located, res.completed, ref, masks)
    assert lo <= s["sign_recovery"]["retained"] <= hi
    nms = revive(published, layers="*ff.net.2.weight", reference=ref, top_ratio=1.0)
    s_nms = score_attack(nms.state_dict, nms.located, nms.completed, ref, masks)
    # the completion's signs (overall) do not depend on the magnitude rule; nms writes exactly those signs
    assert s["sign_recovery"]["overall"] == s_nms["sign_recovery"]["overall"] == s_nms["sign_recovery"]["retained"]


def test_a_locator_that_finds_half_the_holes_scores_recall_half_against_the_truth():
    ref, masks, published = _pruned()
    m = masks["l.ff.net.2.weight"]
    idx = m.flatten().nonzero().squeeze(1)
    half = torch.zeros(m.numel(), dtype=torch.bool)
    half[idx[: len(idx) // 2]] = True
    located = {"l.ff.net.2.weight": half.view_as(m)}
    completed = {"l.ff.net.2.weight": ref["l.ff.net.2.weight"] * located["l.ff.net.2.weight"]}  # perfect where found
    s = score_attack(published, located, completed, ref, masks)
    assert s["recall"] == pytest.approx(0.5, abs=1 / len(idx)) and s["precision"] == 1.0
    assert s["sign_recovery"]["overall"] == pytest.approx(0.5, abs=1 / len(idx))  # missed holes are not recovered
    assert s["positions"] == "true pruning masks"


def test_restoration_is_one_when_put_back_and_zero_when_erased():
    ref, masks, published = _pruned()
    loc = masks
    assert score_attack(ref, loc, ref, ref, masks)["restoration"] == pytest.approx(1.0)
    assert score_attack(published, loc, ref, ref, masks)["restoration"] == 0.0


def test_wilson_interval_covers_the_true_rate_in_at_least_90_percent_of_trials():
    rng = np.random.default_rng(0)
    for p, n in ((0.1, 10), (0.5, 32), (0.85, 32), (0.97, 64)):
        hits = rng.random((2000, n)) < p  # a simulated classifier that is right with probability p
        covered = [lo <= p <= hi for lo, hi in (wilson(int(k), n) for k in hits.sum(1))]
        assert np.mean(covered) >= 0.90


def test_verdicts_read_inconclusive_when_the_interval_spans_the_threshold():
    a, b = share(6, 10), share(3, 10)  # +30 points on 10 images each: too few to say it beats 15 points
    assert gain(a, b, 0.15) == "inconclusive"
    assert gain(share(300, 320), share(30, 320), 0.15) == "pass"
    assert gain(share(33, 320), share(30, 320), 0.15) == "fail"
    assert difference(a, b)["ci95"][0] < 0.15 < difference(a, b)["ci95"][1]
    assert combine(["pass", "pass"]) == "holds" and combine(["pass", "inconclusive"]) == "inconclusive"
    assert combine(["pass", "fail", "inconclusive"]) == "partly holds" and combine(["fail"]) == "does not hold"


def test_the_attackers_choice_uses_only_published_weights_and_prefers_the_true_holes():
    ref, masks, _ = _pruned(share_=0.1)
    name = "l.ff.net.2.weight"
    W = ref[name].clone()
    g = torch.Generator().manual_seed(1)
    W[masks[name]] = torch.randn(int(masks[name].sum()), generator=g) * ref[name].std() * 2  # fills off the structure
    rnd = torch.rand(W.shape, generator=g) < 0.1
    published = {name: W}
    best, scores = choose(published, {"true": masks, "random": {name: rnd}})
    assert best == "true" and scores["true"] > scores["random"]
    assert holdout_sign_score(published, masks) == scores["true"]  # deterministic under its seed


def test_attacker_takes_exact_zeros_in_plain_sight_and_otherwise_the_best_holdout_score():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(64, 256, generator=g)
    pruned = W.masked_fill(torch.rand(W.shape, generator=g) < 0.02, 0.0)
    filled = W.clone()  # a defense that leaves no exact zero
    assert zero_share({"w": W}) == 0.0 and 0.015 < zero_share({"w": pruned}) < 0.025
    trials = {"zeros": {"holdout_score": 0.55}, "residual@0.02": {"holdout_score": 0.74}}
    assert attacker_choice(trials, {"w": pruned}) == "zeros"  # the outlier locator's higher score does not win
    assert attacker_choice(trials, {"w": filled}) == "residual@0.02"
