"""`revival evaluate` on Stable Diffusion pipelines: the paper's protocol per concept kind with tiny random
evaluators (ResNet-50 weights that call every image one class, a tiny CLIP, a fake NudeNet), 95% intervals,
and what is recorded (sampling, safety checker, evaluators)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from revival.cli import main
from revival.evaluate import sd_evaluators as sde
from revival.evaluate.intervals import mean_interval, t_quantile
from revival.evaluate.sd_eval import protocol_of, read_prompt_file, style_figures
from revival.testing import tiny_clip_folder, tiny_resnet50_file, tiny_sd_pipeline

FAST = ("-n", "1", "--steps", "2", "--device", "cpu")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("sdeval")
    return {"sd": tiny_sd_pipeline(root / "sd", safety_checker=True), "clip": tiny_clip_folder(root / "clip"),
            "resnet": tiny_resnet50_file(root / "resnet.safetensors", favour="church")}


def evaluate(capsys, *args) -> tuple[int, str, str]:
    code = main(["evaluate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_objects_erased_and_preserved_accuracy_with_intervals(files, tmp_path, capsys):
    out = tmp_path / "o"
    code, stdout, err = evaluate(capsys, "--model", files["sd"], "--concept", "church", "--classifier",
                                 files["resnet"], "--out", out, *FAST)
    assert code == 0, err
    r = json.loads((out / "result.json").read_text())
    acc = r["accuracy"]
    assert acc["target"]["accuracy"] == 1.0 and acc["target"]["n"] == 1 and acc["target"]["ci95"][0] > 0
    assert acc["preserved"]["accuracy"] == 0.0 and acc["preserved"]["n"] == 12
    assert set(acc["per_class"]) == set(sde.IMAGENETTE_CLASSES)
    assert r["config"]["safety_checker"] == "off" and r["config"]["sampling"]["family"] == "sd1"
    assert r["config"]["evaluators"]["classifier"]["sha256"]
    assert (out / "grid.png").is_file() and "erased-class accuracy 1.000" in stdout


def test_safety_checker_kept_on_request(files, tmp_path, capsys):
    out = tmp_path / "o"
    code, _, err = evaluate(capsys, "--model", files["sd"], "--concept", "church", "--classifier", files["resnet"],
                            "--out", out, "--safety-checker", *FAST)
    assert code == 0, err
    assert json.loads((out / "result.json").read_text())["config"]["safety_checker"] == "on"


def test_artists_clip_score_and_pairwise_against_the_model_itself(files, tmp_path, capsys):
    out = tmp_path / "o"
    code, _, err = evaluate(capsys, "--model", files["sd"], "--unet", files["sd"] / "unet", "--concept", "van gogh",
                            "--clip", files["clip"], "--fidelity", "2", "--out", out, *FAST)
    assert code == 0, err
    r = json.loads((out / "result.json").read_text())
    assert r["clip_score"]["target"]["n"] == 1 and r["clip_score"]["preserved"]["n"] == 4
    # the same weights give the same images: never less similar than the original's
    assert r["pairwise"]["share"] == 0.0 and r["pairwise"]["n"] == 1
    assert r["fidelity"]["coco_clip_score"]["n"] == 2 and r["fidelity"]["coco_clip_score"]["ci95"] is not None


def test_nudity_counts_flagged_images_per_prompt_set(files, tmp_path, capsys, monkeypatch):
    class Fake:
        def detect(self, data: bytes):
            return [{"class": "FEMALE_BREAST_EXPOSED", "score": 0.7}]

    monkeypatch.setitem(sde.SD_EVALUATORS._items, "nudenet",
                        lambda model_path=None, threshold=0.5, **_: sde.NudityDetector(Fake(), threshold))
    i2p = tmp_path / "i2p.csv"
    i2p.write_text("prompt,sd_seed\na person at the beach,7\na statue,8\n")
    out = tmp_path / "o"
    code, _, err = evaluate(capsys, "--model", files["sd"], "--concept", "nudity", "--nudity-sets", "ring-a-bell,i2p",
                            "--prompts-file", f"i2p={i2p}", "--nudity-threshold", "0.6", "--out", out,
                            "-n", "2", "--steps", "2", "--device", "cpu")
    assert code == 0, err
    r = json.loads((out / "result.json").read_text())
    assert r["nudity"]["i2p"]["images_with_nudity"] == 2 and r["nudity"]["i2p"]["share"]["share"] == 1.0
    assert r["nudity"]["ring-a-bell"]["n"] == 2
    rec = r["config"]["evaluators"]["nudenet"]
    assert rec["threshold"] == 0.6 and "FEMALE_BREAST_EXPOSED" in rec["labels"] and "version" in rec


def test_protocols_and_prompt_files(tmp_path):
    assert protocol_of("Golf Ball") == ("golf ball", "object")
    assert protocol_of("monet") == ("Monet", "style")
    assert protocol_of("naked") == ("nudity", "attribute")
    txt = tmp_path / "mma.txt"
    txt.write_text("one\n\ntwo\n")
    ps = read_prompt_file("mma", txt, seed=5)
    assert ps.prompts == ("one", "two") and ps.seeds == (5, 6)


def test_intervals_for_means():
    assert t_quantile(1000) == pytest.approx(1.9623, abs=1e-3)
    assert t_quantile(9) == pytest.approx(2.2622, abs=2e-3)
    m = mean_interval([1.0, 2.0, 3.0, 4.0])
    assert m["mean"] == 2.5 and m["ci95"][0] < 2.5 < m["ci95"][1]
    f = style_figures(np.array([0.1, 0.3, 0.2]), ("A", "A", "B"), "A", np.array([0.2, 0.2, 0.0]))
    assert f["pairwise"]["k"] == 1 and f["pairwise"]["n"] == 2


def _cleanfid_imports() -> str | None:
    try:
        import cleanfid.fid  # noqa: F401
    except Exception as e:  # noqa: BLE001 - ImportError, or its torchvision failing beside this torch
        return f"clean-fid does not import here: {(str(e) or type(e).__name__).splitlines()[0]}"
    return None


def test_fid_without_clean_fid_is_one_line(files, tmp_path, capsys):
    if _cleanfid_imports() is None:
        pytest.skip("clean-fid imports here: the missing-library message cannot be seen")
    ref = tmp_path / "ref"
    ref.mkdir()
    code, _, err = evaluate(capsys, "--model", files["sd"], "--concept", "church", "--classifier", files["resnet"],
                            "--fidelity", "2", "--fid-ref", ref, "--out", tmp_path / "o", *FAST)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "revival[fid]" in lines[0] and not (tmp_path / "o").exists()


@pytest.mark.skipif(_cleanfid_imports() is not None, reason=str(_cleanfid_imports()))
def test_fid_against_reference_images(files, tmp_path, capsys):
    from PIL import Image

    ref = tmp_path / "ref"
    ref.mkdir()
    for i in range(4):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(ref / f"{i}.png")
    out = tmp_path / "o"
    code, _, err = evaluate(capsys, "--model", files["sd"], "--concept", "church", "--classifier", files["resnet"],
                            "--fidelity", "4", "--fid-ref", ref, "--out", out, *FAST)
    if code == 2 and "cannot" in err.lower():  # clean-fid fetches its Inception weights on first use
        pytest.skip(f"clean-fid could not load its Inception weights here: {err.strip()}")
    assert code == 0, err
    fid = json.loads((out / "result.json").read_text())["fidelity"]["fid"]
    assert fid["fid"] >= 0 and fid["library"].startswith("clean-fid") and fid["n"] == 4
