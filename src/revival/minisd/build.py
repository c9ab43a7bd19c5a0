"""Train every component of the miniature Stable Diffusion in order, each stage resumable and skipped once done.

pool (renders) -> VAE -> frozen CLIP text encoder (contrastive) -> latents and text states ->
UNet (one variant) -> pipeline folder; the evaluator trains on its own factorial renders.
`revival train-mini` runs these stages; this module is also their developer entry (and writes
warm starts). Batches are drawn on the CPU, so a stage's result depends on the device only through its arithmetic.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from revival import validate
from revival.catalog import MINISD_COMPONENTS as COMPONENTS
from revival.minisd import data
from revival.minisd.autoencoder import VAETrainConfig, encode_pool, train_vae
from revival.minisd.evaluator import EvaluatorConfig, save_evaluator, train_evaluator
from revival.minisd.pipeline import assemble, tokenizer
from revival.minisd.text_encoder import MAX_LENGTH, TextTrainConfig, train_text_encoder
from revival.minisd.training import atomic_torch_save
from revival.minisd.unet import UNetTrainConfig, resolve_compile, train_unet
from revival.outputs import TRAINING, staged_folder

POOL_SIZE = 40000


def pool(workdir: Path, seed: int = 0) -> dict:
    """The shared training renders."""
    return data.cached_pool(workdir / "pool.npz", POOL_SIZE, seed)


def vae_stage(workdir: Path, log=print, device: str = "cpu", cfg: VAETrainConfig | None = None):
    """The trained VAE (trained now with `cfg`, default the shipped one's, unless already saved)."""
    folder = workdir / "vae-final"
    if folder.exists():
        log(f"vae: trained earlier, kept ({folder})")
    else:
        vae, record = train_vae(pool(workdir), cfg or VAETrainConfig(), workdir, log, device)
        with staged_folder(folder) as tmp:  # the record first: a folder in place is a finished stage
            (workdir / "vae-final.json").write_text(json.dumps(record, indent=2))
            vae.save_pretrained(tmp)
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(folder).eval()


def text_stage(workdir: Path, log=print, device: str = "cpu", cfg: TextTrainConfig | None = None):
    """The trained, frozen text encoder (trained now with `cfg`, default the shipped one's, unless already saved)."""
    folder = workdir / "text-final"
    if folder.exists():
        log(f"text: trained earlier, kept ({folder})")
    else:
        te, record = train_text_encoder(pool(workdir), tokenizer(), cfg or TextTrainConfig(), workdir, log, device)
        with staged_folder(folder) as tmp:  # the record first: a folder in place is a finished stage
            (workdir / "text-final.json").write_text(json.dumps(record, indent=2))
            te.save_pretrained(tmp)
    from transformers import CLIPTextModel

    return CLIPTextModel.from_pretrained(folder).eval().requires_grad_(False)


def latents_stage(workdir: Path, vae, te) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cached (latents, per-image text states, empty-prompt state), computed on the CPU: the same on every device."""
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
    atomic_torch_save(d, path)
    return d["latents"], d["context"], d["empty"]


def pipeline_folder(workdir: Path, cfg: UNetTrainConfig) -> Path:
    """Where a UNet variant's pipeline is exported unless asked otherwise."""
    return workdir / f"pipeline-{cfg.variant}-{cfg.steps}"


def unet_stage(workdir: Path, cfg: UNetTrainConfig, log=print, init: Path | None = None, device: str = "cpu",
               out: Path | None = None):
    """Train one UNet variant on the cached latents (the VAE and text encoder first, when missing) and export the
    whole pipeline with its training record to `out` (default `pipeline_folder`): written beside it, then renamed
    into place, so `out` is never half-written."""
    vae, te = vae_stage(workdir, log, device), text_stage(workdir, log, device)
    latents, context, empty = latents_stage(workdir, vae, te)
    unet, record = train_unet(latents, context, empty, cfg, workdir, log, init=init, device=device)
    pipe = assemble(vae, te, unet, cfg.variant)
    out = pipeline_folder(workdir, cfg) if out is None else out
    with staged_folder(out, overwrite=True, inputs=[workdir], markers=[TRAINING]) as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        (tmp / TRAINING).write_text(json.dumps(record, indent=2))
    log(f"wrote {out}")
    return pipe


def evaluator_stage(workdir: Path, log=print, device: str = "cpu") -> Path:
    """Train and save the 64x64 evaluator (unless already saved)."""
    path = workdir / "evaluator.safetensors"
    if path.exists():
        log(f"evaluator: trained earlier, kept ({path})")
    else:
        model, record = train_evaluator(EvaluatorConfig(), workdir, log, device)
        save_evaluator(model, record, path)
    return path


def train_components(component: str, workdir: Path, cfg: UNetTrainConfig, log=print, init: Path | None = None,
                     device: str = "cpu", out: Path | None = None) -> None:
    """Train one of `COMPONENTS`, or `all` of them in order, in `workdir` (each resumed, or skipped once done);
    the UNet's pipeline goes to `out` (see `unet_stage`)."""
    if component in ("all", "evaluator"):
        evaluator_stage(workdir, log, device)
    if component == "vae":
        vae_stage(workdir, log, device)
    if component == "text":
        text_stage(workdir, log, device)
    if component in ("all", "unet"):
        unet_stage(workdir, cfg, log, init=init, device=device, out=out)


def timed_log() -> Callable[[str], None]:
    """A log that prints each line with the seconds since it was made."""
    t0 = time.time()
    return lambda s: print(f"[{time.time() - t0:7.0f}s] {s}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("stage", choices=[*COMPONENTS, "all", "warmstart"],
                    help="warmstart: write the UNet checkpoint's EMA weights and step to --out (fp16, no optimizer)")
    ap.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "revival-minisd")
    ap.add_argument("--variant", default="base")
    ap.add_argument("--steps", type=int, default=UNetTrainConfig.steps)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--init", type=Path, default=None, help="unet: start from a warm start when no checkpoint exists")
    ap.add_argument("--out", type=Path, default=None,
                    help="warmstart: the safetensors file to write; unet, all: the pipeline folder "
                    "(default WORKDIR/pipeline-VARIANT-STEPS)")
    ap.add_argument("--autocast", choices=["auto", "bf16", "fp32"], default="auto",
                    help="UNet training precision; auto: bf16 where the hardware runs it natively")
    ap.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                    help="torch.compile the UNet's training step; auto: on with bf16 autocast (measured faster), "
                    "off in fp32 (measured slower)")
    ap.add_argument("--device", type=validate.device_name, default="cpu", help="torch device to train on")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    log = timed_log()
    if args.stage == "warmstart":
        from revival.minisd.training import export_warm_start
        from revival.minisd.unet import build_unet

        step = export_warm_start(args.workdir, f"unet-{args.variant}", {"unet": build_unet(args.variant)}, args.out)
        log(f"wrote {args.out} (step {step})")
    else:
        from revival.evaluate.generate import resolve_autocast

        device = validate.resolve_device(args.device)
        bf16 = resolve_autocast(args.autocast, device) is not None
        cfg = UNetTrainConfig(variant=args.variant, steps=args.steps, autocast=bf16,
                              compile=resolve_compile(args.compile, bf16))
        train_components(args.stage, args.workdir, cfg, log, init=args.init, device=device, out=args.out)
    log("done")


if __name__ == "__main__":
    main()
