"""Science on the bundled mini model: unlearning, revival and defenses, as JSON.

    python benchmarks/mini_study.py unlearn   # -> benchmarks/results/unlearn_mini.json   (issue: prune)
    python benchmarks/mini_study.py revive    # -> benchmarks/results/revive_mini.json    (issue: revive)
    python benchmarks/mini_study.py defense   # -> benchmarks/results/defense_mini.json   (issue: obfuscate)
    python benchmarks/mini_study.py plot      # -> the sweep and trade-off PNGs beside those JSON files

The bundled model's quality gates: benchmarks/minisd_quality.py (-> mini_quality.json with --out).
`--model FOLDER` runs the same parts on another folder of the bundled world (a miniature Stable Diffusion
from `revival train-mini`), into <part>_minisd.json unless --out says otherwise. (The first generation's
figures, <part>_mini_gen1.json, are past measurements: that model was removed.)

All parts share one resumable stage cache (`--root`, default runs/mini-study; `revival.study`): the
original model's evaluation, each unlearned model and so on are computed once. Every figure is a
fraction; each accuracy has its 95% Wilson interval beside it (`*_ci95`). Figures that read the true
masks or the original weights (restoration, precision, recall, AUROC) are oracles, labelled so.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from revival.attack import COMPLETERS
from revival.checkpoints import atomic_write_json
from revival.modelfiles import WORLD_SAMPLING
from revival.models import load_pipeline
from revival.study import Study, StudySettings, family_of
from revival.worlds import world as world_named
from revival.worlds import world_of

RESULTS = Path(__file__).parent / "results"


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _acc(a: dict) -> float:
    return a["accuracy"]


def unlearn(study: Study, concepts: list[str]) -> dict:
    rows = {}
    for c in concepts:
        fam = family_of(c, world_of(study.pipe))
        before = study.accuracy(study.original, c, fam)
        unlearned = study.unlearn(c, fam)
        after = study.accuracy(unlearned, c, fam)
        rows[c] = {"family": fam, "erased_before": _acc(before["target"]), "erased_after": _acc(after["target"]),
                   "preserved_before": _acc(before["preserved"]), "preserved_after": _acc(after["preserved"]),
                   "erased_before_ci95": before["target"]["ci95"], "erased_after_ci95": after["target"]["ci95"],
                   "preserved_before_ci95": before["preserved"]["ci95"],
                   "preserved_after_ci95": after["preserved"]["ci95"],
                   "preserved_concepts": [k for k in study.evaluate(unlearned, fam, study.measured(c, fam))
                                          ["per_concept"] if k != c],
                   "skill_ratio": study.skill_ratio(fam),
                   "density": unlearned.info["density"], "seconds": unlearned.info["timings_s"]["total"]}
        _log(f"{c}: {rows[c]}")
    return {"concepts": rows}


def revive_part(study: Study, concepts: list[str], sweep_concepts: list[str], methods: list[str]) -> dict:
    rows, by_method = {}, {}
    world_name = world_of(study.pipe)
    for c in concepts:
        fam = family_of(c, world_name)
        orig = study.accuracy(study.original, c, fam)
        unlearned = study.unlearn(c, fam)
        unl = study.accuracy(unlearned, c, fam)
        revived = study.revive(unlearned, unlearned)
        rev = study.accuracy(revived, c, fam)
        sr = revived.info["sign_recovery"]
        rows[c] = {"family": fam, "acc_original": _acc(orig["target"]), "acc_unlearned": _acc(unl["target"]),
                   "acc_revived": _acc(rev["target"]), "preserved_original": _acc(orig["preserved"]),
                   "preserved_revived": _acc(rev["preserved"]), "sign_recovery_overall": sr["overall"],
                   "sign_recovery_retained": sr["retained"], "attack_seconds": revived.info["timings_s"]["total"],
                   "ci95": {"original": orig["target"]["ci95"], "unlearned": unl["target"]["ci95"],
                            "revived": rev["target"]["ci95"]}}
        by_method[c] = {}
        for m in methods:
            minfo = study.revive(unlearned, unlearned, f"method-{m}", method=m).info
            by_method[c][m] = {"overall": minfo["sign_recovery"]["overall"],
                               "retained": minfo["sign_recovery"]["retained"],
                               "seconds": minfo["timings_s"]["total"]}
        _log(f"{c}: {rows[c]}")
    sweep = []
    for c in sweep_concepts:
        fam = family_of(c, world_name)
        unlearned = study.unlearn(c, fam)
        for r in (0.2, 0.4, 0.6, 0.8):
            default = r == study.s.top_ratio  # the main run already is this point of the sweep
            st = study.revive(unlearned, unlearned, "default" if default else f"top{r:g}", top_ratio=r)
            acc = study.accuracy(st, c, fam)
            sweep.append({"concept": c, "top_ratio": r, "acc_revived": _acc(acc["target"]),
                          "preserved_revived": _acc(acc["preserved"]),
                          "sign_recovery_retained": st.info["sign_recovery"]["retained"]})
            _log(f"sweep {sweep[-1]}")
    n = len(rows)
    mean = {k: sum(r[k] for r in rows.values()) / n for k in
            ("acc_original", "acc_unlearned", "acc_revived", "preserved_revived", "sign_recovery_overall",
             "sign_recovery_retained")}
    mean["revived_over_original"] = mean["acc_revived"] / mean["acc_original"] if mean["acc_original"] else None
    return {"concepts": rows, "mean": mean, "sign_recovery_by_method": by_method, "top_ratio_sweep": sweep}


def defense(study: Study, concepts: list[str], scales: list[float], locators: list[str],
            own: list[tuple[str, dict]], gen_locators: list[str], gen_all_families: list[str]) -> dict:
    """Rows per concept x defense x locator x budget. Images are generated after the attacker's choice
    (data-free, `revival.attack.selection`) and the oracle's (highest restoration, an upper bound), of
    every locator named in `gen_locators`, and of every attack for concepts of `gen_all_families`; the
    other rows get weight-space figures and `revived: null`, to fit the CPU budget."""
    from revival.experiments.context import choose

    rows, world_name = [], world_of(study.pipe)
    for c in concepts:
        fam = family_of(c, world_name)
        unlearned = study.unlearn(c, fam)
        orig = study.accuracy(study.original, c, fam)
        unl = study.accuracy(unlearned, c, fam)
        revived = study.revive(unlearned, unlearned)
        rev = study.accuracy(revived, c, fam)
        rows.append({"concept": c, "defense": "none", "scale": 0.0, "params": {}, "locator": "zeros", "budget": None,
                     "original": _acc(orig["target"]), "original_preserved": _acc(orig["preserved"]),
                     "erased": _acc(unl["target"]), "preserved": _acc(unl["preserved"]),
                     "revived": _acc(rev["target"]), "revived_ci95": rev["target"]["ci95"],
                     "preserved_after_attack": _acc(rev["preserved"]), "precision": 1.0, "recall": 1.0, "auroc": 1.0,
                     "restoration": revived.info["scores"]["restoration"], "attacker_choice": True,
                     "oracle_choice": True})
        configs = [("gaussian", s, {}) for s in scales] + [(d, 1.0, p) for d, p in own]
        for d, s, p in configs:
            defended = study.defend(unlearned, d, s, "row", p)
            attacks = {f"{loc}@{b:g}": study.attack(defended, unlearned, loc, b)
                       for loc in locators for b in study.budgets(unlearned)}
            trials = {k: a.info["metrics"] for k, a in attacks.items()}
            attacker, oracle = choose(trials, "holdout_score"), choose(trials, "restoration")
            dacc = study.accuracy(defended, c, fam)
            for label, attacked in attacks.items():
                loc = label.split("@")[0]
                generate = label in (attacker, oracle) or loc in gen_locators or fam in gen_all_families
                aacc = study.accuracy(attacked, c, fam) if generate else None
                m = trials[label]
                rows.append({"concept": c, "defense": d, "scale": s, "params": p, "locator": loc,
                             "budget": attacked.info["budget"], "erased": _acc(dacc["target"]),
                             "preserved": _acc(dacc["preserved"]),
                             "revived": None if aacc is None else _acc(aacc["target"]),
                             "revived_ci95": None if aacc is None else aacc["target"]["ci95"],
                             "preserved_after_attack": None if aacc is None else _acc(aacc["preserved"]),
                             "precision": m["precision"], "recall": m["recall"], "auroc": m["auroc"],
                             "restoration": m.get("restoration"), "holdout_score": m.get("holdout_score"),
                             "attacker_choice": label == attacker, "oracle_choice": label == oracle})
                _log(f"defense {rows[-1]}")
    return {"rows": rows, "note": "precision, recall, AUROC and restoration are oracle figures (true masks); "
                                  "attacker_choice is the attacker's data-free pick, oracle_choice the upper bound"}


def tradeoff_points(rows: list[dict]) -> list[dict]:
    """Per concept, defense and scale: preserved accuracy of the defended model and the revived accuracy
    after the attacker's choice of locator and budget (generated for every concept)."""
    return [{"concept": r["concept"], "defense": r["defense"], "scale": r["scale"],
             "preserved_accuracy": r["preserved"], "revival_success": r["revived"],
             "revival_share": {"accuracy": r["revived"], "ci95": r.get("revived_ci95")}}
            for r in rows if r.get("attacker_choice") and r["revived"] is not None]


