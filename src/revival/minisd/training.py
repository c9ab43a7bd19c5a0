"""A resumable, seeded training loop shared by every component of the miniature Stable Diffusion."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from revival.checkpoints import sha256_file
from revival.errors import RevivalError

CHECKPOINT_EVERY_S = 180.0  # seconds between checkpoints (and one at the end)


def atomic_torch_save(obj, path: Path) -> None:
    """torch.save to a unique temporary sibling, then rename into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_loop(
    name: str,
    workdir: Path,
    modules: dict[str, nn.Module],
    loss_fn: Callable[[int], torch.Tensor],
    steps: int,
    lr: float,
    warmup: int = 100,
    ema_decay: float | None = None,
    weight_decay: float = 0.0,
    checkpoint_every_s: float | None = None,
    config: dict | None = None,
    log: Callable[[str], None] = print,
    autocast: bool = False,
    compiled: bool = False,
    init: Path | None = None,
    device: str = "cpu",
) -> dict:
    """Train `modules` on `loss_fn(step)` with AdamW and cosine decay; resumable from `workdir/name.pt`.

    The batch of step s is a function of s alone, so a resumed run sees the batches an
    uninterrupted run would. With `ema_decay`, the EMA weights replace the live ones at the end.
    `init`: a warm start written by `export_warm_start` (EMA weights and their step), used when there is
    no checkpoint; the optimizer starts afresh with a new warm-up (a resumed checkpoint keeps its own).
    `device`: where the modules train (`loss_fn` moves its batches there; autocast runs on its type); the checkpoint
    loads onto it from any device, and the modules come back on the CPU.
    `compiled`: whether `loss_fn` runs a torch.compile'd forward of `modules` (its caller's choice), for the record;
    the checkpoint holds `modules`' own state either way.
    Returns the run's record (steps, seconds, losses by hundred steps, the devices), also written as JSON.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    ckpt = workdir / f"{name}.pt"
    for m in modules.values():
        m.to(device)
    params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    ema = [p.detach().clone() for p in params] if ema_decay else None
    every = CHECKPOINT_EVERY_S if checkpoint_every_s is None else checkpoint_every_s
    step, start, elapsed, losses, devices, warm = 0, 0, 0.0, [], [], None
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True, map_location="cpu")
        if state["step"] > steps:
            raise RevivalError(f"{ckpt}: already trained {state['step']} steps, more than the {steps} asked; ask for "
                               f"at least {state['step']} or use another workdir")
        for k, m in modules.items():
            m.load_state_dict(state["modules"][k])
        opt.load_state_dict(state["opt"])
        ema = None if state["ema"] is None else [e.to(device) for e in state["ema"]]
        step, elapsed, losses = state["step"], state["elapsed"], state["losses"]
        start = state.get("start", step)  # where the warm-up began; older checkpoints warmed up again on resume
        devices = state.get("devices", ["cpu"])  # checkpoints from before the device option were all trained on CPUs
        warm = state.get("warm_start")
        log(f"{name}: resumed at step {step}")
    elif init is not None:
        step = start = _load_warm_start(init, modules)
        warm = {"path": str(init), "step": step, "sha256": sha256_file(init)}
        ema = [p.detach().clone() for p in params] if ema_decay else None
        log(f"{name}: warm start from {init} at step {step}")
    devices = devices if device in devices else [*devices, device]
    device_type = torch.device(device).type
    for m in modules.values():
        m.train()
    t0 = time.time() - elapsed
    last = time.time()

    def save() -> None:
        atomic_torch_save(dict(modules={k: m.state_dict() for k, m in modules.items()}, opt=opt.state_dict(),
                               ema=ema, step=step, start=start, elapsed=time.time() - t0, losses=losses,
                               devices=devices, warm_start=warm), ckpt)

    while step < steps:
        frac = step / max(1, steps)
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step - start + 1) / warmup) * (0.55 + 0.45 * math.cos(frac * math.pi))
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if ema is not None:
            decay = min(ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for e, p in zip(ema, params, strict=True):
                    e.lerp_(p.detach(), 1 - decay)
        step += 1
        losses.append(loss.item())
        if step % 100 == 0:
            log(f"{name}: step {step}/{steps} loss {sum(losses[-100:]) / 100:.4f} {time.time() - t0:.0f}s")
        if time.time() - last > every:
            save()
            last = time.time()
    save()
    if ema is not None:
        with torch.no_grad():
            for e, p in zip(ema, params, strict=True):
                p.copy_(e)
    for m in modules.values():
        m.eval().to("cpu")
    record = {"component": name, "steps": steps, "warm_start": warm, "warmup_from_step": start,
              "lr": lr, "warmup": warmup, "ema_decay": ema_decay,
              "weight_decay": weight_decay, "autocast_bf16": autocast, "compile": compiled,
              "wall_s": round(time.time() - t0, 1),
              "threads": torch.get_num_threads(), "torch": torch.__version__, "device": device,
              "device_name": device_name(device), "devices": devices,
              "loss_per_100": [round(sum(losses[i:i + 100]) / len(losses[i:i + 100]), 5)
                               for i in range(0, len(losses), 100)],
              "config": config or {}}
    (workdir / f"{name}.json").write_text(json.dumps(record, indent=2))
    return record


def device_name(device: str) -> str:
    """The hardware behind a torch device name, for the training record: the GPU model, or the CPU architecture."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    return platform.machine()


def export_warm_start(workdir: Path, name: str, modules: dict[str, nn.Module], out: Path) -> int:
    """Write checkpoint `workdir/name.pt` as fp16 safetensors, EMA weights in place of the trained ones, with its
    step: small enough to carry between machines, unlike the optimizer state. `modules`: freshly built ones of the
    same architecture (they name the EMA list's entries). Returns the step."""
    from safetensors.torch import save_file

    state = torch.load(workdir / f"{name}.pt", weights_only=True, map_location="cpu")
    tensors = {f"{k}.{p}": v for k, sd in state["modules"].items() for p, v in sd.items()}
    trained = [f"{k}.{n}" for k, m in modules.items() for n, p in m.named_parameters() if p.requires_grad]
    if state["ema"]:
        tensors.update(zip(trained, state["ema"], strict=True))
    tensors = {k: v.to(torch.float16).contiguous() if v.is_floating_point() else v for k, v in tensors.items()}
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata={"step": str(state["step"])})
    os.replace(tmp, out)
    return int(state["step"])


def warm_start_header(path: Path) -> tuple[int, set[str]]:
    """The step a warm start written by `export_warm_start` was taken at and its tensors' names, from its header
    alone (no weights loaded); one line naming the file when it is not one."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return int((f.metadata() or {})["step"]), set(f.keys())
    except OSError as e:
        raise RevivalError(f"{path}: cannot read it ({e.strerror or e})") from None
    except (SafetensorError, ValueError, KeyError):
        raise RevivalError(f"{path}: not a warm start (a safetensors file with its step, as "
                           "`python -m revival.minisd.build warmstart` writes)") from None


def _load_warm_start(path: Path, modules: dict[str, nn.Module]) -> int:
    """Load a warm start into `modules` (in their dtype); returns its step."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        step = int(f.metadata()["step"])
        for k, m in modules.items():
            own = m.state_dict()
            m.load_state_dict({p: f.get_tensor(f"{k}.{p}").to(v.dtype) for p, v in own.items()})
    return step
