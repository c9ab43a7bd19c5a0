import torch

from revival.study import Study, StudySettings, family_of

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
