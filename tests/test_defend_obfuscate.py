import pytest
import torch

from revival.defend import DEFENSES, obfuscate
from revival.defend.obfuscate import SCOPES, pick_decoys, pooled_stats, survivor_stats
from revival.errors import RevivalError

FILLS = ["gaussian", "lowrank"]


def _layer(m=24, n=60, seed=0, density=0.1):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(m, n, generator=g) * torch.exp(torch.randn(m, 1, generator=g)) * 0.05
    mask = torch.rand(m, n, generator=g) < density
    return W.masked_fill(mask, 0.0), mask


def _sd():
    W1, M1 = _layer(seed=1)
    W2, M2 = _layer(32, 48, seed=2)
    return {"a.weight": W1, "b.weight": W2, "bias": torch.ones(3)}, {"a.weight": M1, "b.weight": M2}


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("method", FILLS)
def test_fill_touches_exactly_the_mask(method, scope):
    if method == "lowrank" and scope == "global":
        pytest.skip("lowrank draws residuals from the row or the layer only")
    sd, masks = _sd()
    out, info = obfuscate(sd, masks, method=method, scope=scope, seed=3)
    assert torch.equal(out["bias"], sd["bias"])
    for name, m in masks.items():
        assert out[name].dtype == sd[name].dtype and out[name].shape == sd[name].shape
        assert torch.equal(out[name][~m], sd[name][~m])
        assert (out[name][m] != 0).all()
        assert info["per_layer"][name]["changed"] == int(m.sum()) and info["per_layer"][name]["decoys"] == 0
    assert info["pruned"] == sum(int(m.sum()) for m in masks.values())


@pytest.mark.parametrize("method", DEFENSES.names())
def test_deterministic_under_seed(method):
    sd, masks = _sd()
    a, _ = obfuscate(sd, masks, method=method, seed=5)
    b, _ = obfuscate(sd, masks, method=method, seed=5)
    c, _ = obfuscate(sd, masks, method=method, seed=6)
    assert all(torch.equal(a[n], b[n]) for n in masks)
    assert not all(torch.equal(a[n], c[n]) for n in masks)


def test_gaussian_row_statistics_and_scale():
    g = torch.Generator().manual_seed(0)
    mu = torch.linspace(-1, 1, 8).view(-1, 1)
    sd = torch.linspace(0.5, 3, 8).view(-1, 1)
    W = mu + sd * torch.randn(8, 20000, generator=g)
    mask = torch.rand(8, 20000, generator=g) < 0.3
    for scale in (0.5, 2.0):
        out, _ = obfuscate({"w": W}, {"w": mask}, scope="row", scale=scale, seed=1)
        fill = torch.where(mask, out["w"], torch.nan)
        assert torch.allclose(fill.nanmean(1, keepdim=True), mu, atol=0.05 * scale * 3)
        fill_sd = (fill - fill.nanmean(1, keepdim=True)).pow(2).nanmean(1, keepdim=True).sqrt()
        assert torch.allclose(fill_sd, scale * sd, rtol=0.03)


def test_layer_and_global_statistics():
    g = torch.Generator().manual_seed(0)
    A = 1.0 + 2.0 * torch.randn(50, 2000, generator=g)
    B = -3.0 + 0.5 * torch.randn(50, 2000, generator=g)
    mA = torch.rand(50, 2000, generator=g) < 0.2
    mB = torch.rand(50, 2000, generator=g) < 0.2
    out, _ = obfuscate({"a": A}, {"a": mA}, scope="layer", seed=0)
    assert abs(float(out["a"][mA].mean()) - float(A[~mA].mean())) < 0.05
    assert abs(float(out["a"][mA].std()) / float(A[~mA].std()) - 1) < 0.02
    out, _ = obfuscate({"a": A, "b": B}, {"a": mA, "b": mB}, scope="global", scale=0.5, seed=0)
    pooled = torch.cat([A[~mA], B[~mB]])
    fills = torch.cat([out["a"][mA], out["b"][mB]])
    assert abs(float(fills.mean()) - float(pooled.mean())) < 0.05
    assert abs(float(fills.std()) / (0.5 * float(pooled.std())) - 1) < 0.02
    assert abs(float(out["b"][mB].mean()) - float(pooled.mean())) < 0.1  # not B's own mean (-3)


def test_survivor_stats_by_hand():
    W = torch.tensor([[1.0, 2.0, 3.0, 100.0], [4.0, 4.0, 8.0, 0.0]])
    mask = torch.tensor([[False, False, False, True], [False, False, False, True]])
    mu, sd = survivor_stats(W, mask, "row")
    assert torch.allclose(mu.view(-1), torch.tensor([2.0, 16 / 3]))
    assert torch.allclose(sd.view(-1), torch.tensor([1.0, torch.tensor([4.0, 4.0, 8.0]).std().item()]))
    mu, sd = survivor_stats(W, mask, "layer")
    assert float(mu) == pytest.approx(22 / 6)
    m, s = pooled_stats({"w": W}, {"w": mask})
    assert m == pytest.approx(22 / 6) and s == pytest.approx(float(sd))
    few = torch.tensor([[True, True, True, False], [False, False, False, True]])
    mu, _ = survivor_stats(W, few, "row")
    assert float(mu[0]) == pytest.approx(float(W[~few].mean()))  # a row with one survivor takes the layer's


