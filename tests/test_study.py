import torch

from revival.study import Study, StudySettings, defense_tag, family_of

TINY = StudySettings(n_eval=2, eval_steps=2, timesteps=2, batch_size=32)


def test_study_stages_cache_and_resume(random_mini_pipeline, tmp_path):
    study = Study(random_mini_pipeline, tmp_path, TINY)
    unlearned, masks, info = study.unlearn("star", "object")
    name = next(iter(masks))
    assert info["density"] > 0 and torch.all(unlearned[name][masks[name]] == 0)
    revived, rinfo = study.revive("star", "default", unlearned)
    assert 0 <= rinfo["sign_recovery"]["overall"] <= 1
    acc = study.accuracy("star.revived", revived, "star", "object")
    assert 0 <= acc["target"] <= 1 and 0 <= acc["preserved"] <= 1
    defended, attacked, tinfo = study.defend_and_attack("star", unlearned, masks, "gaussian", 1.0, "global_bottom")
    assert not torch.any(defended[name][masks[name]] == 0)
    assert 0 <= tinfo["metrics"]["auroc"] <= 1
    # a second study on the same root reads everything back instead of recomputing
    again = Study(random_mini_pipeline, tmp_path, TINY)
    r2, info2 = again.revive("star", "default", unlearned)
    assert info2 == rinfo and torch.equal(r2[name], revived[name])
    assert again.accuracy("star.revived", revived, "star", "object") == acc


def test_family_of():
    assert family_of("star") == "object" and family_of("neon") == "style" and family_of("cage") == "attribute"


def test_locator_budget_reaches_the_locator_and_keeps_caches_apart(random_mini_pipeline, tmp_path):
    paper = Study(random_mini_pipeline, tmp_path, TINY)
    informed = Study(random_mini_pipeline, tmp_path, StudySettings(**{**TINY.__dict__, "locator_ratio": 0.2}))
    assert paper.locator_budget("global_bottom") == {} and informed.locator_budget("zeros") == {}
    assert informed.locator_budget("global_bottom") == {"ratio": 0.2} and informed.budget_tag() == "-r0.2"
    unlearned, masks, _ = paper.unlearn("star", "object")
    _, _, small = paper.defend_and_attack("star", unlearned, masks, "gaussian", 1.0, "global_bottom")
    _, _, large = informed.defend_and_attack("star", unlearned, masks, "gaussian", 1.0, "global_bottom")
    total = sum(int(w.numel()) for w in masks.values())
    assert small["metrics"]["located"] == round(0.02 * total)
    assert large["metrics"]["located"] == round(0.2 * total) and large["locator_params"]["ratio"] == 0.2


def test_defense_tag_names_every_setting():
    assert defense_tag("gaussian", 1.0) == "gaussian-1"
    assert defense_tag("decoy", 1.0, "row", {"fill": "lowrank"}) == "decoy-1-filllowrank"
    assert defense_tag("gaussian", 0.5, "layer") != defense_tag("gaussian", 0.5, "global")
