"""Concept-level accuracy of a bundled model, read off its images by its world's evaluator (`revival.worlds`).

Families mirror the paper's: `object` ("a {object} in a {scene}" over the world's scenes, object
head), `style` ("a {object} in the style of {style}" over its objects, style head) and `attribute`
(each attribute's template over the objects, e.g. "a photo of a {object} in a cage", its own head).
The attribute family's "preserved" figure comes from the control concept `photo`: object accuracy
on plain "a photo of a {object}" prompts, i.e. whether the model still draws objects.
World: `minisd` (the miniature Stable Diffusion's 64x64 world, the bundled model's).

Image i of every concept is drawn with seed `seed + i`, so the same prompts get the same noise at
every model stage (original, unlearned, revived, defended).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import torch

from revival.catalog import CONTROL
from revival.errors import RevivalError
from revival.evaluate.generate import generate
from revival.evaluate.intervals import pooled, share
from revival.registry import Registry
from revival.worlds import World, world, world_of


@dataclass(frozen=True)
class Family:
    """A concept family: its concepts, the prompts of a concept, and which images show it."""

    name: str
    concepts: tuple[str, ...]  # every concept measured in one pass (targets and controls)
    targets: tuple[str, ...]  # concepts a user can erase and evaluate
    prompts: Callable[[str, int], list[str]]  # (concept, n) -> n prompts
    hits: Callable[[str, list[str], dict], np.ndarray]  # (concept, prompts, predictions) -> bool per image


def _cycle(template: str, key: str, values: tuple[str, ...], n: int, **fixed: str) -> list[str]:
    return [template.format(**{key: values[i % len(values)]}, **fixed) for i in range(n)]


def _object_of(prompt: str, objects: tuple[str, ...]) -> str | None:
    return next((w for w in prompt.split() if w in objects), None)


def _families_of(w: World) -> Registry[Family]:
    t = w.templates
    reg: Registry[Family] = Registry("concept family")
    reg.register("object")(Family(
        "object", w.objects, w.objects,
        prompts=lambda c, n: _cycle(t["object_in_scene"], "scene", w.scenes, n, object=c),
        hits=lambda c, prompts, pred: pred["object"] == c,
    ))
    reg.register("style")(Family(
        "style", w.styles, w.styles,
        prompts=lambda c, n: _cycle(t["style"], "object", w.objects, n, style=c),
        hits=lambda c, prompts, pred: pred["style"] == c,
    ))
    reg.register("attribute")(Family(
        "attribute", (*w.attributes, CONTROL), w.attributes,
        prompts=lambda c, n: _cycle(t["photo" if c == CONTROL else c], "object", w.objects, n),
        hits=lambda c, prompts, pred: (
            pred["object"] == np.array([_object_of(p, w.objects) for p in prompts]) if c == CONTROL
            else pred[w.attribute_heads[c]]
        ),
    ))
    return reg


@cache
def families(world_name: str = "minisd") -> Registry[Family]:
    """The three concept families of one world (`minisd`)."""
    return _families_of(world(world_name))


def measured_concepts(world_name: str, family: str, concept: str, preserved: int, seed: int = 0) -> tuple[str, ...]:
    """`concept` and a seeded sample of `preserved` other concepts of its family: what preserved accuracy pools when
    not every concept is drawn (the same order for every target of a seed, so targets share images)."""
    order = np.random.default_rng(seed).permutation(families(world_name).get(family).concepts)
    return (concept, *[str(c) for c in order if c != concept][:preserved])


def known_concepts(world_name: str = "minisd") -> dict[str, str]:
    """Every concept word of a world that can be evaluated, mapped to its family."""
    fams = families(world_name)
    return {c: f for f in fams.names() for c in fams.get(f).targets}


def resolve_concept(concept: str, family: str | None = None, world_name: str = "minisd") -> tuple[str, str]:
    """(concept, family) after checking both; the family is inferred from the word when omitted."""
    concept = concept.strip().lower()
    fams = families(world_name)
    known = known_concepts(world_name)
    if family is not None:
        fam = fams.get(family)
        if concept not in fam.targets:
            raise RevivalError(f"{concept!r} is not a concept of the {family} family; known: {', '.join(fam.targets)}")
        return concept, family
    if concept not in known:
        listing = "; ".join(f"{f}: {', '.join(fams.get(f).targets)}" for f in fams.names())
        model = {"minisd": "bundled mini model"}.get(world_name, world_name)
        raise RevivalError(f"unknown concept {concept!r} for the {model}; known concepts are {listing}")
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
    evaluator=None,
    progress: bool = False,
    autocast: torch.dtype | None = None,
    concepts: tuple[str, ...] | None = None,
) -> FamilyEval:
    """Generate `n_per_concept` images of every concept of `family` (image i: seed + i) and score them with the
    evaluator of the pipeline's world (`evaluator` overrides the shipped one); `concepts`: a subset only."""
    world_name = world_of(pipe)
    if world_name == "sd":
        raise RevivalError("this pipeline draws no bundled world (mini or minisd); measure it with the paper's "
                           "protocol (--classifier/--clip)")
    w = world(world_name)
    fam = families(world_name).get(family)
    if n_per_concept < 1:
        raise RevivalError(f"n_per_concept must be >= 1, got {n_per_concept}")
    wanted = fam.concepts if concepts is None else tuple(c for c in fam.concepts if c in concepts)
    evaluator = evaluator if evaluator is not None else w.load_evaluator()
    seeds = [seed + i for i in range(n_per_concept)]
    prompts = {c: fam.prompts(c, n_per_concept) for c in wanted}
    flat = [p for c in wanted for p in prompts[c]]
    images = generate(pipe, flat, seeds * len(wanted), steps, guidance, batch_size, progress=progress,
                      autocast=autocast)
    per_image = {c: images[k * n_per_concept : (k + 1) * n_per_concept] for k, c in enumerate(wanted)}
    shares = {}
    for c in wanted:
        hits = np.asarray(fam.hits(c, prompts[c], w.classifier(evaluator, per_image[c])), bool)
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
