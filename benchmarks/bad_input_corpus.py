"""Run the bad-input corpus (tests/corpus_cases.py) against whatever `revival` is on the path; save the table.

    PYTHONPATH=src python benchmarks/bad_input_corpus.py --out benchmarks/results/bad_input_corpus.json
    PYTHONPATH=/path/to/old/src python benchmarks/bad_input_corpus.py --label main --out ...

Cases marked `unbounded` (they allocate or train without bound where the check is missing) are
run only with --all. Each row: exit code, stderr lines, traceback, files changed, the first error
line, and the verdict of `corpus_cases.judge`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch  # noqa: E402
from corpus_cases import CASES, build_base, judge, run_case  # noqa: E402

import revival  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="JSON table to write")
    p.add_argument("--label", default="this tree", help="what the table describes (e.g. main, issue12)")
    p.add_argument("--all", action="store_true", help="also run the unbounded cases")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        base = build_base(Path(tmp) / "base")
        for k, case in enumerate(CASES):
            if case.needs_no_cuda and torch.cuda.is_available():
                continue
            if case.unbounded and not args.all:
                rows.append({"case": case.name, "run": False, "verdict": "not run (unbounded where unchecked)"})
                continue
            t = time.perf_counter()
            got = run_case(case, base, Path(tmp) / f"ws{k}")
            problems = judge(case, got)
            rows.append({"case": case.name, "run": True, "exit": got.code, "stderr_lines": len(got.lines),
                         "traceback": got.traceback.strip().splitlines()[-1][:300] if got.traceback else None,
                         "changed": got.changed[:10], "line": got.lines[-1][:300] if got.lines else "",
                         "seconds": round(time.perf_counter() - t, 2),
                         "verdict": "ok" if not problems else "; ".join(problems)})
            print(f"{case.name:48s} {rows[-1]['verdict'][:110]}", flush=True)
    ok = sum(r["verdict"] == "ok" for r in rows)
    record = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "label": args.label,
              "revival_source": str(Path(revival.__file__).parent), "cases": len(CASES), "ok": ok,
              "seconds": round(time.perf_counter() - t0, 1), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"{ok}/{len(rows)} cases ok -> {args.out}")


if __name__ == "__main__":
    main()
