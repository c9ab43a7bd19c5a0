"""What an attack achieved, measured against the truth (ORACLE: reads the true masks and original weights).

Every figure is over the truly pruned positions when `masks` are given (else over the located
ones, which is the same set for the plain attack on zeros):

- `sign_recovery.overall`: share of pruned positions whose completed sign equals the original's
  (a position the locator missed has no completion and counts as not recovered);
- `sign_recovery.retained`: among the pruned positions the attack wrote a value to, the share
  whose written sign equals the original's: the signs the magnitude rule actually writes (1.0
  for `oracle_sign`, about 0.5 for `random_sign`);
- `restoration`: <revived, original> / <original, original> over the pruned positions (1 = put
  back, 0 = still erased, < 0 = pushed the wrong way);
- `coverage`: share of pruned positions the attack wrote to; `collateral`: unpruned entries it
  overwrote, per pruned position; and the located set's precision and recall.
"""

from __future__ import annotations

import torch
from torch import Tensor

from revival.evaluate.locator_metrics import precision_recall

ORACLE_NOTE = "oracle: measured against the true pruning masks and the original weights"


def restoration(weights: dict[str, Tensor], reference: dict[str, Tensor], masks: dict[str, Tensor]) -> float:
    """<W, W_orig> / <W_orig, W_orig> over the pruned positions: 1 = put back, 0 = erased, < 0 = opposite."""
    num = sum(float((weights[n].float().cpu()[m.cpu()] * reference[n].float().cpu()[m.cpu()]).sum())
              for n, m in masks.items())
    den = sum(float((reference[n].float().cpu()[m.cpu()] ** 2).sum()) for n, m in masks.items())
    return num / den if den else 0.0


def _share(k: int, n: int) -> float | None:
    return k / n if n else None


def score_attack(revived: dict[str, Tensor], located: dict[str, Tensor], completed: dict[str, Tensor],
                 reference: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> dict:
    """Sign recovery, restoration, coverage and locator precision/recall of one attack (see the module doc)."""
    truth = masks if masks is not None else located
    names = [n for n in located if n in truth]
    per_layer, tot = {}, dict.fromkeys(("pruned", "match", "written", "written_match", "collateral", "hit", "loc"), 0)
    for n in names:
        m, loc = truth[n].bool().cpu(), located[n].bool().cpu()  # every figure on the CPU, whatever the device
        ref_sign = reference[n].float().cpu().sign()
        rev = revived[n].float().cpu()
        done = completed.get(n)  # a layer the attack found nothing in has no completion
        match = 0 if done is None else int((m & loc & (done.float().cpu().sign() == ref_sign)).sum())
        written = loc & (rev != 0)
        w_true = written & m
        w_match = int((w_true & (rev.sign() == ref_sign)).sum())
        row = {"pruned": int(m.sum()), "match": match, "written": int(w_true.sum()), "written_match": w_match,
               "collateral": int((written & ~m).sum()), "hit": int((loc & m).sum()), "loc": int(loc.sum())}
        for k, v in row.items():
            tot[k] += v
        per_layer[n] = {"overall": _share(match, row["pruned"]), "retained": _share(w_match, row["written"])}
    precision, recall = precision_recall(*[torch.cat([x[n].reshape(-1).bool().cpu() for n in names])
                                           for x in (located, truth)])
    return {
        "sign_recovery": {"overall": _share(tot["match"], tot["pruned"]),
                          "retained": _share(tot["written_match"], tot["written"]),
                          "per_layer": per_layer,
                          "n_pruned": tot["pruned"], "n_retained": tot["written"]},
        "restoration": restoration(revived, reference, {n: truth[n].bool() for n in names}),
        "coverage": _share(tot["written"], tot["pruned"]),
        "collateral": _share(tot["collateral"], tot["pruned"]),
        "precision": precision, "recall": recall,
        "positions": "true pruning masks" if masks is not None else "located positions (no masks given)",
        "note": ORACLE_NOTE,
    }
