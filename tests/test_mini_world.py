import numpy as np
import pytest

from revival.mini import world


def test_sample_batch_is_deterministic():
    a, ca, _ = world.sample_batch(16, (0, 7))
    b, cb, _ = world.sample_batch(16, (0, 7))
    c, _, _ = world.sample_batch(16, (0, 8))
    assert np.array_equal(a, b) and ca == cb
    assert not np.array_equal(a, c)
    assert a.shape == (16, 32, 32, 3) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1


def test_world_has_required_concepts():
    assert len(world.OBJECTS) >= 10 and len(world.SCENES) >= 6 and len(world.STYLES) >= 4
    vocab = world.vocabulary()
    for w in (*world.OBJECTS, *world.SCENES, *world.STYLES, world.ATTRIBUTE_WORD):
        assert w in vocab


def test_silhouettes_differ_between_objects():
    rng = np.random.default_rng(0)
    imgs = {o: world.render(world.Spec(o, "snow"), np.random.default_rng(1)) for o in world.OBJECTS}
    keys = list(imgs)
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            assert np.abs(imgs[keys[i]] - imgs[keys[j]]).mean() > 0.01, (keys[i], keys[j])
    assert rng is not None


@pytest.mark.parametrize("family", list(world.TEMPLATES))
def test_caption_round_trip(family):
    rng = np.random.default_rng(3)
    spec = world.random_spec(family, rng)
    text = world.caption(family, spec)
    parsed = world.parse_caption(text)
    assert parsed.object == (spec.object if "{object}" in world.TEMPLATES[family] else None)
    assert parsed.style == spec.style
    assert parsed.caged == spec.caged


def test_styles_and_cage_change_the_image():
    spec = world.Spec("star", "desert")
    base = world.render(spec, np.random.default_rng(5))
    caged = world.render(world.Spec("star", "desert", None, True), np.random.default_rng(5))
    assert np.abs(base - caged).max() > 0.2
    for style in world.STYLES:
        styled = world.render(world.Spec("star", "desert", style), np.random.default_rng(5))
        assert np.abs(base - styled).mean() > 0.02, style


def test_unknown_names_raise():
    with pytest.raises(KeyError, match="known"):
        world.render(world.Spec("unicorn", "desert"), np.random.default_rng(0))
