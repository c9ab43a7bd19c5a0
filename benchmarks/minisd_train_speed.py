"""Training speed of the miniature's UNet (issue 14): fp32, bf16 autocast, channels_last, torch.compile side by side.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/minisd_train_speed.py --threads 1

One optimizer step = forward, epsilon loss, backward and AdamW on a batch of random 16x16x4 latents
with random text states, exactly the shapes `revival.minisd.unet.train_unet` uses. Each setting
warms up (compilation included there), then times `--steps` steps; seconds per step is the median
over them. Run it on a quiet machine: any other process on the cores changes the figures.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from revival.checkpoints import atomic_write_json
from revival.minisd.text_encoder import TEXT_DIM
from revival.minisd.unet import build_unet

SETTINGS = {  # name -> (bf16 autocast, channels_last, torch.compile)
    "fp32": (False, False, False),
    "bf16": (True, False, False),
    "fp32+channels_last": (False, True, False),
    "bf16+channels_last": (True, True, False),
    "bf16+compile": (True, False, True),
    "fp32+compile": (False, False, True),
}


def cpu_bf16() -> bool:
    """Whether the CPU has native bf16 arithmetic (AVX512-BF16 or AMX), from /proc/cpuinfo where Linux has it."""
    info = Path("/proc/cpuinfo")
    flags = info.read_text().split() if info.exists() else []
    return "avx512_bf16" in flags or "amx_bf16" in flags


def time_setting(variant: str, bf16: bool, channels_last: bool, compiled: bool, batch: int, tokens: int,
                 warmup: int, steps: int) -> dict:
    """Median seconds per optimizer step of one setting, and the compile/warm-up time."""
    unet = build_unet(variant, seed=0).train()
    if channels_last:
        unet = unet.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    model = torch.compile(unet) if compiled else unet
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 4, 16, 16, generator=g)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    ctx = torch.randn(batch, tokens, TEXT_DIM, generator=g)
    t = torch.randint(0, 1000, (batch,), generator=g)
    noise = torch.randn(x.shape, generator=g)

    def step() -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.mse_loss(model(x, t, encoder_hidden_states=ctx).sample.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - start

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    warm = time.perf_counter() - t0
    times = [step() for _ in range(steps)]
    med = statistics.median(times)
    return {"seconds_per_step": round(med, 4), "steps_per_second": round(1 / med, 3),
            "min_seconds": round(min(times), 4), "max_seconds": round(max(times), 4), "warmup_seconds": round(warm, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", default="base")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=8, help="text states per caption")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated settings to time")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "minisd_train_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = {}
    for name in args.settings.split(","):
        try:
            rows[name] = time_setting(args.variant, *SETTINGS[name], args.batch, args.tokens, args.warmup, args.steps)
        except Exception as e:  # noqa: BLE001  (a setting this machine cannot run is a finding, not a crash)
            rows[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
        print(name, rows[name], flush=True)
    timed = {k: v for k, v in rows.items() if "seconds_per_step" in v}
    fastest = min(timed, key=lambda k: timed[k]["seconds_per_step"]) if timed else None
    atomic_write_json({
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "environment": {"torch": torch.__version__, "threads": args.threads, "platform": platform.platform(),
                        "cpu_bf16": cpu_bf16()},
        "settings": rows, "fastest": fastest,
        "speedup_vs_fp32": {k: round(rows["fp32"]["seconds_per_step"] / v["seconds_per_step"], 2)
                            for k, v in timed.items()} if "fp32" in timed else None,
    }, args.out)
    print(f"wrote {args.out}; fastest: {fastest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
