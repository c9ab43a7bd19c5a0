"""Defenses against adaptive locators, weight space only, on synthetic mini-model-shaped ff.net.2 layers.

Data: the 11 ff.net.2 shapes of the (removed) first-generation mini model (3 of 64x256, 8 of 128x512), weights from
`attack_speed.trained_like` (half the energy in a rank d/4 part with a decaying spectrum, half
in Student-t(4) noise, log-normal row and hidden-column scales: the recipe of the attack
benchmark). Masks from the real ConceptPrune code (`revival.unlearn.wanda`): per step t of 10,
the per-row top 2% of |W| * a_t kept where it beats the base prompt's |W| * b; a_t = b * c * e_t
with b (base activation norms), c (the concept's neuron profile, log-normal sigma 0.7) and e_t
(per-step noise, sigma 0.3), union over t.

`oracle` is the perfect adaptive locator (it knows every entry the defense wrote; an upper bound
on any locator); `strongest_locator_per_defense` picks, among the real locators, the one with
the highest restoration.

For each defense (none = the unlearned zeros; gaussian at scales 0.25, 0.5, 1, 2; decoy with two
decoys per hole and the lowrank fill; neuron = whole skilled neurons filled; lowrank with gamma 0
and 1) and each locator (zeros, global_bottom, row_outlier, residual, neuron at the
default 2% budget, and neuron at 5%), the attacker knows the defense and its settings (row_outlier
and neuron test for its fill law). Reported per row: the locator's precision, recall and AUROC
against the true masks, and what `revival.attack.revive` with that locator wrote at the truly
pruned positions: revived_correct / revived_wrong (share of pruned positions given a large value
with the original's sign / the opposite), sign_recovery_retained, collateral (unpruned weights
overwritten per pruned position) and restoration (<W, W_orig> / <W_orig, W_orig> over the pruned
positions) of the revived weights; defended_restoration is the same for the published weights.

Completion: softimpute with rank 32 and at most 30 steps (the default settings take ~4x longer
for the same sign recovery on these shapes).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/defense_synthetic.py
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attack_speed import trained_like  # noqa: E402  (the shared trained-like weight recipe)

from revival.checkpoints import atomic_write_json  # noqa: E402
from revival.defend.study import attack_trial, defend, informed_locator_params, oracle_trial  # noqa: E402
from revival.unlearn.wanda import union_over_steps, wanda_mask  # noqa: E402

SHAPES = [(64, 256)] * 3 + [(128, 512)] * 8
DEFENSES = [("none", 1.0, {})] + [("gaussian", s, {}) for s in (0.25, 0.5, 1.0, 2.0)] + [
    ("decoy", 1.0, {"decoys": 2.0, "fill": "lowrank"}),
    ("neuron", 1.0, {"min_share": 0.1}),
    ("lowrank", 1.0, {"gamma": 0.0}),
    ("lowrank", 1.0, {"gamma": 1.0}),
]
LOCATORS = [("zeros", None), ("global_bottom", 0.02), ("row_outlier", 0.02), ("residual", 0.02),
            ("neuron", 0.02), ("neuron", 0.05), ("oracle", None)]
REVIVE = {"method": "softimpute", "rank": 32, "max_iters": 30}


def synthetic_model(seed: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(original weights, ConceptPrune-like masks) keyed like the first-generation mini model's ff.net.2 weights."""
    g = torch.Generator().manual_seed(seed + 10_000)
    weights, masks = {}, {}
    for i, (m, n) in enumerate(SHAPES):
        name = f"blocks.{i}.transformer_blocks.0.ff.net.2.weight"
        W, _ = trained_like(m, n, seed=seed * 100 + i)
        base = torch.exp(0.5 * torch.randn(n, generator=g))
        concept = torch.exp(0.7 * torch.randn(n, generator=g))
        steps = [wanda_mask(W, base, base * concept * torch.exp(0.3 * torch.randn(n, generator=g)), 0.02)
                 for _ in range(10)]
        weights[name], masks[name] = W, union_over_steps(steps)
    return weights, masks


def _round(v):
    return round(v, 4) if isinstance(v, float) else v


def run(seed: int) -> dict:
    original, masks = synthetic_model(seed)
    unlearned = {n: w.masked_fill(masks[n], 0.0) for n, w in original.items()}
    pruned = sum(int(m.sum()) for m in masks.values())
    rows = []
    for defense, scale, dparams in DEFENSES:
        t0 = time.perf_counter()
        defended = defend(unlearned, masks, defense, scale=scale, seed=seed, **dparams)
        changed = sum(int((defended[n] != unlearned[n]).sum()) for n in masks) / pruned
        seconds_defend = round(time.perf_counter() - t0, 3)
        for locator, ratio in LOCATORS:
            if defense == "none" and locator in ("neuron", "oracle"):
                continue  # on zeros the zeros locator is exact: nothing left to find
            lp = {"ratio": ratio} if ratio is not None else {}
            lp.update(informed_locator_params(locator, defense, scale, dparams))
            if locator == "oracle":
                trial = oracle_trial(defended, unlearned, masks, original, seed=seed, **REVIVE)
            else:
                trial = attack_trial(defended, masks, original, locator=locator, locator_params=lp, seed=seed,
                                     **REVIVE)
            rows.append({"defense": defense, "scale": scale if defense != "none" else None, "params": dparams,
                         "changed": round(changed, 4), "locator": locator, "locator_params": lp,
                         **{k: _round(v) for k, v in trial.metrics.items() if k != "seconds"},
                         "seconds": {"defend": seconds_defend, **trial.metrics["seconds"]}})
            r = rows[-1]
            print(f"{defense:8s} {scale:<5} {str(dparams):36s} {locator:13s} {ratio or 0:.2f}  P={r['precision']} "
                  f"R={r['recall']} AUROC={r['auroc']}  correct={r['revived_correct']} wrong={r['revived_wrong']} "
                  f"collateral={r['collateral']} restoration={r['restoration']}", flush=True)
    best = {}
    for r in rows:
        if r["locator"] == "oracle":
            continue
        key = f"{r['defense']}:{r['scale']}:{sorted(r['params'].items())}"
        if key not in best or r["restoration"] > best[key]["restoration"]:
            best[key] = {k: r[k] for k in ("locator", "locator_params", "precision", "recall", "auroc",
                                           "revived_correct", "revived_wrong", "collateral", "restoration",
                                           "defended_restoration", "changed")}
    return {"masks": {"pruned": pruned, "density": round(pruned / sum(m.numel() for m in masks.values()), 5)},
            "rows": rows, "strongest_locator_per_defense": best}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/defense_synthetic.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    result = run(args.seed)
    result = {"command": "OMP_NUM_THREADS=1 .venv/bin/python " + " ".join(shlex.quote(a) for a in sys.argv),
              "settings": {"seed": args.seed, "shapes": SHAPES, "revive": REVIVE, "threads": 1,
                           "attacker": "knows the defense and its settings"},
              **result, "wall_s": round(time.perf_counter() - t0, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(result, args.out)
    print(f"wrote {args.out} ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
