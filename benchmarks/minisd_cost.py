"""Cost of a second-generation bundled model candidate (issue 14): fp16 sizes and generation speed.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/minisd_cost.py --pipeline DIR --threads 2

Sizes: each component's weights as fp16 safetensors (what the package would ship), plus the
evaluator file. Speed: `--images` images (one batch) at `--steps` DDIM steps at the bundled model's guidance, after one
warm-up batch of 2; the median of `--repeats` timed batches. Targets: <= 20 MB, 64 images <= 30 s on
2 cores. Run it on a quiet machine; the speed depends on the CPU's vector units (torch's CPU capability is
recorded: the same weights drew 64 images in 18 s with AVX-512 and 37 s with AVX2 only). Writes
benchmarks/results/minisd_cost.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save

sys.path.insert(0, str(Path(__file__).parent))
from mini_design_screen import load_candidate  # noqa: E402

from revival.checkpoints import atomic_write_json  # noqa: E402
from revival.modelfiles import WORLD_SAMPLING  # noqa: E402


def fp16_bytes(module: torch.nn.Module) -> int:
    """Bytes of the module's state dict saved as fp16 safetensors."""
    return len(save({k: v.detach().half().contiguous() for k, v in module.state_dict().items()}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pipeline", type=Path, required=True)
    ap.add_argument("--evaluator", type=Path, default=Path("src/revival/minisd/assets/evaluator.safetensors"))
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "minisd_cost.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_candidate(args.pipeline)
    sizes = {name: fp16_bytes(getattr(pipe, name)) for name in ("unet", "vae", "text_encoder")}
    sizes["evaluator"] = args.evaluator.stat().st_size
    total_mb = sum(sizes.values()) / 2**20

    def batch(n: int) -> float:
        gens = [torch.Generator().manual_seed(i) for i in range(n)]
        start = time.perf_counter()
        with torch.no_grad():
            pipe(["a ball in a garden"] * n, num_inference_steps=args.steps, guidance_scale=WORLD_SAMPLING["minisd"][1],
                 generator=gens, output_type="np")
        return time.perf_counter() - start

    batch(2)
    seconds = statistics.median(batch(args.images) for _ in range(args.repeats))
    atomic_write_json({
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "pipeline": str(args.pipeline),
        "fp16_bytes": sizes, "fp16_total_mb": round(total_mb, 2), "size_target_mb": 20, "size_ok": total_mb <= 20,
        "generation": {"images": args.images, "steps": args.steps, "seconds": round(seconds, 2),
                       "images_per_second": round(args.images / seconds, 2), "threads": args.threads},
        "speed_target": "64 images <= 30 s on 2 cores",
        "speed_ok": seconds * 64 / args.images <= 30 and args.threads <= 2,
        "environment": {"torch": torch.__version__, "platform": platform.platform(),
                        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpus": os.cpu_count()},
    }, args.out)
    print(f"wrote {args.out}: {total_mb:.1f} MB fp16, {args.images} images in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
