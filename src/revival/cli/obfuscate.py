"""`revival obfuscate`: hide the pruned positions of an unlearned checkpoint before publishing it."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from revival import catalog, validate
from revival.cli._common import add_device_arg, command_line, key_value
from revival.outputs import staged_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "obfuscate", help="fill the pruned positions of an unlearned checkpoint so an attacker cannot see them",
        description="Publisher-side defense: fill the positions ConceptPrune zeroed (given by --masks, which "
        "`revival prune` writes) with noise, so the revival attack cannot locate them by their zeros. "
        "gaussian = the paper's N(mu, (scale*sigma)^2) of the surviving weights of the row, layer or all "
        "layers; lowrank = a fill drawn from the matrix's own low-rank model (--param gamma=0); decoy = the "
        "fill also on extra weights laid out like the mask (--param decoys=2 --param fill=lowrank); neuron = "
        "the fill on whole heavily pruned neurons (--param min_share=0.1). Writes the defended checkpoint in "
        "the input's format and result.json into --out.")
    p.add_argument("--unet", required=True, help="unlearned checkpoint (UNet folder, pipeline folder or .safetensors)")
    p.add_argument("--masks", required=True, help="masks.safetensors: bool per pruned parameter, True = pruned")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--method", default="gaussian", choices=catalog.DEFENSE_NAMES, help="defense (default %(default)s)")
    p.add_argument("--scope", default="row", choices=catalog.SCOPES,
                   help="surviving weights the fill statistics come from (default %(default)s)")
    p.add_argument("--scale", type=validate.number(0, lo_open=True), default=1.0,
                   help="multiplies the fill's spread, > 0 (default %(default)s)")
    p.add_argument("--seed", type=validate.seed, default=0)
    p.add_argument("--param", action="append", type=key_value, default=[], metavar="KEY=VALUE",
                   help="extra defense parameter, repeatable (e.g. decoys=2, gamma=0.5)")
    add_device_arg(p, "torch device the weights, masks and noise live on: cpu, cuda, cuda:N, mps (default: cuda "
                   "when available, else cpu)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow a .pt/.ckpt checkpoint (read with torch.load(weights_only=True))")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder of ours")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    with staged_folder(out, overwrite=args.overwrite, inputs=[args.unet, args.masks]) as tmp:
        summary = _obfuscate(args, out, tmp)
    print(summary)
    return 0


def _obfuscate(args: argparse.Namespace, out: Path, tmp: Path) -> str:
    """Defend the checkpoint and write it with result.json into `tmp`; the summary line."""
    from tqdm import tqdm

    from revival.checkpoints import check_weights, load_checkpoint, save_checkpoint
    from revival.defend import load_masks, match_masks, obfuscate
    from revival.defend.obfuscate import check_params
    from revival.results import base_result, write_result

    params = dict(args.param)
    check_params(args.method, params, f"--param: defense {args.method!r}")
    device = validate.resolve_device(args.device)
    t0 = time.time()
    ckpt = load_checkpoint(args.unet, allow_pickle=args.allow_pickle)
    ckpt.state_dict = {k: v.to(device) for k, v in ckpt.state_dict.items()}
    masks = match_masks(ckpt.state_dict, load_masks(args.masks), source=args.masks)
    check_weights(ckpt, list(masks))
    t1 = time.time()
    with tqdm(total=len(masks), desc=f"obfuscate ({args.method})", unit="layer", delay=1.0) as bar:
        defended, info = obfuscate(ckpt.state_dict, masks, method=args.method, scope=args.scope, scale=args.scale,
                                   seed=args.seed, progress=lambda _: bar.update(), **params)
    t2 = time.time()
    written = out / save_checkpoint(defended, ckpt, tmp).relative_to(tmp)
    t3 = time.time()
    config = {"method": args.method, "scope": args.scope, "scale": args.scale, "seed": args.seed, "params": params,
              "device": device}
    result = base_result(command_line(), config, {"unet": args.unet, "masks": args.masks})
    result["outputs"] = {"checkpoint": str(written)}
    result["pruned"], result["changed"], result["decoys"] = info["pruned"], info["changed"], info["decoys"]
    result["per_layer"] = info["per_layer"]
    result["timings_s"] = {"load": round(t1 - t0, 3), "obfuscate": round(t2 - t1, 3), "save": round(t3 - t2, 3)}
    write_result(result, tmp / "result.json")
    return (f"wrote {written} ({info['pruned']} pruned positions filled by {args.method}, "
            f"{info['changed']} weights changed, {t2 - t1:.1f}s)")