def plots() -> list[Path]:
    """Render the top_ratio sweep and the defense trade-off from the saved JSON files."""
    from revival.findings import THRESHOLDS
    from revival.report.plots import plot_defense_tradeoff, plot_top_ratio_sweep

    written = []
    rev = RESULTS / "revive_mini.json"
    if rev.exists():
        sweep: dict[str, list] = {}
        for row in json.loads(rev.read_text())["top_ratio_sweep"]:
            sweep.setdefault(row["concept"], []).append({"top_ratio": row["top_ratio"],
                                                          "sign_recovery_retained": row["sign_recovery_retained"],
                                                          "revived_accuracy": row["acc_revived"]})
        written.append(plot_top_ratio_sweep(sweep, RESULTS / "revive_mini_top_ratio.png"))
    dfn = RESULTS / "defense_mini.json"
    if dfn.exists():
        points = tradeoff_points(json.loads(dfn.read_text())["rows"])
        for concept in sorted({p["concept"] for p in points}):
            mine = [p for p in points if p["concept"] == concept]
            written.append(plot_defense_tradeoff(mine, RESULTS / f"defense_mini_tradeoff_{concept}.png",
                                                 title=f"Defense trade-off on the mini model: {concept}"))
        rows = json.loads(dfn.read_text())["rows"]
        erased = sorted(r["concept"] for r in rows if r["defense"] == "none"
                        and r["original"] - r["erased"] >= THRESHOLDS["erased_drop"])
        if not erased:  # nothing to defend: a mean over no concept would be no figure
            _log("no concept of defense_mini.json is erased: no mean trade-off plot")
            return written
        means = []
        for key in dict.fromkeys((p["defense"], p["scale"]) for p in points):
            group = [p for p in points if (p["defense"], p["scale"]) == key and p["concept"] in erased]
            means.append({"defense": key[0], "scale": key[1],
                          **{k: sum(p[k] for p in group) / len(group) for k in ("revival_success",
                                                                                 "preserved_accuracy")}})
        written.append(plot_defense_tradeoff(
            means, RESULTS / "defense_mini_tradeoff.png",
            title=f"Defense trade-off, mean over the {len(erased)} erased concepts ({', '.join(erased)})"))
    return written


