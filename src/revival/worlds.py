"""The bundled procedural world a pipeline can be measured in, and which one a pipeline draws.

`minisd`: the miniature Stable Diffusion's 64x64 world (`revival.minisd`), recognised by its tokenizer's
vocabulary, so the bundled model and any folder `revival train-mini` exports are measured by that world's
evaluator, through the same code path as any Stable Diffusion folder. Any other pipeline is `sd` and is
measured with the paper's protocol instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from revival.registry import Registry


@dataclass(frozen=True)
class World:
    """One world's vocabulary, prompt templates and evaluator."""

    name: str
    objects: tuple[str, ...]
    scenes: tuple[str, ...]
    styles: tuple[str, ...]
    attributes: tuple[str, ...]  # erasable attributes of any object
    templates: dict[str, str]  # object_in_scene, style, photo, and one per attribute (over {object})
    attribute_heads: dict[str, str]  # attribute -> the evaluator output saying it is shown
    evaluator_path: Path
    loader: Callable[[Path], object] = field(repr=False)
    classifier: Callable[[object, np.ndarray], dict[str, np.ndarray]] = field(repr=False)
    # ConceptPrune's target template of an attribute over {filler}, where it is not "a photo of a {filler} in a
    # {concept}" (e.g. "a photo of a striped {filler}").
    prune_attribute_templates: dict[str, str] = field(default_factory=dict)

    def load_evaluator(self):
        """The world's shipped evaluator (cached: one per process)."""
        return _evaluator(self.name)

    def classify(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Predicted labels of uint8 images (N, size, size, 3): `object`, `style` and one bool per attribute head."""
        return self.classifier(self.load_evaluator(), images)


WORLDS: Registry[Callable[[], World]] = Registry("world")  # name -> builder of the World


@WORLDS.register("minisd", size=64, pipeline="StableDiffusionPipeline")  # size: image side, pixels
def _minisd() -> World:
    from revival.minisd import evaluator, world

    return World("minisd", world.OBJECTS, world.SCENES, world.STYLES, world.ATTRIBUTES,
                 {k: world.TEMPLATES[k] for k in ("object_in_scene", "style", "photo", *world.ATTRIBUTES)},
                 {a: a for a in world.ATTRIBUTES}, Path(evaluator.__file__).parent / "assets" / "evaluator.safetensors",
                 evaluator.load_evaluator, evaluator.classify,
                 prune_attribute_templates={"striped": "a photo of a striped {filler}"})


@cache
def world(name: str) -> World:
    """The world called `name` (`minisd`), built on first use (it imports torch)."""
    return WORLDS.get(name)()


@cache
def _evaluator(name: str):
    w = world(name)
    return w.loader(w.evaluator_path)


@cache
def _minisd_vocabulary() -> frozenset[str]:
    from revival.minisd.pipeline import tokenizer

    return frozenset(tokenizer().get_vocab())


def world_of(pipe) -> str:
    """`minisd` for a pipeline whose tokenizer is the 64x64 world's word-level one (the miniature Stable
    Diffusion), `sd` for any other pipeline."""
    tok = getattr(pipe, "tokenizer", None)
    if tok is not None and len(tok) == len(_minisd_vocabulary()) and frozenset(tok.get_vocab()) == _minisd_vocabulary():
        return "minisd"
    return "sd"
