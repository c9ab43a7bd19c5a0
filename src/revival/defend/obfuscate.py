"""Defenses that hide the pruned positions before a model is published.

A defense is `fn(W, mask, scope, scale, generator, *, global_stats, **params) -> W'`: it returns
a new matrix (same shape and dtype) whose entries outside the positions it chooses to touch equal
`W`'s. `mask` is the publisher's own pruning mask (True = pruned). `scope` names the population of
surviving weights (entries outside the mask) the fill statistics come from: `row` (the entry's
output row), `layer` (the whole matrix) or `global` (every masked matrix of the checkpoint;
`obfuscate` passes their pooled (mean, std) as `global_stats`). `scale` multiplies the fill's
spread. Every random draw comes from `generator`, so a seed fixes the result.

- `gaussian`: the paper's fill, N(mu, (scale * sigma)^2) of the scope's survivors.
- `lowrank`: a fill drawn from the matrix's own low-rank-plus-residual model (`gamma` sets how
  much of the low-rank part, i.e. of the attack's sign estimate, it contains).
- `decoy`: the fill also on `decoys` times as many unpruned weights, laid out like the mask.
- `neuron`: the fill on every weight of the heavily pruned input neurons, so that even a perfect
  locator has nothing in those columns to complete from.
Hiding defenses (`gaussian`, `lowrank`) stop the attack only as far as the holes cannot be
located; `decoy` and `neuron` also change unpruned weights, a quality cost to check on images.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from revival.attack.adaptive_locate import lowrank_impute
from revival.catalog import SCOPES
from revival.defend.masks import match_masks
from revival.errors import RevivalError
from revival.registry import Registry
from revival.validate import check_kwargs

DEFENSES: Registry = Registry("defense")


def check_params(method: str, params: dict, what: str | None = None) -> None:
    """One-line error when defense `method` takes no keyword of `params`, or one of a wrong type."""
    check_kwargs(DEFENSES.get(method), params, what or f"defense {method!r}", skip=("global_stats",))


def survivor_stats(W: Tensor, mask: Tensor, scope: str,
                   global_stats: tuple[float, float] | None = None) -> tuple[Tensor, Tensor]:
    """Mean and sample standard deviation of the surviving (unmasked) weights of the scope.

    Shapes (m, 1) for `row`, scalars otherwise. A row with fewer than two survivors takes the
    layer's statistics.
    """
    X = W.float()
    keep = ~mask
    if scope == "global":
        if global_stats is None:
            raise RevivalError("scope 'global' needs the pooled statistics of all layers (global_stats)")
        return torch.tensor(global_stats[0], device=W.device), torch.tensor(global_stats[1], device=W.device)
    vals = X[keep]
    layer_mu = vals.mean() if vals.numel() else torch.tensor(0.0, device=W.device)
    layer_sd = vals.std() if vals.numel() > 1 else torch.tensor(0.0, device=W.device)
    if scope == "layer":
        return layer_mu, layer_sd
    if scope != "row":
        raise RevivalError(f"unknown scope {scope!r}; known: {', '.join(SCOPES)}")
    n = keep.sum(1, keepdim=True).float()
    mu = (X * keep).sum(1, keepdim=True) / n.clamp_min(1)
    var = (((X - mu) * keep) ** 2).sum(1, keepdim=True) / (n - 1).clamp_min(1)
    few = n < 2
    return torch.where(few, layer_mu, mu), torch.where(few, layer_sd, var.sqrt())


def pooled_stats(weights: dict[str, Tensor], masks: dict[str, Tensor]) -> tuple[float, float]:
    """Mean and sample standard deviation of the surviving weights of all given matrices together."""
    n, s, ss = 0, 0.0, 0.0
    for name, m in masks.items():
        v = weights[name].double()[~m]
        n, s, ss = n + v.numel(), s + float(v.sum()), ss + float((v * v).sum())
    if n < 2:
        raise RevivalError("scope 'global': fewer than two surviving weights")
    mean = s / n
    return mean, math.sqrt(max(ss - n * mean * mean, 0.0) / (n - 1))


@DEFENSES.register("gaussian")
def gaussian(W: Tensor, mask: Tensor, scope: str, scale: float, generator: torch.Generator, *,
             global_stats: tuple[float, float] | None = None) -> Tensor:
    """The paper's obfuscation (SPEC 3): pruned positions <- N(mu, (scale * sigma)^2) of the scope's survivors.

    Threat model: an attacker who locates by exact zeros. It fails against value tests: at small
    `scale` the fills are the smallest weights (`global_bottom`), at large `scale` the largest
    (`row_outlier`), at any scale they ignore the matrix's low-rank structure (`residual`), and
    they cluster on the concept's neurons (`neuron`); an attacker who locates them all revives as
    if there were no defense. The fill itself carries no concept signal (random signs).
    """
    mu, sd = survivor_stats(W, mask, scope, global_stats)
    noise = torch.randn(W.shape, generator=generator, device=generator.device)
    return torch.where(mask, (mu + scale * sd * noise).to(W.dtype), W)


def _sample_top(W: Tensor, banned: Tensor, counts: Tensor, bias: float, dim: int,
                generator: torch.Generator) -> Tensor:
    """Along `dim`, `counts` positions not `banned`, drawn without replacement with probability ~ |W|^bias."""
    u = torch.rand(W.shape, generator=generator, device=generator.device).clamp(1e-12, 1 - 1e-7)
    keys = bias * W.float().abs().clamp_min(1e-30).log() - (-u.log()).log()  # Gumbel top-k sampling
    keys = keys.masked_fill(banned, -math.inf)
    order = keys.argsort(dim=dim, descending=True)
    steps = torch.arange(W.shape[dim], device=W.device)
    steps = steps.view(-1, 1) if dim == 0 else steps.view(1, -1)
    rank = torch.empty_like(order).scatter_(dim, order, steps.expand_as(order).contiguous())
    return (rank < counts) & ~banned


def pick_decoys(W: Tensor, mask: Tensor, decoys: float, bias: float, pattern: str,
                generator: torch.Generator) -> Tensor:
    """Unpruned, non-zero positions that copy the mask's layout `decoys` times over.

    `row`: each row gets round(decoys * its pruned count) decoys. `column`: the mask's per-column
    counts are dealt to randomly permuted columns, int(decoys) times plus a random share of the
    fractional part, so the decoys cluster on whole input neurons as ConceptPrune's holes do.
    Within the row or column, positions are drawn with probability ~ |W|^bias.
    """
    banned = mask | (W == 0)
    if pattern == "row":
        counts = (decoys * mask.sum(1, keepdim=True).float()).round().long()
        return _sample_top(W, banned, counts, bias, 1, generator)
    if pattern != "column":
        raise RevivalError(f"decoy pattern must be row or column, got {pattern!r}")
    per_col = mask.sum(0)
    counts = torch.zeros_like(per_col)
    whole, part = int(decoys), decoys - int(decoys)
    for copy in range(whole + 1):
        take = (per_col if copy < whole
                else per_col * (torch.rand(per_col.shape, generator=generator, device=generator.device) < part))
        counts += take[torch.argsort(torch.rand(per_col.shape, generator=generator, device=generator.device))]
    return _sample_top(W, banned, counts.view(1, -1), bias, 0, generator)


@DEFENSES.register("decoy")
def decoy(W: Tensor, mask: Tensor, scope: str, scale: float, generator: torch.Generator, *,
          decoys: float = 2.0, bias: float = 1.0, pattern: str = "column", fill: str = "gaussian",
          global_stats: tuple[float, float] | None = None, **fill_params) -> Tensor:
    """Fill the pruned positions and `decoys` times as many unpruned weights (see `pick_decoys`) with `fill`.

    Decoys copy the mask's layout (`pattern` column: on whole input neurons, as ConceptPrune's
    holes; row: per row) and are drawn with probability ~ |W|^bias (ConceptPrune prunes large
    weights, so bias > 0 makes decoys look like the real holes to a locator that models the
    matrix). Threat model: an attacker with any locator and a bounded budget: the hidden positions
    are a 1/(1 + decoys) share of an indistinguishable set, so precision and recall fall by that
    factor. It fails against an attacker who locates the whole set (revival then works almost as
    without decoys, and also amplifies the decoys), and it costs the published model the decoy
    weights themselves: quality must be checked on generations.
    """
    if decoys < 0:
        raise RevivalError(f"decoy: decoys must be >= 0, got {decoys}")
    if fill not in ("gaussian", "lowrank"):
        raise RevivalError(f"decoy: fill must be gaussian or lowrank, got {fill!r}")
    check_params(fill, fill_params)
    holes = mask | pick_decoys(W, mask, decoys, bias, pattern, generator)
    return DEFENSES.get(fill)(W, holes, scope, scale, generator, global_stats=global_stats, **fill_params)


@DEFENSES.register("neuron")
def neuron_fill(W: Tensor, mask: Tensor, scope: str, scale: float, generator: torch.Generator, *,
                min_share: float = 0.1, fill: str = "gaussian", global_stats: tuple[float, float] | None = None,
                **fill_params) -> Tensor:
    """Fill the pruned positions and every weight of each input neuron (column) whose pruned share is >= `min_share`.

    ConceptPrune's holes cluster on the concept's skilled neurons; the attack completes a hole
    from the other entries of its column, so a column with no genuine entry left cannot be
    completed at all. Threat model: even an attacker who locates every hole exactly (the fill,
    `gaussian` or `lowrank`, also hides them). It fails against side information
    that predicts a whole column (e.g. the ff.net.0 rows of the same neuron, the attack's
    `structured` completer, if they are coupled), leaves the holes in lightly pruned columns
    attackable, and costs the published model every weight of those neurons: quality must be
    checked on generations.
    """
    if not 0 < min_share <= 1:
        raise RevivalError(f"neuron: min_share must be in (0, 1], got {min_share}")
    if fill not in ("gaussian", "lowrank"):
        raise RevivalError(f"neuron: fill must be gaussian or lowrank, got {fill!r}")
    check_params(fill, fill_params)
    heavy = mask.float().mean(0, keepdim=True) >= min_share
    return DEFENSES.get(fill)(W, mask | heavy.expand_as(mask), scope, scale, generator, global_stats=global_stats,
                              **fill_params)


def _resample_residuals(R: Tensor, keep: Tensor, scope: str, generator: torch.Generator) -> Tensor:
    """A matrix of survivors' residuals drawn with replacement (from the same row, or the whole layer)."""
    sign = torch.randint(0, 2, R.shape, generator=generator, device=generator.device).float() * 2 - 1
    if scope == "row":
        idx = torch.multinomial(keep.float() + 1e-12 * (~keep.any(1, keepdim=True)), R.shape[1],
                                replacement=True, generator=generator)
        return R.gather(1, idx) * sign
    pool = R[keep]
    idx = torch.randint(0, pool.numel(), R.shape, generator=generator, device=generator.device)
    return pool[idx] * sign


