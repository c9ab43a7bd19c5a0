"""`revival demo` as a library: the whole story for a few concepts on the mini model, as one result.

Per concept (by default an object, a style and the attribute): original -> unlearned (ConceptPrune)
-> revived (the data-free attack) -> defended (Gaussian filling, row scope, scale 1) -> revived after
the defense by the adaptive attacker: every registered locator at every budget is tried in weight
space and the attacker keeps the one its own data-free rule prefers (`revival.attack.selection`);
the oracle's choice (by restoration, reading the truth) is reported beside it as an upper bound.
Plus a top_ratio sweep and a Gaussian trade-off on the object concept. Every accuracy carries its
95% interval. The demo composes the same stages and building blocks as the experiments
(`revival.experiments.context`), cached under `<run>/stages`, so an interrupted run resumes.
`write_outputs` renders result.json, results.csv, the image grids, the plots and report.html.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from revival.checkpoints import atomic_write_text
from revival.errors import RevivalError
from revival.evaluate.generate import make_grid
from revival.evaluate.mini_eval import resolve_concept
from revival.evaluate.sd_eval import protocol_of
from revival.experiments.config import ExperimentConfig, read_run_file, write_run_file
from revival.experiments.context import ATTACKER_RULE, ORACLE_RULE, Context, adaptive_round, round_plan, shares_only
from revival.experiments.progress import Progress, StepClock
from revival.findings import (
    INTERVALS,
    THRESHOLDS,
    defense_finding,
    finding,
    revival_finding,
    show,
    sign_recovery_finding,
)
from revival.modelfiles import WORLD_SAMPLING
from revival.report.html import render_report
from revival.report.plots import (
    STAGES,
    plot_accuracy_by_stage,
    plot_defense_tradeoff,
    plot_sign_recovery,
    plot_top_ratio_sweep,
)
from revival.results import write_result
from revival.study import Study, StudySettings
from revival.unlearn import world_of

RUN_FILE = "demo-run.json"  # the run's settings and model fingerprint, written first: what --resume reads


@dataclass
class DemoConfig:
    """Every setting of a demo run (written into result.json and read back by --resume)."""

    concepts: tuple[str, ...] = ("star", "neon", "cage")
    # The profiles (`minisd_profile`, `sd_profile`) set the study. The adaptive attacker tries budgets of 0.5x, 1x
    # and 2x the method's pruned share and picks by its own data-free rule.
    study: StudySettings = field(default_factory=StudySettings)
    defense: str = "gaussian"
    defense_scale: float = 1.0
    defense_scope: str = "row"
    locators: tuple[str, ...] = ()  # empty = every registered locator
    top_ratios: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)  # sign recovery (weight space) at each
    top_ratios_generated: tuple[float, ...] = (0.2, 1.0)  # revived accuracy also generated at these
    tradeoff_scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    tradeoff_concept: str | None = None  # None = the first object concept (else the first concept)


def sd_profile(quick: bool, concepts: tuple[str, ...] | None, sampling: tuple[int, float, int]) -> DemoConfig:
    """A demo on a Stable Diffusion-family model: the paper's skill ratio, the family's sampling, a few prompts per
    concept (20 per Imagenette class or artist; --quick 2), default concepts church and Van Gogh."""
    steps, guidance, batch = sampling
    study = StudySettings(n_eval=2 if quick else 20, eval_steps=steps, guidance=guidance, batch_size=batch,
                          skill_ratio=0.02, budget_factors=(1.0,) if quick else (0.5, 1.0, 2.0))
    concepts = tuple(concepts or ("church", "Van Gogh"))
    if concepts == ("naked",):  # the paper's nudity setting; with other concepts the demo keeps one skill ratio
        study = replace(study, skill_ratio=0.01)
    return DemoConfig(concepts=concepts, study=study,
                      top_ratios_generated=(0.2,) if quick else (0.2, 1.0),
                      tradeoff_scales=(1.0, 2.0) if quick else (0.25, 0.5, 1.0, 2.0))


def minisd_profile(quick: bool, concepts: tuple[str, ...] | None) -> DemoConfig:
    """A demo on a miniature Stable Diffusion (the bundled model, or one from `revival train-mini`): the paper's
    settings (skill_ratio 0.02, attributes 0.01, T = 10), its world's own sampling (`WORLD_SAMPLING`), 32 images of each
    erased concept per stage (--quick 8); preserved accuracy pools a seeded sample of 2 other concepts of the family
    (--quick 1)."""
    steps, guidance, _ = WORLD_SAMPLING["minisd"]
    study = StudySettings(n_eval=8 if quick else 32, eval_steps=steps, guidance=guidance, skill_ratio=0.02,
                          attribute_skill_ratio=0.01, preserved=1 if quick else 2,
                          budget_factors=(1.0,) if quick else (0.5, 1.0, 2.0))
    return DemoConfig(concepts=tuple(concepts or ("star", "neon", "striped")), study=study,
                      top_ratios_generated=(0.2,), tradeoff_scales=(1.0, 2.0) if quick else (0.5, 1.0, 2.0))


def start_run(run_dir: Path, config: DemoConfig, model: dict) -> None:
    """Record the settings and the model's fingerprint ({path, sha256}) so the run can be resumed."""
    write_run_file(run_dir / RUN_FILE, "demo", config, model)


