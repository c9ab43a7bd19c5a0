"""Concept-level accuracy of the mini model, read off its images by the mini-world evaluator.

Families mirror the paper's: `object` ("a {object} in a {scene}" over the 6 scenes, object head),
`style` ("a {object} in the style of {style}" over the 10 objects, style head) and `attribute`
("a photo of a {object} in a cage" over the objects, cage head). The attribute family has one
erasable concept, `cage`; its "preserved" figure comes from the control concept `photo`: object
accuracy on plain "a photo of a {object}" prompts, i.e. whether the model still draws objects.

Image i of every concept is drawn with seed `seed + i`, so the same prompts get the same noise at
every model stage (original, unlearned, revived, defended).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from revival.catalog import CONTROL
from revival.errors import RevivalError
from revival.evaluate.generate import generate
from revival.evaluate.intervals import pooled, share
from revival.mini import world
from revival.mini.evaluator import MiniEvaluator, classify, load_evaluator
from revival.registry import Registry


@dataclass(frozen=True)
class Family:
    """A concept family: its concepts, the prompts of a concept, and which images show it."""

    name: str
    concepts: tuple[str, ...]  # every concept measured in one pass (targets and controls)
    targets: tuple[str, ...]  # concepts a user can erase and evaluate
    prompts: Callable[[str, int], list[str]]  # (concept, n) -> n prompts
    hits: Callable[[str, list[str], dict], np.ndarray]  # (concept, prompts, predictions) -> bool per image


FAMILIES: Registry[Family] = Registry("concept family")


def _register(family: Family) -> None:
    FAMILIES.register(family.name)(family)


def _cycle(template: str, key: str, values: tuple[str, ...], n: int, **fixed: str) -> list[str]:
    return [world.TEMPLATES[template].format(**{key: values[i % len(values)]}, **fixed) for i in range(n)]


_register(Family(
    "object", world.OBJECTS, world.OBJECTS,
    prompts=lambda c, n: _cycle("object_in_scene", "scene", world.SCENES, n, object=c),
    hits=lambda c, prompts, pred: pred["object"] == c,
))
_register(Family(
    "style", world.STYLES, world.STYLES,
    prompts=lambda c, n: _cycle("style", "object", world.OBJECTS, n, style=c),
    hits=lambda c, prompts, pred: pred["style"] == c,
))
_register(Family(
    "attribute", (world.ATTRIBUTE_WORD, CONTROL), (world.ATTRIBUTE_WORD,),
    prompts=lambda c, n: _cycle("attribute" if c == world.ATTRIBUTE_WORD else "photo", "object", world.OBJECTS, n),
    hits=lambda c, prompts, pred: (
        pred["caged"] if c == world.ATTRIBUTE_WORD
        else pred["object"] == np.array([world.parse_caption(p).object for p in prompts])
    ),
))


def known_concepts() -> dict[str, str]:
    """Every concept word that can be evaluated, mapped to its family."""
    return {c: f for f in FAMILIES.names() for c in FAMILIES.get(f).targets}


def resolve_concept(concept: str, family: str | None = None) -> tuple[str, str]:
    """(concept, family) after checking both; the family is inferred from the word when omitted."""
    concept = concept.strip().lower()
    known = known_concepts()
    if family is not None:
        fam = FAMILIES.get(family)
        if concept not in fam.targets:
            raise RevivalError(f"{concept!r} is not a concept of the {family} family; known: {', '.join(fam.targets)}")
        return concept, family
    if concept not in known:
        listing = "; ".join(f"{f}: {', '.join(FAMILIES.get(f).targets)}" for f in FAMILIES.names())
        raise RevivalError(f"unknown concept {concept!r} for the mini model; known concepts are {listing}")
    return concept, known[concept]


@dataclass
class FamilyEval:
    """One generation pass over a family: accuracy, images and prompts per concept."""

    family: str
    per_concept: dict[str, float]
    shares: dict[str, dict]  # {concept: {accuracy, k, n, ci95}} (Wilson 95% over images)
    images: dict[str, np.ndarray] = field(repr=False)
    prompts: dict[str, list[str]] = field(repr=False)
    seeds: list[int] = field(repr=False)


def evaluate_family(
    pipe,
    family: str,
    n_per_concept: int = 32,
    seed: int = 0,
    steps: int = 25,
    guidance: float = 4.0,
    batch_size: int = 64,
    evaluator: MiniEvaluator | None = None,
    progress: bool = False,
    autocast: torch.dtype | None = None,
) -> FamilyEval:
    """Generate `n_per_concept` images of every concept of `family` (image i: seed + i) and score them."""
    fam = FAMILIES.get(family)
    if n_per_concept < 1:
        raise RevivalError(f"n_per_concept must be >= 1, got {n_per_concept}")
    evaluator = evaluator or load_evaluator()
    seeds = [seed + i for i in range(n_per_concept)]
    prompts = {c: fam.prompts(c, n_per_concept) for c in fam.concepts}
    flat = [p for c in fam.concepts for p in prompts[c]]
    images = generate(pipe, flat, seeds * len(fam.concepts), steps, guidance, batch_size, progress=progress,
                      autocast=autocast)
    per_image = {c: images[k * n_per_concept : (k + 1) * n_per_concept] for k, c in enumerate(fam.concepts)}
    shares = {}
    for c in fam.concepts:
        hits = np.asarray(fam.hits(c, prompts[c], classify(evaluator, per_image[c])), bool)
        shares[c] = share(int(hits.sum()), len(hits))
    return FamilyEval(family, {c: s["accuracy"] for c, s in shares.items()}, shares, per_image, prompts, seeds)


def concept_accuracy(per_concept: dict[str, float], concept: str) -> dict[str, float | None]:
    """{target: accuracy of `concept`, preserved: mean accuracy of the family's other concepts (None if none)}."""
    if concept not in per_concept:
        raise RevivalError(f"no accuracy for {concept!r}; measured: {', '.join(per_concept)}")
    others = [a for c, a in per_concept.items() if c != concept]
    return {"target": per_concept[concept], "preserved": float(np.mean(others)) if others else None}


def concept_intervals(shares: dict[str, dict], concept: str) -> dict[str, dict | None]:
    """{target, preserved} as shares with 95% intervals; preserved pools the images of the other concepts."""
    others = [s for c, s in shares.items() if c != concept]
    return {"target": shares[concept], "preserved": pooled(others) if others else None}
