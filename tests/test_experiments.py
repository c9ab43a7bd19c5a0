import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from revival.cli import main
from revival.errors import RevivalError
from revival.evaluate.intervals import share
from revival.experiments import EXPERIMENTS, ExperimentConfig, run_experiment
from revival.experiments.config import RUN_FORMAT
from revival.findings import THRESHOLDS, defense_finding, revival_finding
from revival.models import MINI_PATH
from revival.study import Study, StudySettings

TINY = StudySettings(n_eval=2, eval_steps=2, timesteps=2, batch_size=64)
LOCATORS = ("zeros", "global_bottom", "neuron")


def tiny_config(**kw) -> ExperimentConfig:
    return ExperimentConfig(**{"concepts": ("cage",), "study": TINY, "locators": LOCATORS, "scales": (1.0,)} | kw)


def test_registry_lists_known_experiments():
    assert EXPERIMENTS.names() == ["rq1", "rq2", "rq3", "rq4"]
    with pytest.raises(RevivalError, match="unknown experiment 'rq9'; known: rq1, rq2, rq3, rq4"):
        EXPERIMENTS.get("rq9")


def test_cli_unknown_experiment_is_one_line_error(capsys):
    assert main(["experiment", "rq9"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rq1, rq2, rq3, rq4" in err


@pytest.mark.parametrize("name", ["rq1", "rq2", "rq3", "rq4"])
def test_experiment_end_to_end_on_tiny_settings(name, random_mini_pipeline, tmp_path):
    study = Study(random_mini_pipeline, tmp_path / "stages", TINY)
    cfg = tiny_config(magnitudes=("nms", "random_sign", "row_mean", "oracle_sign"))
    calls = []
    res = run_experiment(name, study, cfg, progress=lambda done, total, label: calls.append((done, total)))
    assert res["experiment"] == name and res["findings"] and res["thresholds"] == THRESHOLDS
    assert calls[-1][0] == calls[-1][1] == len(calls) - 1  # every planned step ran, then "done"
    assert len({planned for _, planned in calls}) == 1  # planned up front: the progress bar's total never grows
    assert all(f["verdict"] in (None, "holds", "partly holds", "does not hold", "inconclusive")
               for f in res["findings"])
    json.dumps(res)  # JSON-ready
    fig = res["figures"]
    if name == "rq1":
        assert set(fig["accuracy_by_stage"]["cage"]) == {"original", "unlearned", "revived", "revived_paper"}
        row = fig["concepts"]["cage"]
        assert 0 <= row["sign_recovery"]["overall"] <= 1 and row["sign_recovery_paper"]["n_pruned"] > 0
        assert row["revived"]["target"]["n"] == 2 and len(row["revived"]["target"]["ci95"]) == 2
        assert fig["methods"]["revived_paper"].startswith("paper")
    if name == "rq2":
        rules = fig["concepts"]["cage"]["rules"]
        assert set(rules) == {"nms", "random_sign", "row_mean", "oracle_sign"}
        assert rules["oracle_sign"]["sign_recovery_retained"] == 1.0 and rules["oracle_sign"]["oracle"]
    if name == "rq3":
        defenses = {r["defense"] for r in fig["rows"]}
        assert defenses == {"none", "gaussian", "lowrank", "decoy", "neuron"}
        # the unlearned zeros are exactly the pruned positions; Gaussian filling hides them from `zeros`
        assert fig["auroc"]["none"]["zeros"] > 0.99 and fig["recall"]["gaussian"]["zeros"] == 0
        assert {r["budget_factor"] for r in fig["rows"] if r["locator"] == "neuron"} == {0.5, 1.0, 2.0}
        assert [f["kind"] for f in res["findings"]][0] == "sanity check" and res["findings"][0]["verdict"] is None
    if name == "rq4":
        row = fig["rows"][0]
        assert [r["scale"] for r in fig["rows"]] == [1.0]
        assert row["attacker_choice"].split("@")[0] in LOCATORS and row["oracle_choice"] in row["trials"]
        assert "ORACLE" in row["choice_reason"]
    png = EXPERIMENTS.get(name).plot(fig, tmp_path / f"{name}.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rq3_on_given_weights_needs_no_pipeline(random_mini_pipeline, tmp_path):
    study = Study(random_mini_pipeline, tmp_path / "stages", TINY)
    u = study.unlearn("star", "object")
    unlearned, masks = u.state(study.original_state), u.masks
    res = run_experiment("rq3", None, tiny_config(), given={"star-unlearned": (unlearned, masks)})
    assert res["figures"]["concepts"] == ["star-unlearned"]
    with pytest.raises(RevivalError, match="generate images"):
        run_experiment("rq1", None, tiny_config(), given={"x": (unlearned, masks)})


def test_findings_follow_the_numbers_and_their_intervals():
    big = 320

    def row(o, u, r):
        return {"original": share(round(o * big), big), "unlearned": share(round(u * big), big),
                "revived": share(round(r * big), big)}

    revived = revival_finding({"a": row(0.9, 0.1, 0.6)})
    flat = revival_finding({"a": row(0.9, 0.1, 0.12)})
    never_erased = revival_finding({"a": row(0.3, 0.3, 0.9)})
    assert (revived["verdict"], flat["verdict"], never_erased["verdict"]) == ("holds", "does not hold", "inconclusive")
    few = {"original": share(9, 10), "unlearned": share(1, 10), "revived": share(4, 10)}
    assert revival_finding({"a": few})["verdict"] == "inconclusive"  # +30 points on 10 images: not a verdict
    base = row(0.9, 0.1, 0.6)
    d = {**base, "defended": share(32, big), "revived_after_defense": share(32, big),
         "unlearned_preserved": share(288, big), "defended_preserved": share(285, big)}
    assert defense_finding("d", {"a": d})["verdict"] == "holds"
    assert defense_finding("d", {"a": d | {"revived_after_defense": share(160, big)}})["verdict"] == "does not hold"
    assert defense_finding("d", {"a": d, "b": d | {"defended_preserved": share(160, big)}})["verdict"] == "partly holds"
    nothing_to_defend = d | {"revived": share(32, big)}
    assert defense_finding("d", {"a": nothing_to_defend})["verdict"] == "inconclusive"


def test_resume_refuses_a_run_of_another_version(tmp_path, capsys):
    model = shutil.copytree(MINI_PATH, tmp_path / "mini")
    out = tmp_path / "old"
    out.mkdir()
    run = {"format": RUN_FORMAT - 1, "kind": "experiment rq3", "config": {}, "model": {}}
    (out / "experiment-run.json").write_text(json.dumps(run))
    before = sorted(p.name for p in out.iterdir())
    assert main(["experiment", "rq3", "--model", str(model), "--resume", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "another version of revival" in err
    assert sorted(p.name for p in out.iterdir()) == before


def _fake_sd_folder(tmp_path):
    sd = tmp_path / "sd"
    (sd / "unet").mkdir(parents=True)
    (sd / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    return sd


def test_cli_non_mini_model_needs_evaluators_for_image_experiments(tmp_path, capsys):
    sd = _fake_sd_folder(tmp_path)
    assert main(["experiment", "rq1", "--model", str(sd), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs --concepts" in err and "--classifier" in err


def test_cli_rq3_on_non_mini_model_with_given_masks(tmp_path, capsys):
    sd = _fake_sd_folder(tmp_path)
    g = torch.Generator().manual_seed(0)
    names = [f"mid_block.attentions.0.transformer_blocks.{i}.ff.net.2.weight" for i in range(2)]
    weights = {n: torch.randn(16, 64, generator=g) for n in names}
    masks = {n: torch.rand(16, 64, generator=g) < 0.05 for n in names}
    save_file({n: w.masked_fill(masks[n], 0) for n, w in weights.items()}, str(tmp_path / "unlearned.safetensors"))
    save_file({n: m.to(torch.uint8) for n, m in masks.items()}, str(tmp_path / "masks.safetensors"))
    out = tmp_path / "rq3"
    rc = main(["experiment", "rq3", "--model", str(sd), "--unet", str(tmp_path / "unlearned.safetensors"),
               "--masks", str(tmp_path / "masks.safetensors"), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    result = json.loads((out / "result.json").read_text())
    assert result["figures"]["auroc"]["none"]["zeros"] > 0.99
    assert (out / "rq3.png").is_file() and "[sanity check]" in (out / "findings.txt").read_text()
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert result["inputs"]["masks"]["sha256"]


def test_cli_rq3_on_the_shipped_model_and_resume(tmp_path, capsys):
    model = shutil.copytree(MINI_PATH, tmp_path / "mini")  # pinned: `revival train-mini` may update the shipped one
    out = tmp_path / "rq3"
    args = ["experiment", "rq3", "--model", str(model), "--quick", "--concepts", "star", "--out", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    first = json.loads((out / "result.json").read_text())
    assert first["figures"]["concepts"] == ["star"] and first["config"]["study"]["n_eval"] == 4
    assert main(args) == 2 and "not empty" in capsys.readouterr().err  # never overwrites silently
    assert main(["experiment", "rq3", "--model", str(model), "--resume", str(out)]) == 0
    again = json.loads((out / "result.json").read_text())
    assert again["figures"] == first["figures"] and again["resumed"] is True
    assert main(["experiment", "rq1", "--model", str(model), "--resume", str(out)]) == 2  # a rq3 run is no rq1 run


def test_cli_skill_ratio_defaults_and_validation(tmp_path, capsys):
    model = shutil.copytree(MINI_PATH, tmp_path / "mini")
    out = tmp_path / "rq3"
    args = ["experiment", "rq3", "--model", str(model), "--quick", "--concepts", "star", "--out", str(out)]
    assert main([*args, "--skill-ratio", "1.5"]) == 2
    assert "--skill-ratio: must be a number in (0, 1)" in capsys.readouterr().err
    assert main([*args, "--n-eval", "0"]) == 2 and "--n-eval: must be an integer >= 1" in capsys.readouterr().err
    assert main([*args, "--locator-ratio", "0.05", "--n-eval", "3"]) == 0, capsys.readouterr().err
    study = json.loads((out / "result.json").read_text())["config"]["study"]
    assert study["skill_ratio"] == 0.02 and study["attribute_skill_ratio"] == 0.01  # the paper's, on the bundled model
    assert study["locator_ratio"] == 0.05 and study["n_eval"] == 3 and study["eval_steps"] == 20


def test_rq2_says_when_no_concept_is_erased():
    from revival.experiments.rq2 import findings

    rule = {"target": share(31, 32), "sign_recovery_retained": 0.8}
    fig = {"rules": ["nms", "random_sign"], "concepts": {"star": {
        "original": {"target": share(30, 32)}, "unlearned": {"target": share(30, 32)},
        "rules": {"nms": rule, "random_sign": rule | {"sign_recovery_retained": 0.5}}}}}
    first = findings(fig)[0]
    assert first["verdict"] == "inconclusive" and "no concept erased (star not judged)" in first["text"]