def resume_run(run_dir: Path, model: dict) -> DemoConfig:
    """The settings of an interrupted run; one line when it is not a demo run of this version or the model changed."""
    return read_run_file(Path(run_dir) / RUN_FILE, "demo", model, DemoConfig)


def _tradeoff_concept(config: DemoConfig, families: dict[str, str]) -> str:
    if config.tradeoff_concept:
        return config.tradeoff_concept
    return next((c for c in config.concepts if families[c] == "object"), config.concepts[0])


def plan_steps(config: DemoConfig, attacks: int) -> int:
    """Units of work of a run (for the progress bar); `attacks` per adaptive round."""
    swept = [r for r in config.top_ratios if r != config.study.top_ratio]  # the default ratio is the revived stage
    per_concept = 7 + attacks + len(swept) + len([r for r in swept if r in config.top_ratios_generated])
    return len(config.concepts) * per_concept + len(config.tradeoff_scales) * (attacks + 2)


@dataclass
class DemoRun:
    """A finished demo: the JSON-ready result and the images of every concept at every stage."""

    result: dict
    images: dict[str, dict[str, np.ndarray]]  # {concept: {stage: uint8 (N, H, W, 3)}}


def _acc(stage_acc: dict) -> dict:
    """{target, preserved} as plain accuracies plus their intervals, for result.json."""
    return {"target": stage_acc["target"]["accuracy"], "preserved": stage_acc["preserved"]["accuracy"],
            "target_share": stage_acc["target"], "preserved_share": stage_acc["preserved"]}


