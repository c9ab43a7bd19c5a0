"""Sign recovery of the completion methods on real trained weights (issue 13), not on matrices drawn from a formula.

Sources (benchmarks/real_sources.py; trained and masked once, cached outside git):
- `minisd`: the bundled model (src/revival/minisd, a miniature Stable Diffusion; `--minisd PATH` to
  another pipeline folder of its world): every UNet ff.net.2 layer under ConceptPrune masks from
  the paper's templates on its vocabulary, every concept, skill_ratio 0.02 and 0.2 (attributes 0.01
  and 0.1).
- `lm_stdlib`, `lm_docs`: byte-level transformer LMs trained here (GELU MLP on the standard
  library's code; SD's GEGLU FFN on CPython's English reference texts), WANDA masks (2% and 20%
  per row) from held-out activations.

Each (source, matrix) is attacked through `revival.attack.revive` exactly as a user would (zeros
located, completion, top 60% signs, NMS magnitudes) and scored by `score_attack` against the true
masks and original weights (ORACLE: evaluation only). A method spec is `name` or
`name:key=value,key=value` (completion parameters). Figures are pooled over the matrices of a
source: sign recovery overall and among retained, restoration, seconds of completion.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/attack_real.py --threads 1 \
         --sources lm_stdlib,lm_docs,minisd --minisd PIPELINE_FOLDER

(The source `mini`, the removed first generation, is in the stored results only.)
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import real_sources as rs  # noqa: E402
from attack_speed import parse_spec  # noqa: E402

from revival.attack import DEFAULT_METHOD, revive  # noqa: E402
from revival.checkpoints import atomic_write_json  # noqa: E402
from revival.evaluate.attack_metrics import ORACLE_NOTE, score_attack  # noqa: E402

DEFAULT_METHODS = ("paper|softimpute|softimpute:sigma_every=1,tune_rows=320|softimpute:mnar=false"
                   "|softimpute:holdout=random|softimpute:lam=auto,lam_scale=0.7|softimpute:lam=auto,mnar=false"
                   "|softimpute:dtype=float64|als|structured")
PER_CASE_COLUMNS = ["overall", "retained", "seconds", "lambda", "rank", "iterations", "converged"]


def attack_case(case: rs.Case, name: str, params: dict) -> dict:
    """Revive one pruned matrix with one method; counts for pooled figures and the completion's record."""
    layer = case.layer
    pruned = {layer: torch.where(case.mask, torch.zeros(()), case.weight)}
    res = revive(pruned, layers=layer, method=name, device="cpu", **params)
    sc = score_attack(res.state_dict, res.located, res.completed, {layer: case.weight}, {layer: case.mask})
    sr = sc["sign_recovery"]
    W, m = case.weight, case.mask
    rec = res.per_layer[layer]
    return {"pruned": sr["n_pruned"], "match": round(sr["overall"] * sr["n_pruned"]),
            "retained": sr["n_retained"], "match_retained": round(sr["retained"] * sr["n_retained"]),
            "restoration_num": float((res.state_dict[layer][m] * W[m]).sum()),
            "restoration_den": float(W[m].pow(2).sum()),
            "seconds": rec["complete_seconds"],
            "completion": {k: rec[k] for k in ("lambda", "rank", "reason", "iterations", "converged")}}  # as recorded


