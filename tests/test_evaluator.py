"""The shipped mini-world evaluator: accuracy on a fresh seeded batch, classify's outputs, determinism."""

import numpy as np
import pytest
import torch

from revival.errors import RevivalError
from revival.mini import world
from revival.mini.evaluator import (
    DEFAULT_PATH,
    OBJECT_LABELS,
    STYLE_LABELS,
    classify,
    heldout_accuracy,
    junk_image,
    load_evaluator,
    save_evaluator,
    train_evaluator,
)


@pytest.fixture(scope="module")
def evaluator():
    torch.set_num_threads(1)
    return load_evaluator()


def test_shipped_weights_are_small_fp16():
    from safetensors.torch import load_file

    assert DEFAULT_PATH.stat().st_size < 2_000_000
    assert all(v.dtype == torch.float16 for v in load_file(str(DEFAULT_PATH)).values())


def test_heldout_accuracy_on_fresh_batch(evaluator):
    acc = heldout_accuracy(evaluator, n=500, seed=20240601)  # a seed never used in training
    assert acc["object"] >= 0.98, acc
    assert acc["style"] >= 0.98, acc
    assert acc["attribute"] >= 0.98, acc


def test_classify_shapes_and_labels(evaluator):
    rng = np.random.default_rng(7)
    specs = [world.Spec("star", "desert"), world.Spec(None, "ocean", "neon"), world.Spec("ball", "snow", None, True)]
    images = (np.stack([world.render(s, rng) for s in specs]) * 255).round().astype(np.uint8)
    out = classify(evaluator, images)
    assert out["object_probs"].shape == (3, len(OBJECT_LABELS))
    assert out["style_probs"].shape == (3, len(STYLE_LABELS))
    assert out["caged"].shape == out["caged_prob"].shape == (3,)
    np.testing.assert_allclose(out["object_probs"].sum(1), 1, atol=1e-5)
    assert list(out["object"]) == ["star", "none", "ball"]
    assert list(out["style"]) == ["none", "neon", "none"]
    assert list(out["caged"]) == [False, False, True]


def test_failed_generations_read_as_nothing(evaluator):
    rng = np.random.default_rng(11)
    images = (np.stack([junk_image(rng) for _ in range(40)]) * 255).round().astype(np.uint8)
    out = classify(evaluator, images)
    assert np.mean(out["object"] == "none") >= 0.9
    assert np.mean(~out["caged"]) >= 0.9


def test_classify_rejects_wrong_shape(evaluator):
    with pytest.raises(ValueError, match="32, 32, 3"):
        classify(evaluator, np.zeros((2, 64, 64, 3), np.uint8))


def test_training_is_deterministic_and_round_trips(tmp_path):
    torch.set_num_threads(1)
    a, rec = train_evaluator(steps=2, batch_size=8, seed=3, heldout=16)
    b, _ = train_evaluator(steps=2, batch_size=8, seed=3, heldout=16)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    path = save_evaluator(a, rec, tmp_path / "ev.safetensors")
    c = load_evaluator(path)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    for ya, yc in zip(a(x), c(x), strict=True):
        torch.testing.assert_close(ya, yc)
    assert set(rec["heldout_accuracy"]) >= {"object", "style", "attribute"}


def test_missing_weights_error(tmp_path):
    with pytest.raises(RevivalError, match="train-evaluator"):
        load_evaluator(tmp_path / "nope.safetensors")
