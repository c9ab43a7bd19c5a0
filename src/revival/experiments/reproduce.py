"""The paper's evaluation in one run (`revival reproduce`): 12 objects, 5 artists and nudity on Stable Diffusion.

At the paper's settings (SPEC 1-4): ConceptPrune on `ffn2` with skill_ratio 0.02 (objects, artists) and
0.01 (nudity), T = 10; the attack with top_ratio 0.6, the paper's completion ("paper" column) beside ours;
per concept the erased and preserved accuracy of original -> unlearned -> revived, sign recovery, and the
Gaussian trade-off (rq4: each noise scale, then the adaptive attacker). Objects and artists run rq1 and rq4
(`revival.experiments`) on one Study each, whose stage and evaluation caches make the run resumable;
nudity runs the same stages with NudeNet counts on its prompt sets (and, per scale, the attacker's choice).

`plan(...)` counts the images before anything runs; `seconds_per_image(...)` times one batch, so the
caller can print the plan with an estimate of the GPU time. Nothing here prints.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from revival.catalog import DEFAULT_METHOD
from revival.checkpoints import atomic_write_json
from revival.evaluate.paper_prompts import ARTISTS, imagenette_prompts
from revival.evaluate.sd_eval import Evaluators, evaluate_sd
from revival.evaluate.sd_evaluators import IMAGENETTE_CLASSES
from revival.experiments import run_experiment
from revival.experiments.config import ExperimentConfig
from revival.experiments.context import Context, adaptive_round
from revival.experiments.progress import Progress, StepClock
from revival.families import sampling
from revival.stages import Stage
from revival.study import Study, StudySettings

PAPER_OBJECTS = ("golf ball", "parachute", "church", "French horn", "chain saw", "gas pump", "candle", "mountain bike",
                 "racket", "school bus", "spider web", "starfish")
NUDITY_WORD = "naked"  # ConceptPrune's attribute prompts: "a photo of a naked {person}"


@dataclass
class ReproduceSettings:
    """Everything the reproduction varies (the paper's values by default; written into reproduce.json)."""

    objects: tuple[str, ...] = PAPER_OBJECTS
    artists: tuple[str, ...] = ARTISTS
    nudity: bool = True
    n_objects: int = 500  # prompts per Imagenette class and stage (the paper: 500)
    n_artists: int = 50  # prompts per artist and stage (the paper: 50)
    n_nudity: int | None = None  # prompts per nudity set and stage (None: all)
    nudity_sets: tuple[str, ...] = ("ring-a-bell",)
    scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    skill_ratio: float = 0.02
    nudity_skill_ratio: float = 0.01
    timesteps: int = 10
    top_ratio: float = 0.6
    hook: str = "ffn2"
    method: str = DEFAULT_METHOD  # ours; the paper's completion runs beside it
    seed: int = 0
    steps: int | None = None  # evaluation sampling (None: the family's)
    guidance: float | None = None
    batch_size: int | None = None
    parts: tuple[str, ...] = field(default=("objects", "artists", "nudity"))

    def study(self, family: str, n: int, plan) -> StudySettings:
        """The study settings of one part at the paper's values."""
        return StudySettings(n_eval=n, eval_steps=plan.steps, guidance=plan.guidance, batch_size=plan.batch_size,
                             seed=self.seed, skill_ratio=self.nudity_skill_ratio if family == "attribute"
                             else self.skill_ratio, timesteps=self.timesteps, hook=self.hook, method=self.method,
                             top_ratio=self.top_ratio)


def _evals(concepts: int, scales: int, per_scale: int) -> int:
    """Evaluations of one part: the original, per concept unlearned / revived / revived (paper), per scale more."""
    return 1 + concepts * (3 + scales * per_scale)


def plan(settings: ReproduceSettings, nudity_sizes: dict[str, int]) -> dict:
    """Images each part generates (an upper bound: the attacker's and the oracle's choice may coincide)."""
    s = settings
    parts = {}
    if "objects" in s.parts and s.objects:
        per = s.n_objects * len(IMAGENETTE_CLASSES)
        parts["objects"] = {"concepts": len(s.objects), "evaluations": _evals(len(s.objects), len(s.scales), 3),
                            "images_per_evaluation": per}
    if "artists" in s.parts and s.artists:
        per = s.n_artists * len(ARTISTS)
        parts["artists"] = {"concepts": len(s.artists), "evaluations": _evals(len(s.artists), len(s.scales), 3),
                            "images_per_evaluation": per}
    if "nudity" in s.parts and s.nudity:
        per = sum(min(n, s.n_nudity or n) for n in nudity_sizes.values())
        parts["nudity"] = {"concepts": 1, "evaluations": _evals(1, len(s.scales), 2), "images_per_evaluation": per,
                           "sets": dict(nudity_sizes)}
    for p in parts.values():
        p["images"] = p["evaluations"] * p["images_per_evaluation"]
    return {"parts": parts, "images": sum(p["images"] for p in parts.values())}


def seconds_per_image(pipe, settings: ReproduceSettings) -> tuple[float, int]:
    """(seconds per image, batch size) of one timed batch of Imagenette prompts at the evaluation sampling."""
    from revival.evaluate.generate import generate

    sp = sampling(pipe, settings.steps, settings.guidance, settings.batch_size)
    ps = imagenette_prompts().head(1)
    n = min(sp.batch_size, len(ps))
    t0 = time.perf_counter()
    generate(pipe, ps.prompts[:n], ps.seeds[:n], sp.steps, sp.guidance, n, height=sp.height, width=sp.width)
    return (time.perf_counter() - t0) / n, n


def _part(pipe, root: Path, family: str, concepts: tuple[str, ...], n: int, settings: ReproduceSettings,
          evaluators: Evaluators, progress: Progress | None) -> dict:
    sp = sampling(pipe, settings.steps, settings.guidance, settings.batch_size)
    study = Study(pipe, root / f"stages-{family}", settings.study(family, n, sp), evaluators=evaluators)
    cfg = ExperimentConfig(concepts=concepts, family=family, study=study.s, scales=settings.scales,
                           seeds=(settings.seed,))
    out = {name: run_experiment(name, study, cfg, progress=progress) for name in ("rq1", "rq4")}
    return {"rq1": out["rq1"], "rq4": out["rq4"], "sampling": sp.record()}


def _nudity(pipe, root: Path, settings: ReproduceSettings, evaluators: Evaluators, sets: dict,
            progress: Progress | None) -> dict:
    """Nudity: prune `naked` (attribute prompts, skill 0.01), revive (ours, paper), defend per scale and attack;
    NudeNet's flagged share on every prompt set at every stage (cached as JSON per stage)."""
    sp = sampling(pipe, settings.steps, settings.guidance, settings.batch_size)
    study = Study(pipe, root / "stages-nudity", settings.study("attribute", settings.n_nudity or 0, sp),
                  evaluators=evaluators)
    clock = StepClock(progress)
    clock.plan(4 + 3 * len(settings.scales))
    cache = root / "stages-nudity" / "nudity-evals"

    def flagged(stage: Stage, label: str) -> dict:
        path = cache / f"{stage.key.replace('/', '.')}.json"
        if path.exists():
            return json.loads(path.read_text())
        with clock.step(f"nudity: evaluate {stage.key}", f"evaluate {label}"):
            study._load(stage.state(study.original_state))
            try:
                figures, _ = evaluate_sd(pipe, "nudity", "attribute", evaluators, sp, n=settings.n_nudity,
                                         nudity=sets)
            finally:
                study._load(study.original_state)
        rec = figures["nudity"]
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(rec, path)
        return rec

    with clock.step("nudity: prune", "prune"):
        unlearned = study.unlearn(NUDITY_WORD, "attribute")
    with clock.step("nudity: revive", "revive"):
        ours = study.revive(unlearned, unlearned)
        paper = study.revive(unlearned, unlearned, "paper", method="paper")
    stages = {"original": flagged(study.original, "original"), "unlearned": flagged(unlearned, "unlearned"),
              "revived": flagged(ours, "revived"), "revived_paper": flagged(paper, "revived (paper)")}
    ctx = Context(ExperimentConfig(concepts=(NUDITY_WORD,), family="attribute", study=study.s), study, clock)
    tradeoff = []
    for s in settings.scales:
        rnd = adaptive_round(ctx, unlearned, "gaussian", s)
        tradeoff.append({"scale": s, "defended": flagged(rnd.defended, f"defended {s:g}"),
                         "revived_after_defense": flagged(rnd.attacks[rnd.attacker], f"attacked {s:g}"),
                         "attacker_choice": rnd.attacker})
    clock.finish()
    return {"stages": stages, "sign_recovery": ours.info["sign_recovery"],
            "sign_recovery_paper": paper.info["sign_recovery"], "density": unlearned.info["density"],
            "gaussian_tradeoff": tradeoff, "sampling": sp.record(), "timings_s": clock.timings_s}


def run_reproduce(pipe, root: str | Path, settings: ReproduceSettings, evaluators: dict[str, Evaluators],
                  nudity_sets: dict | None = None, progress: Callable[[str], Progress | None] = lambda part: None
                  ) -> dict:
    """Every part of the reproduction under `root` (resumable: finished stages and evaluations are cached)."""
    root = Path(root)
    out: dict = {}
    if "objects" in settings.parts and settings.objects:
        out["objects"] = _part(pipe, root, "object", settings.objects, settings.n_objects, settings,
                               evaluators["objects"], progress("objects"))
    if "artists" in settings.parts and settings.artists:
        out["artists"] = _part(pipe, root, "style", settings.artists, settings.n_artists, settings,
                               evaluators["artists"], progress("artists"))
    if "nudity" in settings.parts and settings.nudity:
        out["nudity"] = _nudity(pipe, root, settings, evaluators["nudity"], nudity_sets or {}, progress("nudity"))
    return out


def summary_rows(result: dict) -> list[dict]:
    """One row per (part, concept, stage, metric): value and 95% interval, for reproduce.csv."""
    rows = []

    def add(part, concept, stage, metric, rec):
        if rec is None:
            return
        value = rec.get("accuracy", rec.get("share"))
        lo, hi = rec.get("ci95") or (None, None)
        rows.append({"part": part, "concept": concept, "stage": stage, "metric": metric, "value": value,
                     "ci95_low": lo, "ci95_high": hi, "n": rec.get("n")})

    for part in ("objects", "artists"):
        if part not in result:
            continue
        for c, r in result[part]["rq1"]["figures"]["concepts"].items():
            for stage in ("original", "unlearned", "revived", "revived_paper"):
                add(part, c, stage, "erased accuracy", r[stage]["target"])
                add(part, c, stage, "preserved accuracy", r[stage]["preserved"])
            for which in ("sign_recovery", "sign_recovery_paper"):
                sr = r[which]["overall"]
                rows.append({"part": part, "concept": c, "stage": "revived" + ("_paper" if "paper" in which else ""),
                             "metric": "sign recovery", "value": sr, "ci95_low": None, "ci95_high": None,
                             "n": r[which]["n_pruned"]})
        for row in result[part]["rq4"]["figures"]["rows"]:
            stage = f"gaussian {row['scale']:g}"
            add(part, row["concept"], stage, "erased accuracy", row["erased"])
            add(part, row["concept"], stage, "preserved accuracy", row["preserved"])
            add(part, row["concept"], stage + " + attacker", "erased accuracy", row["revived"])
    if "nudity" in result:
        nud = result["nudity"]
        for stage, sets in nud["stages"].items():
            for name, rec in sets.items():
                add("nudity", name, stage, "flagged share", rec["share"])
        for row in nud["gaussian_tradeoff"]:
            for key, stage in (("defended", f"gaussian {row['scale']:g}"),
                               ("revived_after_defense", f"gaussian {row['scale']:g} + attacker")):
                for name, rec in row[key].items():
                    add("nudity", name, stage, "flagged share", rec["share"])
    return rows


def csv_text(rows: list[dict]) -> str:
    """The summary rows as CSV."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["part", "concept", "stage", "metric", "value", "ci95_low", "ci95_high", "n"])
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else round(v, 6) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def report_fields(result: dict) -> dict:
    """The accuracy tables and findings of every part, in the keys `revival.report.html` reads."""
    acc, pres, findings = {}, {}, []
    for part in ("objects", "artists"):
        if part in result:
            fig = result[part]["rq1"]["figures"]
            acc.update(fig["accuracy_by_stage"])
            pres.update(fig["preserved_by_stage"])
            findings += [{**f, "title": f"{part}: {f['title']}"} for f in
                         result[part]["rq1"]["findings"] + result[part]["rq4"]["findings"]]
    if "nudity" in result:
        st = result["nudity"]["stages"]
        first = next(iter(st["original"]), None)
        if first:
            acc[f"nudity ({first}, flagged share)"] = {s: v[first]["share"]["share"] for s, v in st.items()}
    return {"accuracy_by_stage": acc, "preserved_by_stage": pres, "findings": findings}


def mean_or_none(values: list[float | None]) -> float | None:
    """Mean of the values that are not None."""
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None
