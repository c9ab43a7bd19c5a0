import pytest
import torch

from revival.errors import RevivalError
from revival.evaluate.locator_metrics import auroc, locator_report, precision_recall


def test_auroc_by_hand():
    # positives 0.35, 0.8 against negatives 0.1, 0.4: pairs won 1 + 0 + 1 + 1 = 3 of 4
    assert auroc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])) == pytest.approx(0.75)
    assert auroc(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([False, True, True])) == 1.0
    assert auroc(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([False, True, True])) == 0.0


def test_auroc_ties_count_one_half():
    # positives {1, 0, 1}, negatives {1, 0}: pairs 0.5 + 1 + 0 + 0.5 + 0.5 + 1 = 3.5 of 6
    scores = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0])
    labels = torch.tensor([True, False, False, True, True])
    assert auroc(scores, labels) == pytest.approx(3.5 / 6)
    assert auroc(torch.ones(7), torch.tensor([1, 0, 1, 0, 0, 1, 0]).bool()) == pytest.approx(0.5)


def test_auroc_matches_pair_counting_on_random_data():
    g = torch.Generator().manual_seed(0)
    s = torch.randint(0, 5, (300,), generator=g).float()
    y = torch.rand(300, generator=g) < 0.3
    pos, neg = s[y], s[~y]
    diff = pos.view(-1, 1) - neg.view(1, -1)
    expected = float(((diff > 0).float() + 0.5 * (diff == 0).float()).mean())
    assert auroc(s, y) == pytest.approx(expected)


def test_auroc_undefined_and_bad_shapes():
    assert auroc(torch.rand(5), torch.zeros(5, dtype=torch.bool)) is None
    assert auroc(torch.rand(5), torch.ones(5, dtype=torch.bool)) is None
    with pytest.raises(RevivalError, match="labels"):
        auroc(torch.rand(5), torch.ones(4, dtype=torch.bool))


def test_precision_recall():
    located = torch.tensor([True, True, False, False, True])
    truth = torch.tensor([True, False, False, True, True])
    assert precision_recall(located, truth) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert precision_recall(torch.zeros(5, dtype=torch.bool), truth) == (None, 0.0)


def test_locator_report_per_layer_and_pooled():
    masks = {"a": torch.tensor([[True, False], [False, False]]), "b": torch.tensor([[False, True, True]])}
    located = {"a": torch.tensor([[True, True], [False, False]]), "b": torch.tensor([[False, True, False]])}
    weights = {n: torch.zeros(m.shape) for n, m in masks.items()}
    scores = {"a": torch.tensor([[0.9, 0.8], [0.1, 0.2]]), "b": torch.tensor([[0.0, 0.7, 0.5]])}
    r = locator_report(weights, located, scores, masks)
    assert r["precision"] == pytest.approx(2 / 3) and r["recall"] == pytest.approx(2 / 3)
    assert r["per_layer"]["a"] == {"precision": 0.5, "recall": 1.0, "auroc": 1.0, "located": 2, "true": 1}
    assert r["per_layer"]["b"]["auroc"] == 1.0
    # pooled: positives 0.9, 0.7, 0.5 against negatives 0.8, 0.1, 0.2, 0.0 -> 4 + 3 + 3 of 12 pairs
    assert r["auroc"] == pytest.approx(10 / 12)
    binary = locator_report(weights, located, None, masks)
    assert binary["auroc"] == pytest.approx(auroc(torch.tensor([1.0, 1, 0, 0, 0, 1, 0]),
                                                  torch.tensor([1, 0, 0, 0, 0, 1, 1]).bool()))
    with pytest.raises(RevivalError, match="differ"):
        locator_report(weights, {"a": torch.zeros(3, 3, dtype=torch.bool)}, None, masks)