def main() -> int:
    if sys.argv[1:2] == ["plot"]:
        for path in plots():
            _log(f"wrote {path}")
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["unlearn", "revive", "defense"])
    ap.add_argument("--root", default="runs/mini-study")
    ap.add_argument("--model", default="mini",
                    help="the bundled model (mini), or another folder of the bundled world (a miniature Stable "
                    "Diffusion)")
    ap.add_argument("--concepts", nargs="*", default=None, help="default: every erasable concept of the world")
    ap.add_argument("--guidance", type=float, default=WORLD_SAMPLING["minisd"][1],
                    help="default: the bundled model's (revival.modelfiles.WORLD_SAMPLING)")
    ap.add_argument("--attribute-skill-ratio", type=float, default=None,
                    help="ConceptPrune's ratio for attributes (the paper: 0.01 for nudity; default --skill-ratio)")
    ap.add_argument("--preserved", type=int, default=None,
                    help="preserved accuracy pools this many other concepts of the family (seeded sample; "
                    "default all)")
    ap.add_argument("--sweep-concepts", nargs="*", default=None,
                    help="default: star, neon and the world's first attribute")
    ap.add_argument("--methods", nargs="*", default=COMPLETERS.names())
    ap.add_argument("--scales", nargs="*", type=float, default=[0.25, 0.5, 1.0, 2.0])
    ap.add_argument("--locators", nargs="*", default=["global_bottom", "row_outlier", "residual", "neuron"])
    ap.add_argument("--gen-locators", nargs="*", default=[],
                    help="locators whose attacks are always evaluated by generation (besides each defense's best)")
    ap.add_argument("--gen-all-families", nargs="*", default=["style", "attribute"],
                    help="concept families for which every locator's attack is evaluated by generation")
    ap.add_argument("--locator-ratio", type=float, default=None,
                    help="fix the adaptive locators' budget (default: 0.5x, 1x and 2x the method's pruned share)")
    ap.add_argument("--n-eval", type=int, default=32)
    ap.add_argument("--eval-steps", type=int, default=20)
    ap.add_argument("--skill-ratio", type=float, default=0.02)
    ap.add_argument("--timesteps", type=int, default=10)
    ap.add_argument("--hook", default="ffn2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="result JSON (default: benchmarks/results/<part>_mini.json)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model)
    world_name = world_of(pipe)
    if world_name == "sd":
        ap.error(f"--model {args.model}: draws no bundled world; use `revival experiment` with the paper's evaluators")
    w = world_named(world_name)
    concepts = args.concepts or [*w.objects, *w.styles, *w.attributes]
    settings = StudySettings(n_eval=args.n_eval, eval_steps=args.eval_steps, guidance=args.guidance,
                             skill_ratio=args.skill_ratio, timesteps=args.timesteps, hook=args.hook,
                             locator_ratio=args.locator_ratio, preserved=args.preserved,
                             attribute_skill_ratio=args.attribute_skill_ratio)
    root = Path(args.root) / world_name
    attr = "" if args.attribute_skill_ratio is None else f"-attr{args.attribute_skill_ratio:g}"
    study = Study(pipe, root / f"{args.hook}-sr{args.skill_ratio:g}{attr}-T{args.timesteps}", settings, log=_log)
    # the bundled model's figures are <part>_mini.json; another folder's are named after its world
    suffix = "mini" if args.model == "mini" else world_name
    sweep_concepts = args.sweep_concepts if args.sweep_concepts is not None else ["star", "neon", w.attributes[0]]
    t0 = time.time()
    if args.part == "unlearn":
        body, name = unlearn(study, concepts), f"unlearn_{suffix}.json"
    elif args.part == "revive":
        body, name = revive_part(study, concepts, sweep_concepts, args.methods), f"revive_{suffix}.json"
    else:
        body, name = defense(study, concepts, args.scales, args.locators,
                             [("neuron", {}), ("decoy", {"fill": "lowrank"})], args.gen_locators,
                             args.gen_all_families), f"defense_{suffix}.json"
    training = json.loads((Path(study.pipe.config._name_or_path) / "training.json").read_text()) \
        if (Path(study.pipe.config._name_or_path) / "training.json").exists() else None
    result = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "settings": study.settings_dict(),
              "model": {"name": world_name, "path": str(args.model), "training": training}, **body,
              "wall_s": round(time.time() - t0, 1), "threads": args.threads}
    out = Path(args.out) if args.out else RESULTS / name
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(result, out)
    _log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
