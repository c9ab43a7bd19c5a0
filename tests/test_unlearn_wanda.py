"""WANDA scoring and the union over steps, on hand-made tensors."""

import pytest
import torch

from revival.unlearn.conceptprune import masks_from_norms
from revival.unlearn.wanda import normalised_sq_colsum, union_over_steps, wanda_mask


def test_normalised_sq_colsum_normalises_each_token_row():
    x = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    assert torch.allclose(normalised_sq_colsum(x), torch.tensor([0.36, 1.64]))


def test_normalised_sq_colsum_flattens_leading_dims_and_survives_zero_rows():
    x = torch.randn(2, 5, 7)
    x[0, 0] = 0
    got = normalised_sq_colsum(x)
    assert got.shape == (7,)
    assert torch.allclose(got, normalised_sq_colsum(x.reshape(10, 7)))
    assert torch.isfinite(got).all()
    assert got.sum().item() == pytest.approx(9.0, abs=1e-5)  # nine non-zero unit rows


def test_wanda_mask_keeps_top_k_per_row_by_target_score():
    w = torch.ones(2, 4)
    target = torch.tensor([1.0, 4.0, 3.0, 2.0])
    mask = wanda_mask(w, torch.zeros(4), target, skill_ratio=0.5)  # k = 2
    assert mask.tolist() == [[False, True, True, False]] * 2


def test_wanda_mask_uses_weight_magnitude():
    w = torch.tensor([[-10.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.5]])
    mask = wanda_mask(w, torch.zeros(4), torch.tensor([1.0, 2.0, 1.0, 3.0]), skill_ratio=0.25)  # k = 1
    assert mask.tolist() == [[True, False, False, False], [False, True, False, False]]


def test_wanda_mask_drops_columns_where_base_score_wins():
    w = torch.ones(2, 4)
    target = torch.tensor([1.0, 4.0, 3.0, 2.0])
    base = torch.tensor([0.0, 5.0, 0.0, 0.0])
    mask = wanda_mask(w, base, target, skill_ratio=0.5)
    assert mask.tolist() == [[False, False, True, False]] * 2
    assert not wanda_mask(w, target, target, 0.5).any()  # equal scores: strict comparison prunes nothing


def test_wanda_mask_k_zero_and_bad_shapes():
    w = torch.randn(3, 10)
    assert not wanda_mask(w, torch.zeros(10), torch.ones(10), 0.05).any()  # int(0.5) = 0
    with pytest.raises(ValueError):
        wanda_mask(w, torch.zeros(9), torch.ones(10), 0.5)
    with pytest.raises(ValueError):
        wanda_mask(torch.randn(3), torch.zeros(3), torch.ones(3), 0.5)


def test_union_over_steps_plain_union_and_vote():
    a = torch.tensor([True, False, False, True])
    b = torch.tensor([True, True, False, False])
    c = torch.tensor([True, False, False, True])
    assert union_over_steps([a, b, c]).tolist() == [True, True, False, True]
    assert union_over_steps([a, b, c], select_ratio=0.5).tolist() == [True, False, False, True]  # count > 1.5
    assert union_over_steps(torch.stack([a, b, c]), select_ratio=0.7).tolist() == [True, False, False, False]
    with pytest.raises(ValueError):
        union_over_steps(torch.zeros(0, 4, dtype=torch.bool))


def test_masks_from_norms_unites_per_step_masks():
    g = torch.Generator().manual_seed(0)
    w = {"layer.weight": torch.randn(6, 20, generator=g)}
    nb = {"layer.weight": torch.rand(3, 20, generator=g)}
    nt = {"layer.weight": torch.rand(3, 20, generator=g)}
    got = masks_from_norms(w, nb, nt, skill_ratio=0.2, select_ratio=0.0)["layer.weight"]
    expected = torch.zeros(6, 20, dtype=torch.bool)
    for t in range(3):
        expected |= wanda_mask(w["layer.weight"], nb["layer.weight"][t], nt["layer.weight"][t], 0.2)
    assert torch.equal(got, expected)
    assert got.any()
    assert (got.sum(1) <= 3 * 4).all()  # at most k per row per step
