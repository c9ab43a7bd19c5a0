"""`revival demo` as a library: the whole story for a few concepts on the mini model, as one result.

Per concept (by default an object, a style and the attribute): original -> unlearned (ConceptPrune)
-> revived (the data-free attack) -> defended (Gaussian filling, row scope, scale 1) -> revived after
the defense by the best adaptive locator (every registered locator is tried in weight space and the
one with the highest restoration of the erased weights is kept). Plus a top_ratio sweep (sign
recovery among the retained signs at every ratio, weight space; revived accuracy generated at a few
ratios) and a Gaussian trade-off on the object concept (a few scales). Every stage is cached by
`revival.study.Study` under `<run>/stages`, so an interrupted run resumes. `write_outputs` renders
result.json, results.csv, the image grids, the plots and report.html from the result.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from revival.checkpoints import atomic_write_json, atomic_write_text
from revival.errors import RevivalError
from revival.evaluate.generate import make_grid
from revival.evaluate.mini_eval import resolve_concept
from revival.experiments import (
    Context,
    ExperimentConfig,
    Progress,
    StepClock,
    adaptive_round,
    config_from_dict,
    config_to_dict,
)
from revival.findings import THRESHOLDS, defense_finding, finding, revival_finding, sign_recovery_finding
from revival.report.html import render_report
from revival.report.plots import (
    STAGES,
    plot_accuracy_by_stage,
    plot_defense_tradeoff,
    plot_sign_recovery,
    plot_top_ratio_sweep,
)
from revival.study import Study, StudySettings

RUN_FILE = "demo-run.json"  # the run's settings and model fingerprint, written first: what --resume reads


@dataclass
class DemoConfig:
    """Every setting of a demo run (written into result.json and read back by --resume)."""

    concepts: tuple[str, ...] = ("star", "neon", "cage")
    # skill_ratio 0.2: the paper's 0.02 does not erase on the mini model (benchmarks/results/unlearn_mini.json,
    # erase_search.json); 0.2 is the setting that does for the object family. locator_ratio 0.2: the adaptive
    # attacker knows the published method and its skill_ratio, so it calls that share of entries pruned.
    study: StudySettings = field(default_factory=lambda: StudySettings(n_eval=10, eval_steps=10, skill_ratio=0.2,
                                                                       locator_ratio=0.2))
    defense: str = "gaussian"
    defense_scale: float = 1.0
    defense_scope: str = "row"
    locators: tuple[str, ...] = ()  # empty = every registered locator
    top_ratios: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)  # sign recovery (weight space) at each
    top_ratios_generated: tuple[float, ...] = (0.2, 1.0)  # revived accuracy also generated at these
    tradeoff_scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    tradeoff_concept: str | None = None  # None = the first object concept (else the first concept)


# Sized for 2 CPU cores at about 80 UNet sample-forwards per second (an image costs eval_steps x 2):
# full ~ 172 x n_eval images of 20 forwards (~430 s), quick ~ 116 x n_eval images of 16 forwards (~95 s).
PROFILES: dict[str, DemoConfig] = {
    "full": DemoConfig(),
    "quick": DemoConfig(study=StudySettings(n_eval=4, eval_steps=8, skill_ratio=0.2, locator_ratio=0.2),
                        top_ratios_generated=(0.2,),
                        tradeoff_scales=(1.0, 2.0)),
}


def profile(name: str, concepts: tuple[str, ...] | None = None) -> DemoConfig:
    """The settings of profile `name` (full or quick), optionally for other concepts."""
    if name not in PROFILES:
        raise RevivalError(f"unknown demo profile {name!r}; known: {', '.join(PROFILES)}")
    cfg = PROFILES[name]
    return replace(cfg, concepts=tuple(concepts)) if concepts else cfg


def start_run(run_dir: Path, config: DemoConfig, model: dict) -> None:
    """Record the settings and the model's fingerprint ({path, sha256}) so the run can be resumed."""
    atomic_write_json({"config": config_to_dict(config), "model": model}, run_dir / RUN_FILE)