@pytest.mark.parametrize("pattern", ["row", "column"])
def test_decoys_extend_the_mask(pattern):
    W, mask = _layer(40, 200, seed=4, density=0.03)
    out, info = obfuscate({"w": W}, {"w": mask}, method="decoy", decoys=2.0, pattern=pattern, seed=0)
    changed = out["w"] != W
    extra = changed & ~mask
    assert (changed | ~mask).all()  # every pruned position is filled
    assert info["decoys"] == int(extra.sum())
    if pattern == "row":
        assert torch.equal(extra.sum(1), 2 * mask.sum(1))
    else:
        assert int(extra.sum()) == 2 * int(mask.sum())
        assert int((extra.sum(0) > 0).sum()) <= 2 * int((mask.sum(0) > 0).sum())  # whole neurons, not scattered


def test_decoys_prefer_large_weights_with_bias():
    W, mask = _layer(30, 300, seed=5, density=0.02)
    g = torch.Generator().manual_seed(0)
    big = pick_decoys(W, mask, 3.0, 4.0, "row", g)
    uniform = pick_decoys(W, mask, 3.0, 0.0, "row", g)
    assert float(W.abs()[big].mean()) > 1.5 * float(W.abs()[uniform].mean())
    assert not (big & mask).any()


def test_lowrank_fill_follows_the_matrix_model():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(40, 2, generator=g) @ torch.randn(2, 80, generator=g)
    mask = torch.rand(40, 80, generator=g) < 0.05
    sd = {"w": W.masked_fill(mask, 0.0)}
    plus, _ = obfuscate(sd, {"w": mask}, method="lowrank", gamma=1.0, rank_ratio=0.05, scale=1e-6)
    minus, _ = obfuscate(sd, {"w": mask}, method="lowrank", gamma=-1.0, rank_ratio=0.05, scale=1e-6)
    assert torch.allclose(plus["w"][mask], W[mask], atol=1e-3)
    assert torch.allclose(minus["w"][mask], -W[mask], atol=1e-3)


def test_module_names_and_dtype():
    W, mask = _layer()
    out, _ = obfuscate({"x.ff.net.2.weight": W.half()}, {"x.ff.net.2": mask})
    assert out["x.ff.net.2.weight"].dtype == torch.float16
    assert (out["x.ff.net.2.weight"][mask] != 0).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"scale": 0.0}, "scale"), ({"scale": -1.0}, "scale"), ({"scale": float("nan")}, "scale"),
    ({"scope": "column"}, "scope"), ({"method": "nope"}, "unknown defense"),
    ({"method": "gaussian", "decoys": 2}, "takes no parameter decoys"),
    ({"method": "decoy", "gamma": 2}, "takes no parameter gamma"),
    ({"method": "lowrank", "scope": "global"}, "row or layer"),
])
def test_bad_arguments(kwargs, match):
    sd, masks = _sd()
    with pytest.raises(RevivalError, match=match):
        obfuscate(sd, masks, **kwargs)


def test_bad_masks():
    sd, masks = _sd()
    with pytest.raises(RevivalError, match="names no parameter"):
        obfuscate(sd, {"zzz.weight": masks["a.weight"]})
    with pytest.raises(RevivalError, match="has shape"):
        obfuscate(sd, {"a.weight": masks["b.weight"]})
    with pytest.raises(RevivalError, match="empty"):
        obfuscate(sd, {n: torch.zeros_like(m) for n, m in masks.items()})
    with pytest.raises(RevivalError, match="no masks"):
        obfuscate(sd, {})


def test_neuron_fills_whole_heavily_pruned_columns():
    W, mask = _layer(40, 100, seed=6, density=0.02)
    mask[:, 7] = torch.arange(40) % 3 == 0  # a skilled neuron: a third of its rows pruned
    W = W.masked_fill(mask, 0.0)
    out, info = obfuscate({"w": W}, {"w": mask}, method="neuron", min_share=0.25, seed=0)
    changed = out["w"] != W
    heavy = mask.float().mean(0) >= 0.25
    assert heavy[7] and int(heavy.sum()) < 5
    assert torch.equal(changed, mask | heavy.view(1, -1).expand_as(mask))
    assert info["decoys"] == int((changed & ~mask).sum())
    with pytest.raises(RevivalError, match="min_share"):
        obfuscate({"w": W}, {"w": mask}, method="neuron", min_share=0.0)
