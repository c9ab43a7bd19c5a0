import pytest
import torch

from revival.attack import COMPLETERS
from revival.attack.complete import as_dtype, needs_full
from revival.attack.holes import column_activation, hole_floor, hole_like_holdout, sign_score
from revival.errors import RevivalError


def wanda_case(m=48, n=192, rank=4, noise=0.3, k=8, seed=0):
    """Low-rank plus noise weights and a WANDA mask: per row the k largest |w| x a_j (a: column activations)."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(m, rank, generator=g) @ torch.randn(rank, n, generator=g) + noise * torch.randn(m, n, generator=g)
    a = torch.exp(0.7 * torch.randn(n, generator=g))
    mask = torch.zeros(m, n, dtype=torch.bool).scatter_(1, (W.abs() * a).topk(k, dim=1).indices, True)
    return W, mask, a


def signs(out, W, mask):
    return float((torch.sign(out[mask]) == torch.sign(W[mask])).float().mean())


def test_column_activation_grows_with_the_hole_share():
    miss = torch.zeros(100, 3, dtype=torch.bool)
    miss[:2, 0], miss[:10, 1], miss[:40, 2] = True, True, True
    a = column_activation(miss)
    assert a[0] < a[1] < a[2]


def test_hole_floor_bounds_every_hole_when_activations_are_known():
    W, mask, a = wanda_case()
    floor = hole_floor(W, mask, a.double())
    assert (W.abs().double()[mask] >= floor[mask] - 1e-9).all()  # a hole's score beats every observed one
    score = W.abs().double() * a.double()
    assert torch.allclose(floor * a.double(), score[~mask].view(48, -1).amax(1, keepdim=True).expand(48, 192))


def test_hidden_entries_are_observed_large_and_about_share_times_twice_the_holes():
    W, mask, _ = wanda_case()
    a = column_activation(mask)
    hidden = hole_like_holdout(W, mask, a, 0.25, torch.Generator().manual_seed(0))
    assert not (hidden & mask).any()
    assert 0.3 * mask.sum() < hidden.sum() < 0.8 * mask.sum()  # expected 0.25 x 2 x holes
    assert W.abs()[hidden].mean() > 1.5 * W.abs()[~mask & ~hidden].mean()


def test_sign_score_mixes_overall_and_confident_agreement():
    truth = torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0])
    est = torch.tensor([[3.0, -3.0], [2.0, -2.0], [-1.0, 1.0], [-0.1, 0.1], [-0.2, 0.2]])
    s = sign_score(est, truth)
    assert s[0] == pytest.approx(0.5 * (0.8 + 1.0)) and s[1] == pytest.approx(0.5 * (0.2 + 0.0))


def test_holdout_lambda_beats_a_deliberately_bad_one_and_says_why():
    W, mask, _ = wanda_case(m=64, n=256, rank=6, k=10)
    Wp = torch.where(mask, 0.0, W)
    stats = {}
    chosen = COMPLETERS.get("softimpute")(Wp, mask, stats=stats)
    bad = COMPLETERS.get("softimpute")(Wp, mask, lam="auto", lam_scale=0.1)  # little shrinkage: fits the noise
    assert signs(chosen, W, mask) > signs(bad, W, mask) + 0.05
    assert stats["reason"].startswith("holdout:") and stats["holdout"] > 0
    assert set(stats["holdout_scores"]) == {"1", "0.7", "0.5", "0.35", "0.25", "0.15", "0.1"}
    assert torch.equal(chosen[~mask], W[~mask]) and stats["iterations"] <= stats["tune_iterations"] + 10


def test_holdout_is_seeded_and_mnar_fill_can_be_turned_off():
    W, mask, _ = wanda_case(seed=1)
    Wp = torch.where(mask, 0.0, W)
    a, b = (COMPLETERS.get("softimpute")(Wp, mask, seed=3) for _ in range(2))
    assert torch.equal(a, b)
    s = {}
    COMPLETERS.get("softimpute")(Wp, mask, mnar=False, stats=s)
    assert s["mnar"] is False


def test_dtype_is_named_and_checked():
    W, mask, _ = wanda_case(m=16, n=64, k=4)
    out = COMPLETERS.get("softimpute")(torch.where(mask, 0.0, W).double(), mask, dtype="float64", lam="auto")
    assert out.dtype == torch.float64 and as_dtype("float32") is torch.float32
    with pytest.raises(RevivalError, match="dtype must be one of float32, float64"):
        COMPLETERS.get("als")(W, mask, dtype="half")
    with pytest.raises(RevivalError, match="lam_grid"):
        COMPLETERS.get("softimpute")(W, mask, lam_grid=(0.5, -1.0))
    stats = {}
    COMPLETERS.get("softimpute")(torch.where(mask, 0.0, W), mask, lam_grid=[0.5, 2], stats=stats)
    assert set(stats["holdout_scores"]) == {"2", "0.5"}


def test_mnar_scale_measured_once_recovers_the_signs_of_measuring_it_every_step():
    """sigma_every 0 (the default) forms the whole low-rank matrix on the first step only; k: every k steps."""
    assert [needs_full(s, 0) for s in range(4)] == [True, False, False, False]
    assert [needs_full(s, 2) for s in range(4)] == [True, False, True, False]
    W, mask, _ = wanda_case(m=64, n=256, rank=6, k=10, seed=2)
    Wp = torch.where(mask, 0.0, W)
    once, every = (COMPLETERS.get("softimpute")(Wp, mask, sigma_every=k) for k in (0, 1))
    assert not torch.equal(once, every) and abs(signs(once, W, mask) - signs(every, W, mask)) < 0.02
    assert signs(once, W, mask) > 0.75 and torch.equal(once[~mask], W[~mask])