@DEFENSES.register("lowrank")
def lowrank_fill(W: Tensor, mask: Tensor, scope: str, scale: float, generator: torch.Generator, *, gamma: float = 0.0,
                 rank_ratio: float = 0.1, global_stats: tuple[float, float] | None = None) -> Tensor:
    """Pruned positions <- gamma * L + scale * e: L a low-rank completion from the survivors, e a survivor's residual.

    L has rank round(rank_ratio * min(m, n)) (the `residual` locator's default); e is drawn with
    replacement from the survivors' residuals W - L of the same row (`row`) or matrix (`layer`),
    with a random sign, so the fill has the spread and tails of the matrix's own noise.
    gamma = 1 makes each hole a plausible draw of the matrix model (no locator sees it) but
    publishes the low-rank part, whose sign is the one the attack recovers: part of the concept
    comes back without any attack. gamma = 0 gives zero-mean noise of the residual scale (less
    visible to residual tests than Gaussian fill of the full weight scale); gamma < 0 plants the
    opposite of the attack's sign estimate, which a residual test sees in proportion to |gamma * L|.
    Threat model: locators that model the matrix; it fails like `gaussian` wherever |L| at a hole
    is large against the residual scale, and against the column-pooled `neuron` locator.
    """
    if scope not in ("row", "layer"):
        raise RevivalError(f"lowrank supports scope row or layer, got {scope!r}")
    X = W.float()
    rank = max(1, round(rank_ratio * min(X.shape)))
    L = lowrank_impute(X, mask, rank, iters=10)
    e = _resample_residuals(X - L, ~mask, scope, generator)
    return torch.where(mask, (gamma * L + scale * e).to(W.dtype), W)