def pooled(rows: list[dict]) -> dict:
    """Pooled figures over matrices."""
    tot = {k: sum(r[k] for r in rows) for k in ("pruned", "match", "retained", "match_retained",
                                               "restoration_num", "restoration_den", "seconds")}
    return {"matrices": len(rows), "sign_recovery_overall": round(tot["match"] / tot["pruned"], 4),
            "sign_recovery_retained": round(tot["match_retained"] / max(tot["retained"], 1), 4),
            "restoration": round(tot["restoration_num"] / tot["restoration_den"], 4),
            "seconds": round(tot["seconds"], 2)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sources", default="lm_stdlib,lm_docs,minisd",
                   help="comma-separated sources: lm_stdlib, lm_docs, minisd")
    p.add_argument("--methods", default=DEFAULT_METHODS, help="|-separated method specs name[:k=v,...]")
    p.add_argument("--concepts", default=None,
                   help="comma-separated concepts (default: every erasable one); each source keeps those of its world")
    p.add_argument("--settings", default=None, help="comma-separated settings to keep (e.g. sr0.02,r0.02)")
    p.add_argument("--minisd", default="mini", metavar="PATH",
                   help="pipeline folder of a miniature Stable Diffusion, source `minisd` (default: the bundled "
                   "model)")
    p.add_argument("--cache", default=str(rs.DEFAULT_CACHE), help="where trained models and masks are kept")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/attack_real.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    specs = [s.strip() for s in args.methods.split("|") if s.strip()]
    methods = {s: parse_spec(s) for s in specs}
    concepts = args.concepts.split(",") if args.concepts else None
    settings = set(args.settings.split(",")) if args.settings else None
    sources = args.sources.split(",")
    if concepts:
        unknown = [c for c in concepts if not any(c in rs.source_concepts(s) for s in sources)]
        if unknown:
            raise SystemExit(f"concepts of none of the sources {', '.join(sources)}: {', '.join(unknown)}")
    rows: dict[tuple[str, str, str], list[dict]] = {}
    per_case = []
    for source in sources:
        for case in rs.source_cases(source, Path(args.cache), concepts=concepts, minisd=args.minisd):
            if settings and case.setting not in settings:
                continue
            line = {"source": case.source, "setting": case.setting, "group": case.group, "layer": case.layer,
                    "shape": list(case.weight.shape), "pruned": int(case.mask.sum()), "methods": {}}
            for spec, (name, params) in methods.items():
                r = attack_case(case, name, params)
                for key in ((case.source, "all", spec), (case.source, case.setting, spec)):
                    rows.setdefault(key, []).append(r)
                c = r["completion"]
                line["methods"][spec] = [round(r["match"] / r["pruned"], 4),
                                         round(r["match_retained"] / max(r["retained"], 1), 4), r["seconds"],
                                         None if c["lambda"] is None else float(f"{c['lambda']:.4g}"), c["rank"],
                                         c["iterations"], c["converged"]]
                if spec == DEFAULT_METHOD:
                    line["default_reason"] = c["reason"]
            per_case.append(line)
            print(case.source, case.setting, case.group, case.layer,
                  " ".join(f"{s}={v[1]:.3f}" for s, v in line["methods"].items()), flush=True)
    table = {}
    for (source, setting, spec), rr in rows.items():
        table.setdefault(source, {}).setdefault(setting, {})[spec] = pooled(rr)
    summary = {}
    for source, by_setting in table.items():
        allrows = by_setting["all"]
        paper = allrows.get("paper")
        summary[source] = {spec: {**v, **({"retained_minus_paper": round(v["sign_recovery_retained"]
                                                                            - paper["sign_recovery_retained"], 4),
                                           "speedup_vs_paper": round(paper["seconds"] / max(v["seconds"], 1e-9), 1)}
                                          if paper else {})} for spec, v in allrows.items()}
    mean_gain = {spec: round(sum(summary[s][spec].get("retained_minus_paper", 0) for s in summary) / len(summary), 4)
                 for spec in specs}
    out = {"command": "OMP_NUM_THREADS=1 " + shlex.join([sys.executable, *sys.argv]),
           "config": {**vars(args), "top_ratio": 0.6, "magnitude": "nms", "locator": "zeros", "seed": 0},
           "default_method": DEFAULT_METHOD, "note": ORACLE_NOTE,
           "sources": {s: rs.source_info(s, Path(args.cache), args.minisd) for s in sources},
           "environment": {"torch": torch.__version__, "python": platform.python_version(),
                           "machine": platform.machine(), "threads": args.threads},
           "summary": summary, "mean_retained_gain_vs_paper": mean_gain, "by_setting": table,
           "per_case_columns": PER_CASE_COLUMNS, "per_case": per_case,
           "wall_seconds": round(time.perf_counter() - t_start, 1)}
    atomic_write_json(out, args.out)
    print(json.dumps({"summary": summary, "mean_retained_gain_vs_paper": mean_gain}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