def run_demo(pipe, run_dir: str | Path, config: DemoConfig, progress: Progress | None = None,
             evaluators=None) -> DemoRun:
    """Run (or resume) every stage of the story for `config.concepts` on `pipe`: the bundled mini model, or a Stable
    Diffusion-family one measured by `evaluators` (`revival.evaluate.sd_eval.Evaluators`) with the paper's protocol
    (objects: Imagenette classes; styles: the paper's artists)."""
    if not config.concepts:
        raise RevivalError("the demo needs at least one concept")
    world_name = "minisd" if pipe is None else world_of(pipe)
    families = (dict(resolve_concept(c, None, world_name) for c in config.concepts) if world_name != "sd"
                else {c: protocol_of(c)[1] for c in config.concepts})
    run_dir = Path(run_dir)
    study = Study(pipe, run_dir / "stages", config.study, evaluators=evaluators)
    ecfg = ExperimentConfig(concepts=config.concepts, study=config.study, locators=config.locators,
                            defense_scope=config.defense_scope)
    clock = StepClock(progress)
    ctx = Context(ecfg, study, clock)
    clock.plan(plan_steps(config, round_plan(ctx)))
    concepts, images, sweep, cache = {}, {}, {}, {}
    for c in config.concepts:
        stages = {"original": ctx.accuracy(study.original, c, "original")}
        unlearned = ctx.unlearn(c)
        stages["unlearned"] = ctx.accuracy(unlearned, c, "unlearned")
        revived = ctx.revive(unlearned)
        stages["revived"] = ctx.accuracy(revived, c, "revived")
        rnd = adaptive_round(ctx, unlearned, config.defense, config.defense_scale, config.defense_scope)
        stages["defended"] = ctx.accuracy(rnd.defended, c, "defended")
        attacked = rnd.attacks[rnd.attacker]
        stages["revived_after_defense"] = ctx.accuracy(attacked, c, "revived after defense")
        keys = {"original": "original", "unlearned": unlearned.key, "revived": revived.key,
                "defended": rnd.defended.key, "revived_after_defense": attacked.key}
        images[c] = {s: stages[s]["images"] for s in STAGES}
        concepts[c] = {
            "family": families[c],
            "stages": {s: {**_acc(stages[s]), "key": keys[s]} for s in STAGES},
            "prompts": stages["original"]["prompts"],
            "prune": {"density": unlearned.info["density"], "seconds": unlearned.info["timings_s"].get("total")},
            "sign_recovery": revived.info["sign_recovery"], "attack_seconds": revived.info["timings_s"]["total"],
            "defense": {"name": config.defense, "scale": config.defense_scale, "scope": config.defense_scope},
            "locators": rnd.trials, "attacker_choice": rnd.attacker, "oracle_choice": rnd.oracle,
            "best_locator": rnd.attacker, "best_locator_reason": rnd.reason}
        sweep[c] = _top_ratio_sweep(ctx, config, c, unlearned, stages["revived"], revived)
        cache[c] = (unlearned, stages)
    t_concept = _tradeoff_concept(config, families)
    tradeoff = _tradeoff(ctx, config, t_concept, cache)
    clock.finish()
    result = {
        "title": "Concept revival audit: the whole story on "
                 + ("the miniature Stable Diffusion" if world_name == "minisd"
                    else f"{type(pipe).__name__} ({', '.join(config.concepts)})"),
        "concepts": concepts,
        "accuracy_by_stage": {c: {s: r["stages"][s]["target"] for s in STAGES} for c, r in concepts.items()},
        "preserved_by_stage": {c: {s: r["stages"][s]["preserved"] for s in STAGES} for c, r in concepts.items()},
        "top_ratio_sweep": sweep,
        "defense_tradeoff": tradeoff,
        "grid_notes": {c: _grid_note(config, r) for c, r in concepts.items()},
        "findings": demo_findings(concepts, config),
        "thresholds": dict(THRESHOLDS),
        "intervals": INTERVALS,
        "attacker_rule": ATTACKER_RULE,
        "oracle_rule": ORACLE_RULE,
        "seeds": {"images": [config.study.seed + i for i in range(config.study.n_eval)],
                  "prune": config.study.seed, "attack": config.study.seed, "defense": config.study.seed},
        "timings_s": clock.timings_s,
    }
    return DemoRun(result, images)


def _top_ratio_sweep(ctx: Context, config: DemoConfig, c: str, unlearned, revived_acc: dict, revived) -> list:
    """Sign recovery among the retained signs at every top_ratio; revived accuracy where generated."""
    rows = []
    default = config.study.top_ratio
    for r in config.top_ratios:
        if r == default:
            stage, acc = revived, revived_acc
        else:
            stage = ctx.revive(unlearned, f"top{r:g}", top_ratio=r)
            acc = ctx.accuracy(stage, c, "top_ratio sweep") if r in config.top_ratios_generated else None
        sr = stage.info["sign_recovery"]
        rows.append({"top_ratio": r, "sign_recovery_overall": sr["overall"], "sign_recovery_retained": sr["retained"],
                     "revived_accuracy": None if acc is None else acc["target"]["accuracy"],
                     "preserved_accuracy": None if acc is None else acc["preserved"]["accuracy"]})
    return rows


