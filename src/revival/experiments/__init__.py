"""The paper's research questions as named, reproducible experiments (`revival experiment rq1..rq4`).

Each experiment composes the study's stages (`revival.study`, `revival.stages`) through the
building blocks of `revival.experiments.context`, returns its figures (accuracies as shares with
95% intervals), and its findings and plot are computed from those figures alone. A registry entry
carries the experiment's metadata (title, question, whether it needs generated images).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from revival import catalog
from revival.errors import RevivalError
from revival.experiments import rq1, rq2, rq3, rq4
from revival.experiments.config import ExperimentConfig, config_from_dict, config_to_dict, quick_config
from revival.experiments.context import Context
from revival.experiments.progress import Progress, StepClock
from revival.findings import INTERVALS, THRESHOLDS
from revival.registry import Registry
from revival.study import Study


@dataclass(frozen=True)
class Experiment:
    """A named research question: how to run it, judge it and draw it."""

    name: str
    title: str
    question: str
    run: Callable[[Context], dict]
    findings: Callable[[Mapping], list[dict]]
    plot: Callable[[Mapping, Path], Path]

    @property
    def needs_images(self) -> bool:
        """False for weight-space experiments (they run on any model, given its unlearned weights and masks)."""
        return EXPERIMENTS.meta(self.name)["needs_images"]


EXPERIMENTS: Registry[Experiment] = Registry("experiment")
for _mod, _title, _images in (
    (rq1, "RQ1: revival from the positions alone", True),
    (rq2, "RQ2: signs versus magnitudes", True),
    (rq3, "RQ3: which defenses hide the positions", False),
    (rq4, "RQ4: the Gaussian trade-off", True),
):
    _name = _mod.__name__.rsplit(".", 1)[1]
    EXPERIMENTS.register(_name, needs_images=_images)(Experiment(
        _name, _title, catalog.EXPERIMENT_QUESTIONS[_name], _mod.run, _mod.findings, _mod.plot))


def run_experiment(name: str, study: Study | None, config: ExperimentConfig,
                   given: dict[str, tuple[dict[str, Tensor], dict[str, Tensor]]] | None = None,
                   progress: Progress | None = None) -> dict:
    """Run experiment `name`: {experiment, title, question, figures, findings, thresholds, timings_s}.

    `study` runs every stage (cached); `given` ({label: (unlearned weights, true masks)}) replaces the
    pruning for the weight-space experiment (rq3), and then `study` may be None.
    """
    exp = EXPERIMENTS.get(name)
    if study is None and (exp.needs_images or given is None):
        raise RevivalError(f"{name} needs a model to {'generate images from' if exp.needs_images else 'prune'}")
    if given is not None and exp.needs_images:
        raise RevivalError(f"{name} measures generated images: it prunes the model itself and takes no given masks")
    clock = StepClock(progress)
    figures = exp.run(Context(config, study, clock, given))
    clock.finish()
    return {"experiment": name, "title": exp.title, "question": exp.question, "figures": figures,
            "findings": exp.findings(figures), "thresholds": dict(THRESHOLDS), "intervals": INTERVALS,
            "timings_s": clock.timings_s}


__all__ = ["EXPERIMENTS", "Context", "Experiment", "ExperimentConfig", "Progress", "StepClock", "config_from_dict",
           "config_to_dict", "quick_config", "run_experiment"]
