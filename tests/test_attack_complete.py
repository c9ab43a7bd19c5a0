import pytest
import torch

from revival.attack import COMPLETERS
from revival.attack.complete import column_mean_fill, mp_median, paper
from revival.attack.structured import side_features, truncated_mean
from revival.errors import RevivalError


def low_rank(m=40, n=120, rank=3, noise=0.01, seed=0):
    g = torch.Generator().manual_seed(seed)
    L = torch.randn(m, rank, generator=g) @ torch.randn(rank, n, generator=g)
    return L + noise * torch.randn(m, n, generator=g), L


def random_mask(shape, frac=0.1, seed=1):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < frac


@pytest.mark.parametrize("method,max_err", [("softimpute", 0.15), ("als", 0.15), ("structured", 0.15),
                                            ("paper", 0.4)])  # paper barely shrinks: slow nuclear-norm descent
def test_completion_recovers_low_rank(method, max_err):
    W, L = low_rank()
    miss = random_mask(W.shape)
    params = {"paper": {"max_iters": 200}, "softimpute": {"lam": "auto", "mnar": False}}.get(method, {})  # MAR holes
    out = COMPLETERS.get(method)(torch.where(miss, 0.0, W), miss, device="cpu", **params)
    assert torch.equal(out[~miss], W[~miss])  # observed entries kept exactly
    err = (out[miss] - L[miss]).norm() / L[miss].norm()
    assert err < max_err, f"{method}: relative error {err:.3f}"
    assert (torch.sign(out[miss]) == torch.sign(W[miss])).float().mean() > 0.9


def test_softimpute_lambda_path_and_fixed_lambda():
    W, L = low_rank()
    miss = random_mask(W.shape)
    Wp = torch.where(miss, 0.0, W)
    stats = {}
    path = COMPLETERS.get("softimpute")(Wp, miss, lam="auto", mnar=False, n_lambdas=4, max_iters=30, stats=stats)
    assert (path[miss] - L[miss]).norm() / L[miss].norm() < 0.15 and stats["rank_used"] == 3
    fixed = COMPLETERS.get("softimpute")(Wp, miss, lam=stats["lam"], rank=10, mnar=False)
    assert (fixed[miss] - path[miss]).norm() / path[miss].norm() < 0.05


def test_paper_starts_at_column_means():
    W = torch.randn(6, 9, generator=torch.Generator().manual_seed(0))
    miss = random_mask(W.shape, 0.3)
    out = paper(torch.where(miss, 0.0, W), miss, max_iters=0)
    obs = (~miss).double()
    mean = (W.double() * obs).sum(0) / obs.sum(0).clamp_min(1)
    assert torch.allclose(out[miss].double(), mean.expand_as(W)[miss], atol=1e-6)
    assert torch.equal(column_mean_fill(W, torch.zeros_like(miss)), W)


def test_paper_step_is_svd_shrunk_by_smallest_singular_value_in_float64():
    W, _ = low_rank(12, 20, rank=4, noise=0.1)
    miss = random_mask(W.shape, 0.2)
    X = column_mean_fill(torch.where(miss, 0.0, W).double(), miss)
    for _ in range(2):
        U, S, Vh = torch.linalg.svd(X, full_matrices=False)
        X = torch.where(miss, (U * (S - S[-1])) @ Vh, W.double())
    stats = {}
    out = paper(torch.where(miss, 0.0, W).double(), miss, max_iters=2, stats=stats)
    assert out.dtype == torch.float64 and stats["iterations"] == 2 and not stats["converged"]
    assert torch.allclose(out, X, atol=1e-12)


def test_paper_stops_on_change_against_previous_iterate():
    W, _ = low_rank(12, 20, rank=4, noise=0.1)
    miss = random_mask(W.shape, 0.2)
    Wp = torch.where(miss, 0.0, W)
    a, b = paper(Wp, miss, max_iters=4).double(), paper(Wp, miss, max_iters=5).double()
    stats = {}
    paper(Wp, miss, max_iters=5, stats=stats)
    assert abs(stats["last_rel_change"] - float((b - a).norm() / a.norm())) < 1e-9
    paper(Wp, miss, tol=stats["last_rel_change"] * 1.000001, stats=stats)
    assert stats["iterations"] <= 5 and stats["converged"]
    paper(Wp, miss, tol=0.0, stats=stats)
    assert stats["iterations"] == 500 and not stats["converged"]  # the paper's cap


def test_completion_rejects_bad_mask():
    with pytest.raises(RevivalError, match="bool mask"):
        COMPLETERS.get("softimpute")(torch.zeros(4, 5), torch.zeros(4, 4, dtype=torch.bool))


@pytest.mark.parametrize("m,n", [(300, 300), (150, 600)])
def test_mp_median_matches_random_matrix(m, n):
    X = torch.randn(m, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    empirical = torch.linalg.eigvalsh(X @ X.T / n).median()
    assert abs(mp_median(m / n) - float(empirical)) < 0.03


def test_truncated_mean_matches_quadrature():
    x = torch.linspace(-12, 12, 2_000_001, dtype=torch.float64)
    for mu, s, t in [(0.5, 1.0, 1.0), (-2.0, 1.0, 0.5), (0.1, 0.3, 1.0), (0.0, 1.0, 0.2)]:
        p = torch.exp(-((x - mu) ** 2) / (2 * s * s)) * (x.abs() > t)
        est = truncated_mean(torch.tensor(mu), torch.tensor(s), torch.tensor(t))
        assert abs(float(est) - float((x * p).sum() / p.sum())) < 1e-4
    far = truncated_mean(torch.tensor(0.01), torch.tensor(0.1), torch.tensor(5.0))  # both tails ~1e-540
    assert torch.isfinite(far) and 5.0 < float(far) < 5.01


def test_side_features_layout_and_informative_side_rows_help():
    proj = torch.arange(2 * 6 * 3, dtype=torch.float32).view(12, 3)  # GEGLU: (2 * hidden, d), hidden 6, d 3
    side = side_features(proj, 6)
    assert side.shape == (6, 6) and torch.equal(side[:3, 2], proj[2]) and torch.equal(side[3:, 2], proj[8])
    g = torch.Generator().manual_seed(3)
    V = torch.randn(4, 200, generator=g)
    W = torch.randn(30, 4, generator=g) @ V + 0.3 * torch.randn(30, 200, generator=g)
    miss = torch.zeros_like(W, dtype=torch.bool)
    miss[:, :20] = torch.rand(30, 20, generator=g) < 0.8  # columns mostly missing: only the side rows know them
    Wp = torch.where(miss, 0.0, W)
    informative = torch.randn(60, 4, generator=g) @ V
    plain = COMPLETERS.get("structured")(Wp, miss, mnar_quantile=None)
    stats = {}
    helped = COMPLETERS.get("structured")(Wp, miss, side=informative, mnar_quantile=None, stats=stats)
    assert stats["side_weight"] > 0
    acc = [(torch.sign(x[miss]) == torch.sign(W[miss])).float().mean() for x in (plain, helped)]
    assert acc[1] > acc[0] + 0.05
