"""Prompt families, prompt files and the bundled world's vocabulary check."""

import pytest

from revival.errors import RevivalError
from revival.minisd import world
from revival.minisd.pipeline import tokenizer
from revival.unlearn.prompts import PromptPairs, check_vocabulary, family_prompts, read_prompt_pairs
from revival.worlds import world_of


def test_sd_families_use_the_papers_fillers():
    obj = family_prompts("church", "object", "sd")
    assert len(obj.base) == len(obj.target) == 12
    assert (obj.base[0], obj.target[0]) == ("a road", "a church in a road")
    style = family_prompts("Van Gogh", "style", "sd")
    assert len(style.base) == 20
    assert (style.base[0], style.target[0]) == ("a photo of a cat", "a cat in the style of Van Gogh")
    nude = family_prompts("naked", "attribute", "sd")
    assert len(nude.base) == 18
    assert "a photo of a naked group of friends" in nude.target
    assert all(p == p.strip() for p in nude.base + nude.target)


def test_minisd_families_use_the_bundled_world():
    obj = family_prompts("star", "object", "minisd")
    assert obj.base == tuple(f"a {s}" for s in world.SCENES)
    assert obj.target[0] == f"a star in a {world.SCENES[0]}"
    style = family_prompts("neon", "style", "minisd")
    assert style.target[0] == world.TEMPLATES["style"].format(object=world.OBJECTS[0], style="neon")
    for attribute in world.ATTRIBUTES:
        pairs = family_prompts(attribute, "attribute", "minisd")
        assert pairs.base[0] == world.TEMPLATES["photo"].format(object=world.OBJECTS[0])
        assert pairs.target[0] == world.TEMPLATES[attribute].format(object=world.OBJECTS[0])
    with pytest.raises(RevivalError, match="unknown prompt world 'mini'; known: sd, minisd"):
        family_prompts("star", "object", "mini")  # the first generation's world is gone


def test_unknown_family_and_empty_concept():
    with pytest.raises(RevivalError, match="object, style, attribute"):
        family_prompts("star", "colour", "minisd")
    with pytest.raises(RevivalError, match="empty"):
        family_prompts("  ", "object", "sd")


def test_world_of(random_mini_pipeline):
    assert world_of(random_mini_pipeline) == "minisd"
    assert world_of(object()) == "sd"


def test_read_prompt_pairs_csv_and_tsv(tmp_path):
    csv_file = tmp_path / "p.csv"
    csv_file.write_text('base,target\na road,"a church, big, in a road"\na park,a church in a park\n')
    assert read_prompt_pairs(csv_file) == PromptPairs(("a road", "a park"),
                                                      ("a church, big, in a road", "a church in a park"))
    tsv_file = tmp_path / "p.tsv"
    tsv_file.write_text("Target\tBase\na star in a desert\ta desert\n")
    assert read_prompt_pairs(tsv_file) == PromptPairs(("a desert",), ("a star in a desert",))


@pytest.mark.parametrize("text, match", [
    ("prompt,other\na,b\n", "base` and `target"),
    ("base,target\n", "no prompt pairs"),
    ("base,target\na road,\n", "line 2"),
    ("", "base` and `target"),
])
def test_bad_prompt_files(tmp_path, text, match):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(RevivalError, match=match):
        read_prompt_pairs(f)
    with pytest.raises(RevivalError, match="no such prompt file"):
        read_prompt_pairs(tmp_path / "missing.csv")


def test_check_vocabulary_lists_the_vocabulary():
    tok = tokenizer()
    for concept in world.CONCEPTS:
        check_vocabulary(tok, family_prompts(concept, world.family_of(concept), "minisd"))
    with pytest.raises(RevivalError) as e:
        check_vocabulary(tok, family_prompts("dragon", "object", "minisd"))
    msg = str(e.value)
    assert "'dragon'" in msg and "vocabulary" in msg and "star" in msg and "\n" not in msg
