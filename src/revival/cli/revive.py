"""`revival revive`: the data-free revival attack on an unlearned checkpoint."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from tqdm import tqdm

from revival.attack import COMPLETERS, DEFAULT_METHOD, LOCATORS, MAGNITUDES, revive
from revival.attack.adaptive_locate import locate_with_scores
from revival.checkpoints import LAYER_PRESETS, atomic_write_json, load_checkpoint, save_checkpoint, select_layers
from revival.cli._common import command_line, key_value
from revival.defend.masks import load_masks, match_masks
from revival.errors import RevivalError
from revival.evaluate.attack_metrics import score_attack
from revival.evaluate.locator_metrics import locator_report
from revival.models import resolve_model_path
from revival.results import base_result, prepare_out_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "revive", help="bring a pruned concept back from the weights alone (no data, no training)",
        description="Locate the pruned entries of the selected layers, fill them by matrix completion, keep the "
        "most confident signs and give them a large magnitude (Zhang et al., 'Roots Beneath the Cut'). Writes the "
        "revived checkpoint in the input's format and result.json into --out.")
    p.add_argument("--unet", required=True, help="unlearned checkpoint: UNet folder, pipeline folder or .safetensors")
    p.add_argument("--out", required=True, help="output folder (created; must be empty unless --overwrite)")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=COMPLETERS.names(),
                   help="matrix completion method (default %(default)s)")
    p.add_argument("--top-ratio", type=float, default=0.6,
                   help="share of completed signs kept per matrix, by |value| (default %(default)s)")
    p.add_argument("--magnitude", default="nms", choices=MAGNITUDES.names(),
                   help=f"magnitude rule (default %(default)s; "
                   f"{', '.join(MAGNITUDES.names_where(needs_reference=True))} need --reference)")
    p.add_argument("--layers", default="ffn2",
                   help=f"preset ({', '.join(LAYER_PRESETS)}) or glob over parameter names (default %(default)s)")
    p.add_argument("--locate", default="zeros", choices=LOCATORS.names(),
                   help="how missing entries are found (default %(default)s)")
    p.add_argument("--locate-param", action="append", type=key_value, default=[], metavar="KEY=VALUE",
                   help="locator parameter, repeatable (e.g. ratio=0.02, scale=1.0)")
    p.add_argument("--masks", default=None,
                   help="true pruning masks (masks.safetensors), for evaluation only: adds the locator's precision, "
                   "recall and AUROC to result.json, and with --reference scores sign recovery and restoration "
                   "over the truly pruned positions; the attack itself never reads them")
    p.add_argument("--seed", type=int, default=0, help="seed of the magnitude sampling (default %(default)s)")
    p.add_argument("--device", default=None, help="torch device for the completion (default: cuda if available)")
    p.add_argument("--reference", default=None,
                   help="original weights, only to measure sign recovery (and for oracle ablations): `mini` for "
                   "the bundled model's UNet, or a checkpoint path")
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow .pt/.ckpt checkpoints (read with torch.load(weights_only=True))")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.set_defaults(func=run)


def _reference_path(ref: str) -> Path:
    return resolve_model_path("mini") / "unet" if ref == "mini" else Path(ref)


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise RevivalError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RevivalError(f"{out}: folder exists and is not empty (pass --overwrite to replace it)")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _check_out(out, args.overwrite)
    ckpt = load_checkpoint(args.unet, allow_pickle=args.allow_pickle)
    ref_path = _reference_path(args.reference) if args.reference else None
    reference = load_checkpoint(ref_path, allow_pickle=args.allow_pickle).state_dict if ref_path else None
    locate_params = dict(args.locate_param)
    masks = match_masks(ckpt.state_dict, load_masks(args.masks), source=args.masks) if args.masks else None
    bar: list[tqdm] = []  # created once the input is validated, so errors stay one line

    def progress(done: int, total: int) -> None:
        if not bar:
            bar.append(tqdm(total=total, desc="revive", unit="layer"))
        bar[0].n = done
        bar[0].refresh()

    try:
        res = revive(ckpt.state_dict, layers=args.layers, locator=args.locate, method=args.method,
                     top_ratio=args.top_ratio, magnitude=args.magnitude, seed=args.seed, reference=reference,
                     device=args.device, locator_params=locate_params, progress=progress)
    finally:
        for b in bar:
            b.close()
    for line in res.notes + res.warnings:
        tqdm.write(f"note: {line}", file=sys.stderr)
    tmp = out.with_name(out.name + ".partial")
    prepare_out_dir(tmp, overwrite=True)
    written = save_checkpoint(res.state_dict, ckpt, tmp)
    final = out / written.relative_to(tmp)
    result = base_result(command_line(), res.config, {"unet": args.unet, "reference": ref_path})
    result["outputs"] = {"checkpoint": str(final)}
    result["per_layer"] = res.per_layer
    result["timings_s"] = res.timings
    result["warnings"] = res.warnings
    result["notes"] = res.notes
    if reference is not None:  # oracle figures: against the true masks when given, else the located positions
        scores = score_attack(res.state_dict, res.located, res.completed, reference, masks)
        result["sign_recovery"] = scores["sign_recovery"]
        result["attack_scores"] = {k: v for k, v in scores.items() if k != "sign_recovery"}
    if masks is not None:
        weights = {n: ckpt.state_dict[n].float() for n in select_layers(ckpt.state_dict, args.layers).names}
        located, scores = locate_with_scores(args.locate, weights, **locate_params)
        result["locator"] = locator_report(weights, located, scores, masks)
    atomic_write_json(result, tmp / "result.json")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    missing = sum(v["missing"] for v in res.per_layer.values())
    kept = sum(v["retained"] for v in res.per_layer.values())
    line = (f"revived {len(res.per_layer)} layers ({missing} missing entries, {kept} retained) "
            f"in {res.timings['total']:.1f}s -> {final}")
    if reference is not None:
        sr = result["sign_recovery"]
        kept_sr = "n/a" if sr["retained"] is None else f"{sr['retained']:.3f}"
        line += f"; sign recovery {sr['overall']:.3f} overall, {kept_sr} retained"
    print(line)
    return 0
