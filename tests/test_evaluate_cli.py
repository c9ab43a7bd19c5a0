"""`revival evaluate`: a tiny end-to-end run on a saved random-init miniature Stable Diffusion, and its error cases."""

import json

import pytest

from revival.cli import main
from revival.minisd import world


@pytest.fixture(scope="module")
def mini_folder(random_mini_folder):
    return random_mini_folder


def test_evaluate_writes_result_and_grid(mini_folder, tmp_path):
    out = tmp_path / "ev"
    args = ["evaluate", "--model", str(mini_folder), "--concept", "neon", "--out", str(out),
            "-n", "2", "--steps", "2", "--save-images"]
    assert main(args) == 0
    res = json.loads((out / "result.json").read_text())
    assert res["config"]["family"] == "style"
    assert set(res["per_concept"]) == set(world.STYLES)
    assert 0 <= res["accuracy"]["target"] <= 1 and 0 <= res["accuracy"]["preserved"] <= 1
    assert res["accuracy"]["target"] == res["per_concept"]["neon"]
    assert "evaluator" in res["inputs"] and "sha256" in res["inputs"]["evaluator"]
    assert (out / "grid.png").is_file() and (out / "images" / "sketch.png").is_file()
    assert main(args) == 2  # non-empty --out without --overwrite
    assert main([*args, "--overwrite"]) == 0
    assert json.loads((out / "result.json").read_text())["per_concept"] == res["per_concept"]


def test_unknown_concept_lists_known(tmp_path, capsys):
    assert main(["evaluate", "--concept", "dragon", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown concept 'dragon'" in err and "star" in err and "neon" in err and "cage" in err
    assert len(err.strip().splitlines()) == 1


def test_bad_unet_path(mini_folder, tmp_path, capsys):
    missing = tmp_path / "nope.safetensors"
    assert main(["evaluate", "--model", str(mini_folder), "--unet", str(missing), "--concept", "star",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_sd_model_takes_the_papers_concepts(tmp_path, capsys):
    sd = tmp_path / "sd"
    sd.mkdir()
    (sd / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    assert main(["evaluate", "--model", str(sd), "--concept", "star", "--out", str(tmp_path / "x")]) == 2
    assert "Stable Diffusion evaluation knows the Imagenette classes" in capsys.readouterr().err
