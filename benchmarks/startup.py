"""How fast `revival` answers --help and argument errors (issue 12: under 1.5 s each).

    PYTHONPATH=src python benchmarks/startup.py --out benchmarks/results/startup.json
    PYTHONPATH=/path/to/old/src python benchmarks/startup.py --label main --skip-new --repeats 1 \
        --out benchmarks/results/startup_main.json

Each command line runs `--repeats` times as `python -m revival ...` in a fresh process (in an empty
temporary folder, so nothing is written anywhere); the median wall time is kept. `--skip-new`
leaves out the argument errors only this version detects (older code starts working on them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THRESHOLD_S = 1.5
COMMANDS = ["demo", "evaluate", "experiment", "generate", "obfuscate", "prune", "reproduce", "revive", "train-mini"]
# Argument errors every version refuses (old ones only after importing torch, diffusers and transformers).
ERRORS = [
    ["prune"],
    ["bogus"],
    ["revive", "--unet", "x", "--out", "y", "--method", "magic"],
    ["prune", "--concept", "star", "--out", "y", "--skill-ratio", "2"],
    ["experiment", "rq9"],
    ["generate", "--prompt", "a star", "-n", "0"],
    ["evaluate", "--concept", "star", "--out", "y", "-n", "0"],
    ["demo", "--resume", "y", "--quick"],
]
# Argument errors only this version detects.
NEW_ERRORS = [
    ["prune", "--concept", "star", "--out", "y", "--steps", "0"],
    ["generate", "--prompt", "a star", "--guidance", "nan"],
    ["generate", "--prompt", "a star", "--device", "bogus"],
    ["generate", "--prompt", "a star", "-n", "1000000000"],
    ["obfuscate", "--unet", "x", "--masks", "m", "--out", "y", "--scale", "nan"],
    ["revive", "--unet", "x", "--out", "y", "--top-ratio", "1.5"],
    ["prune", "--concept", "x" * 100_000, "--out", "y"],  # (one argument may not exceed 128 KiB)
]


def timed(argv: list[str], cwd: str, env: dict[str, str]) -> tuple[float, int, str]:
    t = time.perf_counter()
    got = subprocess.run([sys.executable, "-m", "revival", *argv], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=600)
    return time.perf_counter() - t, got.returncode, (got.stderr.strip().splitlines() or [""])[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--label", default="this tree", help="what is measured (e.g. main, issue12)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-new", action="store_true", help="leave out the argument errors only this version detects")
    args = p.parse_args()
    import revival

    source = str(Path(revival.__file__).resolve().parents[1])  # measured exactly this tree, from any folder
    env = {**os.environ, "PYTHONPATH": source}
    cases = [["--help"], *([c, "--help"] for c in COMMANDS), *ERRORS, *([] if args.skip_new else NEW_ERRORS)]
    rows = []
    with tempfile.TemporaryDirectory() as cwd:
        for argv in cases:
            runs = [timed(argv, cwd, env) for _ in range(args.repeats)]
            assert not os.listdir(cwd), f"{argv} wrote {os.listdir(cwd)}"
            shown = [a if len(a) < 60 else f"<{len(a)} characters>" for a in argv]
            rows.append({"argv": "revival " + " ".join(map(shlex.quote, shown)), "exit": runs[-1][1],
                         "times_s": [round(t, 3) for t, _, _ in runs],
                         "median_s": round(statistics.median(t for t, _, _ in runs), 3),
                         "last_line": runs[-1][2][:200]})
            print(f"{rows[-1]['median_s']:6.2f}s  exit {rows[-1]['exit']}  {rows[-1]['argv'][:90]}", flush=True)
    worst = max(r["median_s"] for r in rows)
    record = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "label": args.label,
              "revival_source": source, "python": sys.version.split()[0],
              "platform": platform.platform(), "cpus": os.cpu_count(),
              "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
              "threshold_s": THRESHOLD_S, "repeats": args.repeats, "worst_median_s": worst,
              "help_median_s": rows[0]["median_s"], "all_under_threshold": worst < THRESHOLD_S, "cases": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"worst median {worst:.2f}s (threshold {THRESHOLD_S}s) -> {args.out}")


if __name__ == "__main__":
    main()
