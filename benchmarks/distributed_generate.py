"""Wall time of `generate_distributed`: one process versus two CPU processes under `accelerate launch`.

The bundled mini model (the miniature Stable Diffusion, 64x64; the recorded result's `model` says which model it
timed: the stored one is the removed first generation's random-init 32x32 pipeline). Each configuration runs
in fresh processes; the generation time is measured between two barriers (model building and
imports excluded), the total time includes process start-up. Also checks that every run gives
the same image bytes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/distributed_generate.py --n 64 --steps 10
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "distributed_generate.json"
PROMPTS = ["a star in a desert", "a box in a forest", "a ring in the snow", "a heart in a cage"]


def child(out: str, n: int, steps: int, threads: int) -> None:
    """Run inside each launched process: load, barrier, generate, barrier; main writes the figures."""
    import torch

    from revival.evaluate.distributed import generate_distributed, process_state
    from revival.models import load_pipeline

    torch.set_num_threads(threads)
    state = process_state()
    pipe = load_pipeline("mini")
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(n)]
    state.wait_for_everyone()
    t0 = time.perf_counter()
    images = generate_distributed(pipe, prompts, list(range(n)), num_inference_steps=steps, batch_size=16)
    state.wait_for_everyone()
    dt = time.perf_counter() - t0
    if state.is_main_process:
        Path(out).write_text(json.dumps({"processes": state.num_processes, "threads_per_process": threads,
                                         "generate_s": round(dt, 2),
                                         "images_sha256": hashlib.sha256(images.tobytes()).hexdigest()}))


def run_config(processes: int, threads: int, n: int, steps: int, tmp: Path) -> dict:
    """Start one configuration in fresh processes; its figures plus total wall time."""
    out = tmp / f"p{processes}-t{threads}.json"
    me = [str(Path(__file__).resolve()), "--child", str(out), "--n", str(n), "--steps", str(steps),
          "--threads", str(threads)]
    if processes == 1:
        cmd = [sys.executable, *me]
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(port), *me]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    rec = json.loads(out.read_text())
    rec["total_s"] = round(time.perf_counter() - t0, 2)
    rec["launcher"] = "accelerate launch --multi_gpu" if processes > 1 else "python"
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    if args.child:
        child(args.child, args.n, args.steps, args.threads)
        return
    tmp = Path(args.out).parent / ".distributed_tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    runs = [run_config(p, t, args.n, args.steps, tmp) for p, t in ((1, 1), (2, 1), (1, 2))]
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    load = os.getloadavg()
    result = {"benchmark": "distributed_generate", "command": "python " + " ".join(sys.argv),
              "n_images": args.n, "steps": args.steps,
              "model": "the bundled mini model (miniature Stable Diffusion, 64x64)", "cpu_count": os.cpu_count(),
              "load_average_after": [round(x, 2) for x in load], "platform": platform.platform(),
              "identical_images": len({r["images_sha256"] for r in runs}) == 1, "runs": runs}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
