"""What an experiment varies, its JSON form, and the run file that `--resume` reads back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from revival.attack import LOCATORS
from revival.checkpoints import atomic_write_json
from revival.defend import DEFENSES
from revival.errors import RevivalError
from revival.jsonfiles import read_json
from revival.study import StudySettings

RUN_FORMAT = 2  # version of run files and stage caches; runs from other versions are refused on --resume


@dataclass
class ExperimentConfig:
    """Everything an experiment varies (written into its result.json)."""

    concepts: tuple[str, ...] = ("star", "neon", "cage")
    family: str | None = None  # prompt family for pruning; None = inferred from the word (mini model)
    study: StudySettings = field(default_factory=lambda: StudySettings(n_eval=10, eval_steps=10))
    magnitudes: tuple[str, ...] = ("nms", "completed", "row_mean", "sampled", "oracle_sign", "oracle_magnitude",
                                   "random_sign")
    defenses: tuple[str, ...] = ()  # rq3; empty = "none" and every registered defense
    locators: tuple[str, ...] = ()  # empty = every registered locator
    scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)  # rq4
    defense_scale: float = 1.0  # rq3
    defense_scope: str = "row"
    seeds: tuple[int, ...] = (0,)  # ConceptPrune activation-collection seeds (rq1, rq3: mean and spread over them)

    def locator_names(self) -> list[str]:
        """The locators to try (every registered one by default)."""
        return list(self.locators) or LOCATORS.names()

    def defense_names(self) -> list[str]:
        """The defenses rq3 compares ("none" = the unlearned zeros as published)."""
        return list(self.defenses) or ["none", *DEFENSES.names()]


def quick_config(concepts: tuple[str, ...] = ExperimentConfig.concepts) -> ExperimentConfig:
    """Fewer, shorter generations: a smoke run in about a minute per experiment on 2 CPU cores."""
    return ExperimentConfig(concepts=tuple(concepts), study=StudySettings(n_eval=4, eval_steps=8))


def config_to_dict(config) -> dict:
    """A (nested) config dataclass as JSON-ready data."""
    return asdict(config)


def config_from_dict(cls, data: Mapping):
    """Inverse of `config_to_dict` for ExperimentConfig-like classes (tuples and nested StudySettings restored)."""
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        v = data[f.name]
        if f.name == "study":
            v = StudySettings(**{k: tuple(x) if isinstance(x, list) else x for k, x in v.items()})
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)


def write_run_file(path: Path, kind: str, config, model: dict) -> None:
    """The run's settings, kind and model fingerprint, written first: what `--resume` reads."""
    atomic_write_json({"format": RUN_FORMAT, "kind": kind, "config": config_to_dict(config), "model": model}, path)


def read_run_file(path: Path, kind: str, model: dict, cls):
    """The settings of an interrupted run; one-line errors for another version, another kind or other weights."""
    noun = kind.split()[0]
    article = "an" if noun[0] in "aeiou" else "a"
    if not path.is_file():
        raise RevivalError(f"{path.parent}: not {article} {noun} run folder ({path.name} is missing)")
    saved = read_json(path)
    if not (isinstance(saved.get("config"), dict) and isinstance(saved.get("model"), dict)):
        raise RevivalError(f"{path}: not {article} {noun} run file (expected format, kind, config and model)")
    if saved.get("format") != RUN_FORMAT:
        raise RevivalError(f"{path}: run written by another version of revival (run format "
                           f"{saved.get('format', 'none')}, this one reads {RUN_FORMAT}); start a new run, "
                           "nothing was changed")
    if saved.get("kind") != kind:
        raise RevivalError(f"{path}: holds a {str(saved.get('kind'))[:40]} run, not {kind}; nothing was changed")
    if saved.get("model", {}).get("sha256") != model.get("sha256"):
        raise RevivalError(f"{path}: the run was started on other model weights than {model.get('path')}; start "
                           "a new run, nothing was changed")
    try:
        return config_from_dict(cls, saved["config"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise RevivalError(f"{path}: malformed run settings ({e}); nothing was changed") from None