def resume_run(run_dir: Path, model: dict) -> DemoConfig:
    """The settings of an interrupted run; an error when it is not a demo run or the model changed since."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise RevivalError(f"{run_dir}: not a demo run folder ({RUN_FILE} is missing)")
    saved = json.loads(path.read_text())
    if saved.get("model", {}).get("sha256") != model.get("sha256"):
        raise RevivalError(f"{run_dir}: was started with other model weights than {model.get('path')} has now; "
                           "start a new run instead of resuming")
    return config_from_dict(DemoConfig, saved["config"])


def _tradeoff_concept(config: DemoConfig, families: dict[str, str]) -> str:
    if config.tradeoff_concept:
        return config.tradeoff_concept
    return next((c for c in config.concepts if families[c] == "object"), config.concepts[0])


def plan_steps(config: DemoConfig, locators: int) -> int:
    """Units of work of a run (for the progress bar)."""
    swept = [r for r in config.top_ratios if r != config.study.top_ratio]  # the default ratio is the revived stage
    per_concept = 7 + locators + len(swept) + len([r for r in swept if r in config.top_ratios_generated])
    return len(config.concepts) * per_concept + len(config.tradeoff_scales) * (locators + 2)


@dataclass
class DemoRun:
    """A finished demo: the JSON-ready result and the images of every concept at every stage."""

    result: dict
    images: dict[str, dict[str, np.ndarray]]  # {concept: {stage: uint8 (N, H, W, 3)}}


def run_demo(pipe, run_dir: str | Path, config: DemoConfig, progress: Progress | None = None) -> DemoRun:
    """Run (or resume) every stage of the story for `config.concepts` on the mini pipeline `pipe`."""
    if not config.concepts:
        raise RevivalError("the demo needs at least one concept")
    families = dict(resolve_concept(c) for c in config.concepts)
    run_dir = Path(run_dir)
    study = Study(pipe, run_dir / "stages", config.study)
    ecfg = ExperimentConfig(concepts=config.concepts, study=config.study, locators=config.locators,
                            defense_scope=config.defense_scope)
    locators = ecfg.locator_names()
    clock = StepClock(progress)
    clock.plan(plan_steps(config, len(locators)))
    ctx = Context(ecfg, study, clock)
    concepts, images, sweep, cache = {}, {}, {}, {}
    for c in config.concepts:
        stages = {"original": ctx.stage("original", study.original, c, "original")}
        unlearned, masks, pinfo = ctx.unlearned(c)
        stages["unlearned"] = ctx.stage(f"{c}.unlearned", unlearned, c, "unlearned")
        revived, rinfo = ctx.revive(c, unlearned)
        stages["revived"] = ctx.stage(f"{c}.revived", revived, c, "revived")
        rnd = adaptive_round(study, c, unlearned, masks, config.defense, config.defense_scale, locators,
                             config.defense_scope, clock)
        stages["defended"] = ctx.stage(rnd.defended_key, rnd.defended, c, "defended")
        stages["revived_after_defense"] = ctx.stage(rnd.attacked_key, rnd.attacked, c, "revived after defense")
        keys = {"original": "original", "unlearned": f"{c}.unlearned", "revived": f"{c}.revived",
                "defended": rnd.defended_key, "revived_after_defense": rnd.attacked_key}
        images[c] = {s: stages[s]["images"] for s in STAGES}
        concepts[c] = {
            "family": families[c],
            "stages": {s: {"target": stages[s]["target"], "preserved": stages[s]["preserved"], "key": keys[s]}
                       for s in STAGES},
            "prompts": stages["original"]["prompts"],
            "prune": {"density": pinfo["density"], "seconds": pinfo["timings_s"].get("total")},
            "sign_recovery": rinfo["sign_recovery"], "attack_seconds": rinfo["timings_s"]["total"],
            "defense": {"name": config.defense, "scale": config.defense_scale, "scope": config.defense_scope},
            "locators": rnd.trials, "best_locator": rnd.best, "best_locator_reason": rnd.reason}
        sweep[c] = _top_ratio_sweep(ctx, config, c, unlearned, stages["revived"], rinfo)
        cache[c] = (unlearned, masks, stages)
    t_concept = _tradeoff_concept(config, families)
    tradeoff = _tradeoff(ctx, config, t_concept, locators, cache)
    clock.finish()
    result = {
        "title": "Concept revival audit: the whole story on the bundled mini model",
        "concepts": concepts,
        "accuracy_by_stage": {c: {s: r["stages"][s]["target"] for s in STAGES} for c, r in concepts.items()},
        "preserved_by_stage": {c: {s: r["stages"][s]["preserved"] for s in STAGES} for c, r in concepts.items()},
        "top_ratio_sweep": sweep,
        "defense_tradeoff": tradeoff,
        "grid_notes": {c: _grid_note(config, r) for c, r in concepts.items()},
        "findings": demo_findings(concepts, config),
        "thresholds": dict(THRESHOLDS),
        "seeds": {"images": [config.study.seed + i for i in range(config.study.n_eval)],
                  "prune": config.study.seed, "attack": config.study.seed, "defense": config.study.seed},
        "timings_s": clock.timings_s,
    }
    return DemoRun(result, images)


def _top_ratio_sweep(ctx: Context, config: DemoConfig, c: str, unlearned, revived_stage: dict, rinfo: dict) -> list:
    """Sign recovery among the retained signs at every top_ratio; revived accuracy where generated."""
    rows = []
    default = config.study.top_ratio
    for r in config.top_ratios:
        if r == default:
            info, acc = rinfo, revived_stage
        else:
            state, info = ctx.revive(c, unlearned, f"top{r:g}", top_ratio=r)
            acc = (ctx.stage(f"{c}.revived-top{r:g}", state, c, "top_ratio sweep")
                   if r in config.top_ratios_generated else None)
        sr = info["sign_recovery"]
        rows.append({"top_ratio": r, "sign_recovery_overall": sr["overall"], "sign_recovery_retained": sr["retained"],
                     "revived_accuracy": None if acc is None else acc["target"],
                     "preserved_accuracy": None if acc is None else acc["preserved"]})
    return rows


def _tradeoff(ctx: Context, config: DemoConfig, c: str, locators: list[str], cache: dict) -> dict:
    """Gaussian scales on one concept: preserved accuracy of the defended model vs revival by the best locator."""
    unlearned, masks, stages = cache[c]
    points = [{"defense": "none", "scale": None, "revival_success": stages["revived"]["target"],
               "preserved_accuracy": stages["unlearned"]["preserved"], "erased_accuracy": stages["unlearned"]["target"],
               "best_locator": "zeros"}]
    for s in config.tradeoff_scales:
        rnd = adaptive_round(ctx.study, c, unlearned, masks, "gaussian", s, locators, config.defense_scope, ctx.clock)
        d = ctx.stage(rnd.defended_key, rnd.defended, c, "defense trade-off")
        a = ctx.stage(rnd.attacked_key, rnd.attacked, c, "defense trade-off")
        points.append({"defense": "gaussian", "scale": s, "revival_success": a["target"],
                       "preserved_accuracy": d["preserved"], "erased_accuracy": d["target"],
                       "best_locator": rnd.best, "auroc": rnd.trials[rnd.best].get("auroc"),
                       "restoration": rnd.trials[rnd.best].get("restoration")})
    return {"concept": c, "scope": config.defense_scope, "points": points}


def _grid_note(config: DemoConfig, row: dict) -> str:
    n, seed = config.study.n_eval, config.study.seed
    shown = ", ".join(repr(p) for p in list(dict.fromkeys(row["prompts"]))[:3])
    return (f"{n} images per stage from the prompts {shown}{', ...' if len(set(row['prompts'])) > 3 else ''}; "
            f"image i uses seed {seed}+i at every stage, so the columns differ only by the weights. "
            f"Defended: {config.defense} filling ({config.defense_scope} scope, scale {config.defense_scale:g}); "
            f"revived after defense: the {row['best_locator']} locator.")


def demo_findings(concepts: dict, config: DemoConfig) -> list[dict]:
    """Verdicts from the numbers: revival, sign recovery, the defense against the best locator, the locator choice."""
    acc = {c: {s: r["stages"][s]["target"] for s in STAGES} for c, r in concepts.items()}
    defense_rows = {c: {**acc[c], "unlearned_preserved": r["stages"]["unlearned"]["preserved"],
                        "defended_preserved": r["stages"]["defended"]["preserved"]} for c, r in concepts.items()}
    label = f"{config.defense} filling ({config.defense_scope} scope, scale {config.defense_scale:g})"
    return [
        revival_finding(acc),
        sign_recovery_finding({c: r["sign_recovery"]["overall"] for c, r in concepts.items()},
                              {c: r["sign_recovery"]["retained"] for c, r in concepts.items()}),
        defense_finding(f"The defense, {label}, withstands the best adaptive locator", defense_rows),
        finding("Which adaptive locator attacked the defended model, and why", None,
                " ".join(f"{c}: {r['best_locator_reason']}." for c, r in concepts.items())
                + " Restoration = <revived, original> / <original, original> over the truly pruned positions "
                "(1 = the erased weights put back exactly, 0 = still erased, < 0 = pushed the wrong way); it "
                "is measured against the true masks, so the demo plays the strongest attacker in the registry."),
    ]


# ---------------------------------------------------------------------------------------------- outputs
def _write_png(image, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp.png")
    image.save(tmp)
    tmp.replace(target)
    return target


def results_csv(result: dict) -> str:
    """One row per concept x stage: erased (target) and preserved accuracy."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["concept", "family", "stage", "erased_accuracy", "preserved_accuracy", "eval_key"])
    for c, r in result["concepts"].items():
        for s in STAGES:
            st = r["stages"][s]
            w.writerow([c, r["family"], s, f"{st['target']:.4f}", f"{st['preserved']:.4f}", st["key"]])
    return buf.getvalue()


