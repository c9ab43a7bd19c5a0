import pytest
import torch

from revival.attack import LOCATORS, MAGNITUDES, locate, retain_top
from revival.attack.magnitudes import row_stats
from revival.errors import RevivalError


def setup_matrix():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(6, 10, generator=g)
    miss = torch.zeros(6, 10, dtype=torch.bool)
    miss[:, :3] = True
    completed = torch.where(miss, torch.randn(6, 10, generator=g), W)
    return torch.where(miss, 0.0, W), W, miss, completed


def test_retain_top_keeps_largest_missing_values():
    completed = torch.tensor([[5.0, -0.1, 9.0], [-3.0, 0.2, 100.0]])
    miss = torch.tensor([[True, True, False], [True, True, False]])  # 100 and 9 are observed: never retained
    kept = retain_top(completed, miss, 0.5)
    assert kept.tolist() == [[True, False, False], [True, False, False]]
    assert retain_top(completed, miss, 1.0).equal(miss)
    for bad in (0.0, 1.5, -0.2):
        with pytest.raises(RevivalError, match="top_ratio"):
            retain_top(completed, miss, bad)


def test_row_stats_use_surviving_nonzero_weights_only():
    W = torch.tensor([[1.0, -3.0, 0.0, 50.0], [0.0, 0.0, 0.0, 0.0], [2.0, 2.0, -2.0, 9.0]])
    miss = torch.tensor([[False, False, False, True]] * 3)  # the 50 and 9 are located holes holding noise
    st = row_stats(W, miss)
    assert st.max.tolist()[0] == 3.0 and st.mean.tolist()[0] == 2.0 and st.max.tolist()[2] == 2.0
    assert st.max.tolist()[1] == 3.0  # a row with no survivor falls back to the whole matrix


def test_nms_magnitude_is_at_least_rowmax_and_seeded():
    Wp, _, miss, completed = setup_matrix()
    kept = retain_top(completed, miss, 0.6)
    rule = MAGNITUDES.get("nms")
    v1 = rule(Wp, completed, miss, kept, generator=torch.Generator().manual_seed(1))
    v2 = rule(Wp, completed, miss, kept, generator=torch.Generator().manual_seed(1))
    assert torch.equal(v1, v2)
    rowmax = Wp.abs().amax(1, keepdim=True)
    assert (v1.abs() >= rowmax + 1e-6 * rowmax - 1e-7).all()
    assert torch.equal(torch.sign(v1[kept]), torch.sign(completed[kept]))
    wide = torch.tensor([[0.1, 10.0, 0.0]])  # large spread: samples often exceed rowmax
    m = torch.tensor([[False, False, True]])
    samples = {float(rule(wide, torch.ones(1, 3), m, m, generator=torch.Generator().manual_seed(s))[0, 2])
               for s in range(20)}
    assert min(samples) >= 10.0 and len(samples) > 1


def test_other_rules():
    Wp, W, miss, completed = setup_matrix()
    kept = retain_top(completed, miss, 0.6)
    g = torch.Generator().manual_seed(0)
    st = row_stats(Wp, miss)
    row_mean = MAGNITUDES.get("row_mean")(Wp, completed, miss, kept, generator=g)
    assert torch.allclose(row_mean.abs(), st.mean[:, None].expand_as(Wp))
    sampled = MAGNITUDES.get("sampled")(Wp, completed, miss, kept, generator=g)
    assert (sampled.abs() < st.max[:, None]).float().mean() > 0.5  # the raw sample is a typical magnitude
    assert torch.equal(MAGNITUDES.get("completed")(Wp, completed, miss, kept, generator=g), completed)
    osign = MAGNITUDES.get("oracle_sign")(Wp, completed, miss, kept, generator=g, reference=W)
    assert torch.equal(torch.sign(osign), torch.sign(W))
    omag = MAGNITUDES.get("oracle_magnitude")(Wp, completed, miss, kept, generator=g, reference=W)
    assert torch.allclose(omag.abs(), W.abs()) and torch.equal(torch.sign(omag), torch.sign(completed))
    rs = MAGNITUDES.get("random_sign")(torch.ones(50, 400), torch.ones(50, 400), torch.zeros(50, 400, dtype=torch.bool),
                                       None, generator=g)
    assert 0.45 < (rs > 0).float().mean() < 0.55 and (rs.abs() >= 1.0).all()
    for name in ("oracle_sign", "oracle_magnitude"):
        with pytest.raises(RevivalError, match="reference"):
            MAGNITUDES.get(name)(Wp, completed, miss, kept, generator=g)


def test_locate_zeros_counts_and_warnings():
    W = torch.ones(4, 5)
    W[1, 2] = 0.0
    W[3, :] = 0.0
    res = locate({"a": W, "b": torch.ones(2, 2)})
    assert res.counts == {"a": 6, "b": 0} and res.masks["a"][1, 2]
    assert len(res.warnings) == 1 and "1 whole row(s)" in res.warnings[0]
    with pytest.raises(RevivalError, match="nothing to revive"):
        locate({"b": torch.ones(2, 2)})
    with pytest.raises(RevivalError, match="unknown locator"):
        locate({"a": W}, "nope")
    assert "zeros" in LOCATORS.names()
