import pytest
import torch

from revival.attack import adaptive_locate as al
from revival.attack.locate import LOCATORS
from revival.errors import RevivalError
from revival.evaluate.locator_metrics import locator_report

ADAPTIVE = ["global_bottom", "row_outlier", "residual", "neuron"]


def _lowrank_plus_noise(m, n, rank, noise, seed):
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(m, rank, generator=g) @ torch.randn(rank, n, generator=g)
    return low + noise * torch.randn(m, n, generator=g)


def _one_per_row(m, n, seed):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(m, n, dtype=torch.bool)
    mask[torch.arange(m), torch.randint(0, n, (m,), generator=g)] = True
    return mask


def test_registered_with_scores():
    for name in ADAPTIVE:
        assert name in LOCATORS and name in al.SCORES
    W = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    located, scores = al.locate_with_scores("zeros", {"w": W})
    assert torch.equal(scores["w"], torch.tensor([[1.0, 0.0], [0.0, 1.0]])) and torch.equal(located["w"], W == 0)
    with pytest.raises(RevivalError, match="unexpected keyword"):
        al.locate_with_scores("residual", {"w": W}, bogus=1)


@pytest.mark.parametrize("name, params", [("global_bottom", {"ratio": 0.05}), ("row_outlier", {"scale": 2.0}),
                                          ("residual", {"ratio": 0.1, "refits": 1}),
                                          ("neuron", {"fill": "lowrank", "gamma": 0.5, "seed": 3})])
def test_scores_select_the_located_set(name, params):
    W = {"a": _lowrank_plus_noise(16, 64, 2, 0.3, 8), "b": _lowrank_plus_noise(8, 40, 2, 0.3, 9)}
    located, scores = al.locate_with_scores(name, W, **params)
    direct = LOCATORS.get(name)(W, **params)
    assert all(torch.equal(located[n], direct[n]) for n in W) and set(scores) == set(W)


def test_global_bottom_finds_planted_small_values_across_layers():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(10, 50, generator=g).sign() * (1 + torch.rand(10, 50, generator=g))
    B = 5 * torch.randn(20, 25, generator=g).sign() * (1 + torch.rand(20, 25, generator=g))
    planted = {"a": torch.rand(10, 50, generator=g) < 0.02, "b": torch.zeros(20, 25, dtype=torch.bool)}
    planted["b"][3, :4] = True
    weights = {"a": A.masked_fill(planted["a"], 1e-3), "b": B.masked_fill(planted["b"], -1e-3)}
    ratio = sum(int(p.sum()) for p in planted.values()) / 1000
    located = LOCATORS.get("global_bottom")(weights, ratio=ratio)
    assert all(torch.equal(located[n], planted[n]) for n in planted)


def test_row_outlier_finds_large_gaussian_fills():
    g = torch.Generator().manual_seed(1)
    W = torch.randn(40, 500, generator=g).sign() * torch.rand(40, 500, generator=g)  # uniform(-1, 1) rows
    planted = torch.rand(40, 500, generator=g) < 0.02
    W = torch.where(planted, 3.0 * torch.randn(40, 500, generator=g), W)
    located, scores = al.locate_with_scores("row_outlier", {"w": W}, ratio=0.02, scale=3.0)
    report = locator_report({"w": W}, located, scores, {"w": planted})
    assert report["auroc"] > 0.85 and report["precision"] > 0.6


def test_row_outlier_finds_small_fills_with_a_small_scale_guess():
    g = torch.Generator().manual_seed(1)
    W = torch.randn(30, 200, generator=g).sign() * (1 + torch.rand(30, 200, generator=g))
    planted = _one_per_row(30, 200, 3)
    W = torch.where(planted, 0.05 * torch.randn(30, 200, generator=g), W)
    located = LOCATORS.get("row_outlier")({"w": W}, ratio=1 / 200, scale=0.1)
    assert torch.equal(located["w"], planted)


def test_residual_finds_entries_that_break_the_low_rank_structure():
    W = _lowrank_plus_noise(40, 120, 3, 0.01, 0)
    planted = _one_per_row(40, 120, 4)
    W = torch.where(planted, -W, W)  # same magnitude, wrong sign: invisible to value tests
    located = LOCATORS.get("residual")({"w": W}, ratio=1 / 120, rank_ratio=0.075)
    assert torch.equal(located["w"], planted)
    by_value = LOCATORS.get("row_outlier")({"w": W}, ratio=1 / 120)
    assert int((by_value["w"] & planted).sum()) < 10


def test_neuron_pools_evidence_over_columns():
    W = _lowrank_plus_noise(64, 256, 4, 0.5, 5)
    g = torch.Generator().manual_seed(6)
    cols = torch.tensor([10, 77, 200])
    planted = torch.zeros(64, 256, dtype=torch.bool)
    planted[:, cols] = torch.rand(64, 3, generator=g) < 0.7
    sd = W.std(1, keepdim=True)
    W = torch.where(planted, W.mean(1, keepdim=True) + sd * torch.randn(64, 256, generator=g), W)
    ratio = 3 / 256
    report_neuron = locator_report({"w": W}, *al.locate_with_scores("neuron", {"w": W}, ratio=ratio), {"w": planted})
    report_entry = locator_report({"w": W}, *al.locate_with_scores("neuron", {"w": W}, ratio=ratio, column_weight=0.0),
                                  {"w": planted})
    assert report_neuron["recall"] > 0.9 and report_neuron["auroc"] > 0.95
    assert report_entry["recall"] < report_neuron["recall"] - 0.2


def test_ties_are_broken_at_random_and_seeded():
    flat = torch.zeros(50, 100)
    a = al.top_per_row(flat, 0.05)
    assert torch.equal(a, al.top_per_row(flat, 0.05))
    assert a.sum(1).eq(5).all() and int((a.sum(0) > 0).sum()) > 50
    assert not torch.equal(a, al.top_per_row(flat, 0.05, seed=1))
    many_zeros = {"a": torch.zeros(10, 10), "b": torch.zeros(10, 10)}
    picked = al.top_global(many_zeros, 0.25)
    assert sum(int(p.sum()) for p in picked.values()) == 50 and all(p.any() for p in picked.values())


@pytest.mark.parametrize("name", ADAPTIVE)
def test_bad_ratio_and_determinism(name):
    W = {"w": _lowrank_plus_noise(16, 64, 2, 0.3, 7)}
    with pytest.raises(RevivalError, match="ratio"):
        LOCATORS.get(name)(W, ratio=0.0)
    with pytest.raises(RevivalError, match="ratio"):
        LOCATORS.get(name)(W, ratio=1.5)
    assert torch.equal(LOCATORS.get(name)(W, ratio=0.1)["w"], LOCATORS.get(name)(W, ratio=0.1)["w"])
