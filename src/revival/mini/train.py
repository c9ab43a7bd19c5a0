"""Seeded, resumable DDPM training of the mini model on the procedural world."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from revival.jsonfiles import dumps_strict
from revival.mini import world
from revival.mini.model import build_pipeline
from revival.mini.pipeline import MiniPipeline
from revival.outputs import apply_umask, finish_file, publish, remove, unique_sibling


@dataclass
class TrainConfig:
    """Every hyper-parameter of a training run (all go into the run's JSON)."""

    steps: int = 2085  # what the shipped weights were trained for (see README)
    batch_size: int = 32
    lr: float = 8e-4
    warmup: int = 200
    ema_decay: float = 0.998
    cond_dropout: float = 0.1
    seed: int = 0
    checkpoint_every_s: float = 180.0


def _atomic_save(obj, path: Path) -> None:
    tmp = unique_sibling(path, "tmp")
    try:
        torch.save(obj, tmp)
        finish_file(tmp, path)
    finally:
        remove(tmp)


def export_pipeline(pipe: MiniPipeline, out: Path, fp16: bool = True, info: dict | None = None) -> None:
    """Write the pipeline with `save_pretrained` (fp16 safetensors, and `info` as training.json), atomically.

    The export is written under a unique temporary name and replaces `out` only once complete.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = unique_sibling(out, "tmp")
    try:
        p = copy.deepcopy(pipe)
        if fp16:
            p.unet.half()
            p.text_encoder.half()
        p.save_pretrained(tmp, safe_serialization=True)
        if info is not None:
            (tmp / "training.json").write_text(dumps_strict(info, out / "training.json"))
        apply_umask(tmp)
        publish(tmp, out)
    finally:
        remove(tmp)


def train(
    cfg: TrainConfig,
    workdir: Path,
    export_to: Path | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> MiniPipeline:
    """Train (or resume) in `workdir`; returns the EMA pipeline and exports it when asked."""
    workdir.mkdir(parents=True, exist_ok=True)
    pipe = build_pipeline(cfg.seed)
    unet, te, sched = pipe.unet, pipe.text_encoder, pipe.scheduler
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    ema = [p.detach().clone() for p in params]
    step, elapsed, losses = 0, 0.0, []
    ckpt = workdir / "train_state.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        unet.load_state_dict(state["unet"])
        te.load_state_dict(state["text_encoder"])
        opt.load_state_dict(state["opt"])
        ema = state["ema"]
        step, elapsed, losses = state["step"], state["elapsed"], state["losses"]
        log(f"resumed at step {step}")
    unet.train()
    te.train()
    empty = pipe.tokenize([""])
    last_ckpt = time.time()
    t0 = time.time() - elapsed

    def save_state() -> None:
        _atomic_save(
            dict(unet=unet.state_dict(), text_encoder=te.state_dict(), opt=opt.state_dict(), ema=ema,
                 step=step, elapsed=time.time() - t0, losses=losses, config=asdict(cfg)),
            ckpt,
        )

    while step < cfg.steps:
        images, captions, _ = world.sample_batch(cfg.batch_size, (cfg.seed, step))
        x0 = torch.from_numpy(images).permute(0, 3, 1, 2) * 2 - 1
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        ids = pipe.tokenize(captions)
        drop = torch.rand(len(captions), generator=g) < cfg.cond_dropout
        ids[drop] = empty
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, sched.config.num_train_timesteps, (len(x0),), generator=g)
        xt = sched.add_noise(x0, noise, t)
        pred = unet(xt, t, encoder_hidden_states=te(ids)[0]).sample
        loss = F.mse_loss(pred, noise)
        for grp in opt.param_groups:
            grp["lr"] = cfg.lr * min(1.0, (step + 1) / cfg.warmup)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))  # EMA warm-up: forget the random init early
        with torch.no_grad():
            for e, p in zip(ema, params, strict=True):
                e.lerp_(p.detach(), 1 - decay)
        step += 1
        losses.append(loss.item())
        if step % 100 == 0:
            recent = sum(losses[-100:]) / 100
            log(f"step {step}/{cfg.steps} loss {recent:.4f} {time.time() - t0:.0f}s")
        if time.time() - last_ckpt > cfg.checkpoint_every_s or step == cfg.steps:
            save_state()
            last_ckpt = time.time()
            if export_to is not None:
                _export_ema(pipe, params, ema, export_to, cfg, step, time.time() - t0, losses)
    if export_to is not None:
        _export_ema(pipe, params, ema, export_to, cfg, step, time.time() - t0, losses)
    with torch.no_grad():
        for e, p in zip(ema, params, strict=True):
            p.copy_(e)
    pipe.unet.eval()
    pipe.text_encoder.eval()
    return pipe


def _export_ema(pipe, params, ema, out: Path, cfg: TrainConfig, step: int, seconds: float, losses) -> None:
    with torch.no_grad():
        live = [p.detach().clone() for p in params]
        for e, p in zip(ema, params, strict=True):
            p.copy_(e)
        info = dict(config=asdict(cfg), steps_done=step, wall_s=round(seconds, 1),
                    final_loss=sum(losses[-200:]) / max(1, len(losses[-200:])), torch_threads=torch.get_num_threads())
        export_pipeline(pipe, out, info=info)
        for v, p in zip(live, params, strict=True):
            p.copy_(v)