def plot_captions(result: dict, config: DemoConfig) -> dict[str, str]:
    """What each plot measures, keyed by plot file stem (used as the report's figure captions)."""
    gen = sorted({config.study.top_ratio, *config.top_ratios_generated})
    t = result["defense_tradeoff"]
    caps = {
        "accuracy_by_stage": "Erased-concept accuracy by stage (generated images, mini-world evaluator).",
        "preserved_by_stage": "Preserved accuracy by stage: the other concepts of each family (for the "
                              "attribute, object accuracy on plain 'a photo of a {object}' prompts).",
        "top_ratio_sweep": "top_ratio sweep. Left: share of the retained signs that match the original "
                           f"(weight space, every ratio). Right: revived erased-concept accuracy, generated only at "
                           f"top_ratio {', '.join(f'{r:g}' for r in gen)}.",
        "defense_tradeoff": f"Defense trade-off on {t['concept']} (Gaussian filling, {t['scope']} scope, scales "
                            + ", ".join(f"{p['scale']:g}" for p in t["points"] if p["scale"] is not None)
                            + "): x = preserved accuracy of the defended model, y = erased-concept accuracy after "
                            "the best adaptive locator's revival (chosen per scale); the star is the undefended "
                            "unlearned model under the plain zeros attack.",
    }
    for c in result["concepts"]:
        caps[f"sign_recovery_{c}"] = (f"Sign recovery per layer, {c}: share of pruned positions whose completed "
                                      f"sign equals the original's (all; retained top {config.study.top_ratio:.0%}).")
    return caps