def _tradeoff(ctx: Context, config: DemoConfig, c: str, cache: dict) -> dict:
    """Gaussian scales on one concept: preserved accuracy of the defended model vs the attacker's revival."""
    unlearned, stages = cache[c]
    points = [{"defense": "none", "scale": None, "revival_success": stages["revived"]["target"]["accuracy"],
               "preserved_accuracy": stages["unlearned"]["preserved"]["accuracy"],
               "erased_accuracy": stages["unlearned"]["target"]["accuracy"], "best_locator": "zeros",
               "revival_share": stages["revived"]["target"]}]
    for s in config.tradeoff_scales:
        rnd = adaptive_round(ctx, unlearned, "gaussian", s, config.defense_scope)
        d = shares_only(ctx.accuracy(rnd.defended, c, "defense trade-off"))
        a = shares_only(ctx.accuracy(rnd.attacks[rnd.attacker], c, "defense trade-off"))
        m = rnd.trials[rnd.attacker]
        points.append({"defense": "gaussian", "scale": s, "revival_success": a["target"]["accuracy"],
                       "preserved_accuracy": d["preserved"]["accuracy"], "erased_accuracy": d["target"]["accuracy"],
                       "revival_share": a["target"], "best_locator": rnd.attacker, "oracle_choice": rnd.oracle,
                       "auroc": m.get("auroc"), "restoration": m.get("restoration")})
    return {"concept": c, "scope": config.defense_scope, "points": points}


def _grid_note(config: DemoConfig, row: dict) -> str:
    n, seed = config.study.n_eval, config.study.seed
    shown = ", ".join(repr(p) for p in list(dict.fromkeys(row["prompts"]))[:3])
    return (f"{n} images per stage from the prompts {shown}{', ...' if len(set(row['prompts'])) > 3 else ''}; "
            f"image i uses seed {seed}+i at every stage, so the columns differ only by the weights. "
            f"Defended: {config.defense} filling ({config.defense_scope} scope, scale {config.defense_scale:g}); "
            f"revived after defense: the {row['best_locator']} locator.")


def demo_findings(concepts: dict, config: DemoConfig) -> list[dict]:
    """Verdicts from the shares and their intervals: revival, sign recovery, the defense against the attacker."""
    share = {c: {s: r["stages"][s]["target_share"] for s in STAGES} for c, r in concepts.items()}
    defense_rows = {c: {**share[c], "unlearned_preserved": r["stages"]["unlearned"]["preserved_share"],
                        "defended_preserved": r["stages"]["defended"]["preserved_share"]} for c, r in concepts.items()}
    label = f"{config.defense} filling ({config.defense_scope} scope, scale {config.defense_scale:g})"
    return [
        revival_finding({c: {s: share[c][s] for s in ("original", "unlearned", "revived")} for c in share}),
        sign_recovery_finding({c: r["sign_recovery"] for c, r in concepts.items()},
                              {c: r["sign_recovery"]["retained"] for c, r in concepts.items()}),
        defense_finding(f"The defense, {label}, withstands the adaptive attacker", defense_rows),
        finding("Which adaptive locator the attacker used, and the oracle's choice", None,
                " ".join(f"{c}: {r['best_locator_reason']}; revived after defense "
                         f"{show(r['stages']['revived_after_defense']['target_share'])}."
                         for c, r in concepts.items())),
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
    w.writerow(["concept", "family", "stage", "erased_accuracy", "erased_ci95_low", "erased_ci95_high", "erased_n",
                "preserved_accuracy", "preserved_ci95_low", "preserved_ci95_high", "preserved_n", "eval_key"])
    for c, r in result["concepts"].items():
        for s in STAGES:
            st = r["stages"][s]
            t, p = st["target_share"], st["preserved_share"]
            w.writerow([c, r["family"], s, f"{st['target']:.4f}", *t["ci95"], t["n"], f"{st['preserved']:.4f}",
                        *p["ci95"], p["n"], st["key"]])
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
    write_result(result, run_dir / "result.json")
    return {"report": str(run_dir / "report.html"), "result": str(run_dir / "result.json"),
            "csv": str(run_dir / "results.csv")}
