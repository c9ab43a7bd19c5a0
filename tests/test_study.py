import pytest
import torch

from revival.errors import RevivalError
from revival.minisd import world
from revival.stages import Stage, Unlearned
from revival.study import Study, StudySettings, defense_tag, family_of

TINY = StudySettings(n_eval=2, eval_steps=2, timesteps=2, batch_size=32)


def test_study_stages_cache_and_resume(random_mini_pipeline, tmp_path):
    study = Study(random_mini_pipeline, tmp_path, TINY)
    unlearned = study.unlearn("star", "object")
    name = next(iter(unlearned.masks))
    assert isinstance(unlearned, Unlearned) and unlearned.info["density"] > 0
    assert torch.all(unlearned.layers[name][unlearned.masks[name]] == 0)
    revived = study.revive(unlearned, unlearned)
    sr = revived.info["sign_recovery"]
    assert 0 <= sr["overall"] <= 1 and sr["n_pruned"] == int(sum(m.sum() for m in unlearned.masks.values()))
    acc = study.accuracy(revived, "star", "object")
    assert acc["target"]["n"] == 2 and acc["target"]["ci95"][0] <= acc["target"]["accuracy"] <= acc["target"]["ci95"][1]
    assert acc["preserved"]["n"] == 2 * (len(world.OBJECTS) - 1)  # pooled over the other objects
    defended = study.defend(unlearned, "gaussian", 1.0)
    assert not torch.any(defended.layers[name][unlearned.masks[name]] == 0)
    attacked = study.attack(defended, unlearned, "global_bottom", 0.05)
    m = attacked.info["metrics"]
    assert 0 <= m["auroc"] <= 1 and 0 <= m["holdout_score"] <= 1 and m["located"] == round(
        0.05 * sum(w.numel() for w in unlearned.masks.values()))
    # a second study on the same root reads everything back instead of recomputing
    again = Study(random_mini_pipeline, tmp_path, TINY)
    r2 = again.revive(unlearned, unlearned)
    assert r2.info == revived.info and torch.equal(r2.layers[name], revived.layers[name])
    assert again.accuracy(revived, "star", "object")["target"] == acc["target"]


def test_stage_round_trips_and_refuses_other_versions_and_weights(tmp_path):
    masks = {"w": torch.tensor([[True, False], [False, True]])}
    stage = Unlearned("c/unlearned", {"w": torch.tensor([[0.0, 1.0], [2.0, 0.0]])}, {"concept": "c"}, masks=masks)
    folder = stage.save_pretrained(tmp_path / "s", fingerprint="abc")
    back = Stage.from_pretrained(folder, "abc")
    assert isinstance(back, Unlearned) and back.info == {"concept": "c"}
    assert torch.equal(back.layers["w"], stage.layers["w"]) and torch.equal(back.masks["w"], masks["w"])
    with pytest.raises(RevivalError, match="other original weights"):
        Stage.from_pretrained(folder, "xyz")
    meta = (folder / "stage.json").read_text().replace('"format": 2', '"format": 1')
    (folder / "stage.json").write_text(meta)
    with pytest.raises(RevivalError, match="another version of revival"):
        Stage.from_pretrained(folder)


def test_family_of():
    assert [family_of(c, "minisd") for c in ("star", "neon", "cage")] == ["object", "style", "attribute"]
    assert family_of("striped") == "attribute" and family_of("sepia") == "style"  # the bundled model's world


def test_budgets_follow_the_pruned_share_or_the_fixed_ratio(random_mini_pipeline, tmp_path):
    study = Study(random_mini_pipeline, tmp_path, TINY)
    unlearned = study.unlearn("star", "object")
    d = unlearned.info["density"]
    assert study.budgets(unlearned) == [round(f * d, 6) for f in (0.5, 1.0, 2.0)]
    fixed = Study(random_mini_pipeline, tmp_path, StudySettings(**{**TINY.__dict__, "locator_ratio": 0.2}))
    assert fixed.budgets(unlearned) == [0.2]


def test_defense_tag_names_every_setting():
    assert defense_tag("gaussian", 1.0) == "gaussian-1"
    assert defense_tag("decoy", 1.0, "row", {"fill": "lowrank"}) == "decoy-1-filllowrank"
    assert defense_tag("gaussian", 0.5, "layer") != defense_tag("gaussian", 0.5, "global")


def test_default_sampling_is_the_model_s_own(random_mini_pipeline, tmp_path):
    """Unset, a study samples its evaluation images as the model is meant to be sampled (the bundled model: 20 DDIM
    steps at guidance 3; SD1.x: the paper's 50 at 7.5); what is given is kept."""
    from diffusers import StableDiffusionPipeline

    from revival.testing import tiny_sd_pipeline

    mini = Study(random_mini_pipeline, tmp_path / "a").s
    assert (mini.eval_steps, mini.guidance, mini.batch_size) == (20, 3.0, 64)
    sd = StableDiffusionPipeline.from_pretrained(tiny_sd_pipeline(tmp_path / "sd"), safety_checker=None)
    s = Study(sd, tmp_path / "b").s
    assert (s.eval_steps, s.guidance, s.batch_size) == (50, 7.5, 8)
    assert Study(sd, tmp_path / "c", StudySettings(eval_steps=3, guidance=2.0, batch_size=5)).s.guidance == 2.0
