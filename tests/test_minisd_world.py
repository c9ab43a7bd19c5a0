import pytest

from revival.minisd import world


def test_every_concept_has_one_family():
    assert world.CONCEPTS == (*world.OBJECTS, *world.STYLES, *world.ATTRIBUTES)
    assert [world.family_of(c) for c in ("star", "neon", "cage", "striped")] == ["object", "style", "attribute",
                                                                                 "attribute"]
    assert {world.family_of(c) for c in world.CONCEPTS} == set(world.FAMILIES)
    with pytest.raises(KeyError, match="unknown concept 'nudity'"):
        world.family_of("nudity")


def test_prune_prompt_pairs_are_the_paper_templates_on_the_minisd_vocabulary():
    obj = world.prune_prompt_pairs("object", "star")
    assert obj.base == tuple(f"a {s}" for s in world.SCENES)
    assert obj.target == tuple(f"a star in a {s}" for s in world.SCENES)
    style = world.prune_prompt_pairs("style", "sepia")
    assert style.base == tuple(f"a photo of a {o}" for o in world.OBJECTS)
    assert style.target == tuple(f"a {o} in the style of sepia" for o in world.OBJECTS)
    cage = world.prune_prompt_pairs("attribute", "cage")
    assert cage.base == style.base
    assert cage.target[0] == "a photo of a ball in a cage"
    assert world.prune_prompt_pairs("attribute", "striped").target[-1] == "a photo of a striped flower"
    vocab = set(world.vocabulary())
    for c in world.CONCEPTS:
        pairs = world.prune_prompt_pairs(world.family_of(c), c)
        assert len(pairs.base) == len(pairs.target)
        assert all(set(p.split()) <= vocab for p in pairs.base + pairs.target), c


def test_prune_prompt_pairs_refuse_a_concept_of_another_family():
    with pytest.raises(ValueError, match="'neon' is of family 'style', not 'object'"):
        world.prune_prompt_pairs("object", "neon")
    with pytest.raises(KeyError, match="unknown family"):
        world.prune_prompt_pairs("artist", "neon")
