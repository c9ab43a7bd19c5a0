"""`revival experiment` on Stable Diffusion pipelines: rq1 (objects, ResNet-50) and rq2 (artists, CLIP) end to end on
tiny random pipelines with tiny random evaluators; the stages, figures and report as on the mini model."""

from __future__ import annotations

import json

import pytest

from revival.cli import main
from revival.testing import tiny_clip_folder, tiny_resnet50_file, tiny_sd_pipeline, tiny_sdxl_pipeline

FAST = ("--n-eval", "1", "--eval-steps", "2", "--device", "cpu")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("sdexp")
    return {"sd": tiny_sd_pipeline(root / "sd"), "sdxl": tiny_sdxl_pipeline(root / "sdxl"),
            "clip": tiny_clip_folder(root / "clip"),
            "resnet": tiny_resnet50_file(root / "resnet.safetensors", favour="church")}


def test_rq1_on_sd_objects(files, tmp_path, capsys):
    out = tmp_path / "rq1"
    code = main(["experiment", "rq1", "--model", str(files["sd"]), "--concepts", "Church", "--classifier",
                 str(files["resnet"]), "--out", str(out), *FAST])
    assert code == 0, capsys.readouterr().err
    r = json.loads((out / "result.json").read_text())
    row = r["figures"]["concepts"]["church"]
    assert row["original"]["target"]["accuracy"] == 1.0 and row["original"]["preserved"]["n"] == 12
    assert row["sign_recovery"]["overall"] is not None and row["family"] == "object"
    assert r["config"]["study"]["guidance"] == 7.5 and r["config"]["study"]["eval_steps"] == 2
    assert (out / "report.html").is_file()


def test_rq2_on_sdxl_artists(files, tmp_path, capsys):
    out = tmp_path / "rq2"
    code = main(["experiment", "rq2", "--model", str(files["sdxl"]), "--concepts", "monet", "--family", "style",
                 "--clip", str(files["clip"]), "--out", str(out), *FAST])
    assert code == 0, capsys.readouterr().err
    r = json.loads((out / "result.json").read_text())
    assert r["config"]["concepts"] == ["Monet"] and r["config"]["study"]["guidance"] == 5.0
    evals = sorted((out / "stages" / "evals").glob("*.style.json"))
    original = json.loads(next(p for p in evals if p.name.startswith("original")).read_text())
    assert original["per_concept"]["Monet"]["accuracy"] == 1.0  # the original is as similar as itself


def test_rq1_on_sd_needs_its_evaluator(files, tmp_path, capsys):
    code = main(["experiment", "rq1", "--model", str(files["sd"]), "--concepts", "church", "--out",
                 str(tmp_path / "x"), *FAST])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--classifier is needed" in err[0]
    assert not (tmp_path / "x").exists()


def test_demo_on_sd_objects(files, tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--model", str(files["sd"]), "--concepts", "church", "--classifier", str(files["resnet"]),
                 "--quick", "--out", str(out), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    r = json.loads((out / "result.json").read_text())
    assert r["concepts"]["church"]["family"] == "object" and "StableDiffusionPipeline" in r["title"]
    assert r["concepts"]["church"]["stages"]["original"]["target"] == 1.0
    assert (out / "report.html").is_file() and (out / "results.csv").is_file()


def test_demo_on_sd_needs_its_evaluator(files, tmp_path, capsys):
    code = main(["demo", "--model", str(files["sd"]), "--concepts", "Monet", "--out", str(tmp_path / "x"),
                 "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--clip is needed" in err[0] and not (tmp_path / "x").exists()


def test_rq1_on_sd_nudity_with_objects_as_control(files, tmp_path, capsys, monkeypatch):
    from revival.evaluate import sd_evaluators as sde

    class Fake:
        def detect(self, data: bytes):
            return [{"class": "FEMALE_BREAST_EXPOSED", "score": 0.8}]

    monkeypatch.setitem(sde.SD_EVALUATORS._items, "nudenet",
                        lambda model_path=None, threshold=0.5, **_: sde.NudityDetector(Fake(), threshold))
    out = tmp_path / "rq1n"
    code = main(["experiment", "rq1", "--model", str(files["sd"]), "--concepts", "nudity", "--classifier",
                 str(files["resnet"]), "--out", str(out), *FAST])
    assert code == 0, capsys.readouterr().err
    r = json.loads((out / "result.json").read_text())
    row = r["figures"]["concepts"]["naked"]
    assert row["family"] == "attribute" and row["original"]["target"]["accuracy"] == 1.0
    assert row["original"]["preserved"]["n"] == 13  # the Imagenette objects, one prompt per class
    assert r["config"]["study"]["skill_ratio"] == 0.01  # the paper's nudity setting
