"""`revival revive`: the data-free revival attack on an unlearned checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from revival import catalog, validate
from revival.cli._common import add_device_arg, command_line, key_value
from revival.errors import RevivalError
from revival.modelfiles import resolve_model_path
from revival.outputs import staged_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "revive", help="bring a pruned concept back from the weights alone (no data, no training)",
        description="Locate the pruned entries of the selected layers, fill them by matrix completion, keep the "
        "most confident signs and give them a large magnitude (Zhang et al., 'Roots Beneath the Cut'). Writes the "
        "revived checkpoint in the input's format and result.json into --out.")
    p.add_argument("--unet", required=True, help="unlearned checkpoint: UNet folder, pipeline folder or .safetensors")
    p.add_argument("--out", required=True, help="output folder (created; must be empty unless --overwrite)")
    p.add_argument("--method", default=catalog.DEFAULT_METHOD, choices=catalog.COMPLETION_METHODS,
                   help="matrix completion method (default %(default)s)")
    p.add_argument("--method-param", action="append", type=key_value, default=[], metavar="KEY=VALUE",
                   help="completion parameter, repeatable, checked against the method's (e.g. lam=0.5, rank=64, "
                   "mnar=false, dtype=float64)")
    p.add_argument("--top-ratio", type=validate.number(0, 1, lo_open=True, name="top_ratio"), default=0.6,
                   help="share of completed signs kept per matrix, by |value|, in (0, 1] (default %(default)s)")
    p.add_argument("--magnitude", default="nms", choices=catalog.MAGNITUDE_RULES,
                   help=f"magnitude rule (default %(default)s; {', '.join(sorted(catalog.NEEDS_REFERENCE))} need "
                   "--reference)")
    p.add_argument("--layers", default="ffn2",
                   help=f"preset ({', '.join(catalog.LAYER_PRESETS)}) or glob over parameter names "
                   "(default %(default)s)")
    p.add_argument("--locate", default="zeros", choices=catalog.LOCATOR_NAMES,
                   help="how missing entries are found (default %(default)s)")
    p.add_argument("--locate-param", action="append", type=key_value, default=[], metavar="KEY=VALUE",
                   help="locator parameter, repeatable (e.g. ratio=0.02, scale=1.0)")
    p.add_argument("--masks", default=None,
                   help="true pruning masks (masks.safetensors), for evaluation only: adds the locator's precision, "
                   "recall and AUROC to result.json, and with --reference scores sign recovery and restoration "
                   "over the truly pruned positions; the attack itself never reads them")
    p.add_argument("--seed", type=validate.seed, default=0, help="seed of the magnitude sampling (default %(default)s)")
    add_device_arg(p, "torch device of the attack (weights, completion, noise): cpu, cuda, cuda:N, mps "
                   "(default: cuda when available, else cpu)")
    p.add_argument("--reference", default=None,
                   help="original weights, only to measure sign recovery (and for oracle ablations): `mini` for "
                   "the bundled model's UNet, or a checkpoint path")
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow .pt/.ckpt checkpoints (read with torch.load(weights_only=True))")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder of ours")
    p.set_defaults(func=run)


def _reference_path(ref: str) -> Path:
    return resolve_model_path("mini") / "unet" if ref == "mini" else Path(ref)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.magnitude in catalog.NEEDS_REFERENCE and args.reference is None:
        raise RevivalError(f"--magnitude {args.magnitude} is an ablation that needs the original weights: "
                           "give --reference")
    ref_path = _reference_path(args.reference) if args.reference else None
    with staged_folder(out, overwrite=args.overwrite, inputs=[args.unet, ref_path, args.masks]) as tmp:
        summary = _revive(args, out, tmp, ref_path)
    print(summary)
    return 0


def _revive(args: argparse.Namespace, out: Path, tmp: Path, ref_path: Path | None) -> str:
    """Run the attack and write its outputs into `tmp`; the summary line."""
    from tqdm import tqdm

    from revival.attack import COMPLETERS, LOCATORS, revive
    from revival.attack.adaptive_locate import locate_with_scores
    from revival.attack.complete import COMPLETION_RESERVED
    from revival.checkpoints import check_weights, load_checkpoint, save_checkpoint, select_layers
    from revival.defend.masks import load_masks, match_masks
    from revival.evaluate.attack_metrics import score_attack
    from revival.evaluate.locator_metrics import locator_report
    from revival.results import base_result, write_result

    device = validate.resolve_device(args.device)
    locate_params = dict(args.locate_param)
    validate.check_kwargs(LOCATORS.get(args.locate), locate_params, f"--locate-param: locator {args.locate!r}")
    method_params = dict(args.method_param)
    validate.check_kwargs(COMPLETERS.get(args.method), method_params, f"--method-param: method {args.method!r}",
                          skip=COMPLETION_RESERVED)
    for key, allowed in COMPLETERS.meta(args.method).get("choices", {}).items():  # text values, before any work
        if isinstance(method_params.get(key), str) and method_params[key] not in allowed:
            raise RevivalError(f"--method-param: {key} of method {args.method!r} takes {' or '.join(allowed)} as "
                               f"text, got {validate.shorten(method_params[key])!r}")
    for key, check in COMPLETERS.meta(args.method).get("checks", {}).items():
        if key in method_params:
            try:
                check(method_params[key])
            except RevivalError as e:
                raise RevivalError(f"--method-param: {e}") from None
    ckpt = load_checkpoint(args.unet, allow_pickle=args.allow_pickle)
    try:
        layers = select_layers(ckpt.state_dict, args.layers).names
    except RevivalError as e:
        raise RevivalError(f"{args.unet}: {e}") from None
    check_weights(ckpt, layers)
    reference = None
    if ref_path:
        ref = load_checkpoint(ref_path, allow_pickle=args.allow_pickle)
        check_weights(ref, [n for n in layers if n in ref.state_dict])
        reference = ref.state_dict
    ckpt.state_dict = {k: v.to(device) for k, v in ckpt.state_dict.items()}  # the whole attack runs on `device`
    if reference is not None:
        reference = {k: v.to(device) for k, v in reference.items()}
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
                     device=device, locator_params=locate_params, progress=progress, **method_params)
    except RevivalError as e:
        raise RevivalError(f"{args.unet}: {e}") from None
    finally:
        for b in bar:
            b.close()
    for line in res.notes + res.warnings:
        tqdm.write(f"note: {line}", file=sys.stderr)
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
        weights = {n: ckpt.state_dict[n].float() for n in layers}
        located, scores = locate_with_scores(args.locate, weights, **locate_params)
        result["locator"] = locator_report(weights, located, scores, masks)
    write_result(result, tmp / "result.json")
    missing = sum(v["missing"] for v in res.per_layer.values())
    kept = sum(v["retained"] for v in res.per_layer.values())
    line = (f"revived {len(res.per_layer)} layers ({missing} missing entries, {kept} retained) "
            f"in {res.timings['total']:.1f}s -> {final}")
    if reference is not None:
        sr = result["sign_recovery"]
        kept_sr = "n/a" if sr["retained"] is None else f"{sr['retained']:.3f}"
        line += f"; sign recovery {sr['overall']:.3f} overall, {kept_sr} retained"
    return line