def write_outputs(run_dir: str | Path, run: DemoRun, base: dict, config: DemoConfig) -> dict[str, str]:
    """Write results.csv, grids/, plots/, report.html and result.json (base fields + the result) into `run_dir`."""
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    result = {**base, **run.result}
    grids = {}
    for c, per_stage in run.images.items():
        for k, s in enumerate(STAGES):
            img = make_grid(per_stage[s], ncols=min(5, len(per_stage[s])), scale=2)
            grids[f"{c}/{s}"] = _write_png(img, run_dir / "grids" / c / f"{k}-{s}.png")
    plots_dir = run_dir / "plots"
    plots = {"accuracy_by_stage": plot_accuracy_by_stage(result["accuracy_by_stage"],
                                                         plots_dir / "accuracy_by_stage.png"),
             "preserved_by_stage": plot_accuracy_by_stage(result["preserved_by_stage"],
                                                          plots_dir / "preserved_by_stage.png",
                                                          title="Preserved accuracy by stage",
                                                          ylabel="accuracy on the other concepts")}
    for c, r in result["concepts"].items():
        plots[f"sign_recovery_{c}"] = plot_sign_recovery(r["sign_recovery"], plots_dir / f"sign_recovery_{c}.png",
                                                         title=f"Sign recovery per layer: {c}")
    plots["top_ratio_sweep"] = plot_top_ratio_sweep(result["top_ratio_sweep"], plots_dir / "top_ratio_sweep.png")
    plots["defense_tradeoff"] = plot_defense_tradeoff(result["defense_tradeoff"]["points"],
                                                      plots_dir / "defense_tradeoff.png")
    captions = plot_captions(result, config)
    atomic_write_text(results_csv(result), run_dir / "results.csv")
    result["timings_s"] = {**result.get("timings_s", {}), "grids + plots": round(time.perf_counter() - t0, 3)}
    result["outputs"] = {"report": "report.html", "csv": "results.csv", "result": "result.json",
                         "grids": {k: str(p.relative_to(run_dir)) for k, p in grids.items()},
                         "plots": {k: str(p.relative_to(run_dir)) for k, p in plots.items()},
                         "plot_captions": captions}
    render_report(result, grids, {captions[k]: p for k, p in plots.items()}, run_dir / "report.html")
    atomic_write_json(result, run_dir / "result.json")
    return {"report": str(run_dir / "report.html"), "result": str(run_dir / "result.json"),
            "csv": str(run_dir / "results.csv")}
