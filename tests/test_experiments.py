import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from revival.cli import main
from revival.errors import RevivalError
from revival.experiments import EXPERIMENTS, ExperimentConfig, best_locator, run_experiment
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
    assert all(f["verdict"] in (None, "holds", "partly holds", "does not hold", "inconclusive")
               for f in res["findings"])
    json.dumps(res)  # JSON-ready
    fig = res["figures"]
    if name == "rq1":
        assert set(fig["accuracy_by_stage"]["cage"]) == {"original", "unlearned", "revived"}
        assert 0 <= fig["concepts"]["cage"]["sign_recovery"]["overall"] <= 1
    if name == "rq2":
        assert set(fig["concepts"]["cage"]["rules"]) == {"nms", "random_sign", "row_mean", "oracle_sign"}
    if name == "rq3":
        defenses = {r["defense"] for r in fig["rows"]}
        assert defenses == {"none", "gaussian", "lowrank", "decoy", "neuron"}
        # the unlearned zeros are exactly the pruned positions; Gaussian filling hides them from `zeros`
        assert fig["auroc"]["none"]["zeros"] > 0.99 and fig["recall"]["gaussian"]["zeros"] == 0
    if name == "rq4":
        assert [r["scale"] for r in fig["rows"]] == [1.0] and fig["rows"][0]["best_locator"] in LOCATORS
    png = EXPERIMENTS.get(name).plot(fig, tmp_path / f"{name}.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rq3_on_given_weights_needs_no_pipeline(random_mini_pipeline, tmp_path):
    study = Study(random_mini_pipeline, tmp_path / "stages", TINY)
    unlearned, masks, _ = study.unlearn("star", "object")
    res = run_experiment("rq3", None, tiny_config(), given={"star-unlearned": (unlearned, masks)})
    assert res["figures"]["concepts"] == ["star-unlearned"]
    with pytest.raises(RevivalError, match="generate images"):
        run_experiment("rq1", None, tiny_config(), given={"x": (unlearned, masks)})


def test_best_locator_ranks_by_restoration_then_auroc():
    trials = {"zeros": {"restoration": 0.0, "auroc": 0.5}, "neuron": {"restoration": 0.03, "auroc": 0.78},
              "residual": {"restoration": 0.03, "auroc": 0.49}, "none": {"restoration": None, "auroc": None}}
    best, reason = best_locator(trials)
    assert best == "neuron" and reason.startswith("highest restoration") and "residual" in reason


def test_findings_follow_the_numbers():
    revived = revival_finding({"a": {"original": 0.9, "unlearned": 0.1, "revived": 0.6}})
    flat = revival_finding({"a": {"original": 0.9, "unlearned": 0.1, "revived": 0.15}})
    never_erased = revival_finding({"a": {"original": 0.3, "unlearned": 0.3, "revived": 0.9}})
    assert (revived["verdict"], flat["verdict"], never_erased["verdict"]) == ("holds", "does not hold", "inconclusive")
    row = {"original": 0.9, "unlearned": 0.1, "revived": 0.6, "defended": 0.1, "revived_after_defense": 0.1,
           "unlearned_preserved": 0.9, "defended_preserved": 0.88}
    assert defense_finding("d", {"a": row})["verdict"] == "holds"
    assert defense_finding("d", {"a": row | {"revived_after_defense": 0.5}})["verdict"] == "does not hold"
    assert defense_finding("d", {"a": row, "b": row | {"defended_preserved": 0.5}})["verdict"] == "partly holds"
    assert defense_finding("d", {"a": row | {"revived": 0.1}})["verdict"] == "inconclusive"  # nothing to defend


def _fake_sd_folder(tmp_path):
    sd = tmp_path / "sd"
    (sd / "unet").mkdir(parents=True)
    (sd / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    return sd


def test_cli_non_mini_model_needs_evaluators_for_image_experiments(tmp_path, capsys):
    sd = _fake_sd_folder(tmp_path)
    assert main(["experiment", "rq1", "--model", str(sd), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sd_evaluators" in err and "rq3" in err


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
    assert (out / "rq3.png").is_file() and "[holds]" in (out / "findings.txt").read_text()
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
    assert "--skill-ratio must be in (0, 1)" in capsys.readouterr().err
    assert main([*args, "--n-eval", "0"]) == 2 and "--n-eval must be a positive" in capsys.readouterr().err
    assert main([*args, "--locator-ratio", "0.05", "--n-eval", "3"]) == 0, capsys.readouterr().err
    study = json.loads((out / "result.json").read_text())["config"]["study"]
    assert study["skill_ratio"] == 0.2 and study["locator_ratio"] == 0.05  # mini default: the erasing setting
    assert study["n_eval"] == 3 and study["eval_steps"] == 8