def _layer_info(W: Tensor, new: Tensor, mask: Tensor) -> dict:
    changed = new != W
    fill = new[mask].float()
    keep = W[~mask].float()
    return {"shape": list(W.shape), "pruned": int(mask.sum()), "changed": int(changed.sum()),
            "decoys": int((changed & ~mask).sum()),
            "fill_mean": float(fill.mean()) if fill.numel() else None,
            "fill_std": float(fill.std()) if fill.numel() > 1 else None,
            "survivor_mean": float(keep.mean()) if keep.numel() else None,
            "survivor_std": float(keep.std()) if keep.numel() > 1 else None}


def obfuscate(state_dict: dict[str, Tensor], masks: dict[str, Tensor], method: str = "gaussian",
              scope: str = "row", scale: float = 1.0, seed: int = 0, progress: Callable[[str], None] | None = None,
              **params) -> tuple[dict[str, Tensor], dict]:
    """Apply defense `method` to every masked matrix; returns (new state dict, info with per-layer stats).

    `masks` are checked against `state_dict` (names, shapes, not all empty); unmasked tensors are
    passed through unchanged. Layers are processed in sorted name order from one generator seeded
    with `seed`; `progress(name)` is called after each.
    """
    if not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
        raise RevivalError(f"scale must be a finite number > 0, got {scale}")
    if scope not in SCOPES:
        raise RevivalError(f"unknown scope {scope!r}; known: {', '.join(SCOPES)}")
    fn = DEFENSES.get(method)
    check_params(method, params)
    masks = match_masks(state_dict, masks)
    device = state_dict[next(iter(masks))].device if masks else torch.device("cpu")
    g = torch.Generator(device=device).manual_seed(seed)  # the noise is drawn where the weights live
    stats = pooled_stats(state_dict, masks) if scope == "global" else None
    out = dict(state_dict)
    per_layer = {}
    for name in sorted(masks):
        W = state_dict[name]
        mask = masks[name].to(W.device)
        out[name] = fn(W, mask, scope, scale, g, global_stats=stats, **params)
        per_layer[name] = _layer_info(W, out[name], mask)
        if progress is not None:
            progress(name)
    info = {"method": method, "scope": scope, "scale": scale, "seed": seed, "params": params,
            "pruned": sum(v["pruned"] for v in per_layer.values()),
            "changed": sum(v["changed"] for v in per_layer.values()),
            "decoys": sum(v["decoys"] for v in per_layer.values()), "per_layer": per_layer}
    return out, info
