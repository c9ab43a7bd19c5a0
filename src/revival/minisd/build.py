"""Train every component of the miniature Stable Diffusion in order, each stage resumable and skipped once done.

pool (renders) -> VAE -> frozen CLIP text encoder (contrastive) -> latents and text states ->
UNet (one variant) -> pipeline folder; the evaluator trains on its own factorial renders.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from revival.minisd import data
from revival.minisd.autoencoder import VAETrainConfig, encode_pool, train_vae
from revival.minisd.pipeline import assemble, tokenizer
from revival.minisd.text_encoder import MAX_LENGTH, TextTrainConfig, train_text_encoder
from revival.minisd.unet import UNetTrainConfig, train_unet

POOL_SIZE = 40000


def _done(workdir: Path, name: str) -> bool:
    return (workdir / f"{name}.json").exists()


def pool(workdir: Path, seed: int = 0) -> dict:
    """The shared training renders."""
    return data.cached_pool(workdir / "pool.npz", POOL_SIZE, seed)


def vae_stage(workdir: Path, log=print):
    """The trained VAE (trained now unless already saved)."""
    folder = workdir / "vae-final"
    if not folder.exists():
        vae, record = train_vae(pool(workdir), VAETrainConfig(), workdir, log)
        vae.save_pretrained(folder)
        (workdir / "vae-final.json").write_text(json.dumps(record, indent=2))
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(folder).eval()


def text_stage(workdir: Path, log=print):
    """The trained, frozen text encoder."""
    folder = workdir / "text-final"
    if not folder.exists():
        te, record = train_text_encoder(pool(workdir), tokenizer(), TextTrainConfig(), workdir, log)
        te.save_pretrained(folder)
        (workdir / "text-final.json").write_text(json.dumps(record, indent=2))
    from transformers import CLIPTextModel

    return CLIPTextModel.from_pretrained(folder).eval().requires_grad_(False)


def latents_stage(workdir: Path, vae, te) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cached (latents, per-image text states, empty-prompt state)."""
    path = workdir / "latents.pt"
    if path.exists():
        d = torch.load(path, weights_only=True)
        return d["latents"], d["context"], d["empty"]
    p = pool(workdir)
    latents = encode_pool(vae, p["images"])
    tok = tokenizer()
    distinct = sorted(set(p["captions"])) + [""]
    with torch.no_grad():
        ids = tok(distinct, padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt").input_ids
        states = te(ids)[0]
    index = {c: i for i, c in enumerate(distinct)}
    context = states[torch.tensor([index[c] for c in p["captions"]])]
    d = {"latents": latents, "context": context, "empty": states[-1]}
    torch.save(d, path)
    return d["latents"], d["context"], d["empty"]


def unet_stage(workdir: Path, cfg: UNetTrainConfig, log=print, init: Path | None = None):
    """Train one UNet variant on the cached latents and export the whole pipeline."""
    vae, te = vae_stage(workdir, log), text_stage(workdir, log)
    latents, context, empty = latents_stage(workdir, vae, te)
    unet, record = train_unet(latents, context, empty, cfg, workdir, log, init=init)
    pipe = assemble(vae, te, unet)
    out = workdir / f"pipeline-{cfg.variant}-{cfg.steps}"
    pipe.save_pretrained(out, safe_serialization=True)
    (out / "training.json").write_text(json.dumps(record, indent=2))
    return pipe


def evaluator_stage(workdir: Path, log=print):
    """Train and save the 64x64 evaluator."""
    from revival.minisd.evaluator import EvaluatorConfig, save_evaluator, train_evaluator

    path = workdir / "evaluator.safetensors"
    if not path.exists():
        model, record = train_evaluator(EvaluatorConfig(), workdir, log)
        save_evaluator(model, record, path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("stage", choices=["evaluator", "vae", "text", "unet", "warmstart"],
                    help="warmstart: write the UNet checkpoint's EMA weights and step to --out (fp16, no optimizer)")
    ap.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "revival-minisd")
    ap.add_argument("--variant", default="base")
    ap.add_argument("--steps", type=int, default=UNetTrainConfig.steps)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--init", type=Path, default=None, help="unet: start from a warm start when no checkpoint exists")
    ap.add_argument("--out", type=Path, default=None, help="warmstart: the safetensors file to write")
    ap.add_argument("--autocast", choices=["auto", "bf16", "fp32"], default="auto",
                    help="UNet training precision; auto: bf16 where the hardware runs it natively")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    log = lambda s: print(f"[{time.time() - t0:7.0f}s] {s}", flush=True)  # noqa: E731
    if args.stage == "evaluator":
        evaluator_stage(args.workdir, log)
    elif args.stage == "vae":
        vae_stage(args.workdir, log)
    elif args.stage == "text":
        text_stage(args.workdir, log)
    elif args.stage == "warmstart":
        from revival.minisd.training import export_warm_start
        from revival.minisd.unet import build_unet

        step = export_warm_start(args.workdir, f"unet-{args.variant}", {"unet": build_unet(args.variant)}, args.out)
        log(f"wrote {args.out} (step {step})")
    else:
        from revival.evaluate.generate import resolve_autocast

        bf16 = resolve_autocast(args.autocast) is not None
        unet_stage(args.workdir, UNetTrainConfig(variant=args.variant, steps=args.steps, autocast=bf16), log,
                   init=args.init)
    log("done")


if __name__ == "__main__":
    main()

