"""Concept-level metrics of the bundled model's world: plumbing on a random-init miniature Stable Diffusion (tiny n,
2 steps)."""

import numpy as np
import pytest
import torch

from revival.errors import RevivalError
from revival.evaluate.mini_eval import concept_accuracy, evaluate_family, known_concepts, resolve_concept
from revival.minisd import world
from revival.worlds import world as world_named


@pytest.fixture(scope="module")
def pipe(random_mini_pipeline):
    torch.set_num_threads(1)
    return random_mini_pipeline


@pytest.mark.parametrize("family,concepts", [("object", world.OBJECTS), ("style", world.STYLES),
                                             ("attribute", (*world.ATTRIBUTES, "photo"))])
def test_evaluate_family_fractions(pipe, family, concepts):
    ev = evaluate_family(pipe, family, n_per_concept=1, seed=5, steps=2)
    assert list(ev.per_concept) == list(concepts)
    assert all(0.0 <= v <= 1.0 for v in ev.per_concept.values())
    assert all(ev.images[c].shape == (1, 64, 64, 3) and ev.images[c].dtype == np.uint8 for c in concepts)


def test_evaluate_family_is_deterministic_and_follows_templates(pipe):
    ev_model = world_named("minisd").load_evaluator()
    a = evaluate_family(pipe, "attribute", n_per_concept=3, seed=5, steps=2, evaluator=ev_model)
    b = evaluate_family(pipe, "attribute", n_per_concept=3, seed=5, steps=2, evaluator=ev_model)
    assert a.per_concept == b.per_concept
    for c in a.images:
        np.testing.assert_array_equal(a.images[c], b.images[c])
    assert a.seeds == [5, 6, 7]
    assert a.prompts["cage"] == ["a photo of a ball in a cage", "a photo of a box in a cage",
                                 "a photo of a pyramid in a cage"]
    assert a.prompts["striped"] == ["a photo of a striped ball", "a photo of a striped box",
                                    "a photo of a striped pyramid"]
    assert a.prompts["photo"] == ["a photo of a ball", "a photo of a box", "a photo of a pyramid"]


def test_concept_accuracy():
    acc = concept_accuracy({"a": 0.25, "b": 1.0, "c": 0.5}, "a")
    assert acc == {"target": 0.25, "preserved": 0.75}
    with pytest.raises(RevivalError, match="measured: a, b"):
        concept_accuracy({"a": 0.1, "b": 0.2}, "z")


def test_resolve_concept():
    assert resolve_concept("Star", None, "minisd") == ("star", "object")
    assert resolve_concept("neon", None, "minisd") == ("neon", "style")
    assert resolve_concept("cage", None, "minisd") == ("cage", "attribute")
    assert set(known_concepts("minisd")) == set(world.CONCEPTS)
    assert resolve_concept("striped") == ("striped", "attribute")  # the bundled model's world by default
    with pytest.raises(RevivalError, match="unknown concept 'dragon' for the bundled mini model; known concepts are "
                                           "object: ball"):
        resolve_concept("dragon", None, "minisd")
    with pytest.raises(RevivalError, match="not a concept of the style family"):
        resolve_concept("star", "style", "minisd")
    with pytest.raises(RevivalError, match="unknown concept family"):
        resolve_concept("star", "colour", "minisd")
    with pytest.raises(RevivalError, match="unknown world 'mini'"):
        resolve_concept("star", None, "mini")  # the first generation's world is gone
