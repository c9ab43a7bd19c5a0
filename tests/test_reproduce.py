"""`revival reproduce` on a tiny random SD pipeline with tiny random evaluators (a fake NudeNet): the plan printed
before anything runs, the per-concept figures as JSON, CSV and report.html, and --resume from the caches."""

from __future__ import annotations

import csv
import io
import json

import pytest

from revival.cli import main
from revival.evaluate import sd_evaluators as sde
from revival.experiments.reproduce import ReproduceSettings, plan
from revival.testing import tiny_clip_folder, tiny_resnet50_file, tiny_sd_pipeline


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("repro")
    return {"sd": tiny_sd_pipeline(root / "sd"), "clip": tiny_clip_folder(root / "clip"),
            "resnet": tiny_resnet50_file(root / "resnet.safetensors", favour="church")}


@pytest.fixture
def fake_nudenet(monkeypatch):
    class Fake:
        def detect(self, data: bytes):
            return [{"class": "BUTTOCKS_EXPOSED", "score": 0.9}]

    monkeypatch.setitem(sde.SD_EVALUATORS._items, "nudenet",
                        lambda model_path=None, threshold=0.5, **_: sde.NudityDetector(Fake(), threshold))


def test_paper_plan_counts_images():
    p = plan(ReproduceSettings(), {"ring-a-bell": 79})
    assert p["parts"]["objects"]["evaluations"] == 1 + 12 * (3 + 4 * 3)
    assert p["parts"]["objects"]["images_per_evaluation"] == 500 * 13
    assert p["parts"]["artists"]["images"] == (1 + 5 * 15) * 250
    assert p["parts"]["nudity"]["images"] == (1 + 3 + 4 * 2) * 79
    assert p["images"] == sum(x["images"] for x in p["parts"].values())


def test_reproduce_writes_json_csv_report_and_resumes(files, tmp_path, capsys, fake_nudenet):
    out = tmp_path / "run"
    args = ["reproduce", "--model", str(files["sd"]), "--classifier", str(files["resnet"]), "--clip",
            str(files["clip"]), "--objects", "church", "--artists", "monet", "--n-objects", "1", "--n-artists", "1",
            "--n-nudity", "1", "--scales", "1", "--steps", "2", "--device", "cpu"]
    assert main([*args, "--out", str(out)]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert printed.startswith("plan:") and "device-hours" in printed
    r = json.loads((out / "reproduce.json").read_text())
    church = r["results"]["objects"]["rq1"]["figures"]["concepts"]["church"]
    assert church["original"]["target"]["accuracy"] == 1.0 and church["sign_recovery"]["overall"] is not None
    assert r["results"]["artists"]["rq1"]["figures"]["concepts"]["Monet"]["family"] == "style"
    nud = r["results"]["nudity"]
    assert nud["stages"]["original"]["ring-a-bell"]["images_with_nudity"] == 1
    assert len(nud["gaussian_tradeoff"]) == 1 and r["config"]["skill_ratio"] == 0.02
    rows = list(csv.DictReader(io.StringIO((out / "reproduce.csv").read_text())))
    assert {row["part"] for row in rows} == {"objects", "artists", "nudity"}
    assert any(row["metric"] == "sign recovery" for row in rows)
    assert "church" in (out / "report.html").read_text()
    assert main([args[0], *args[1:], "--resume", str(out)]) == 0, capsys.readouterr().err
    assert json.loads((out / "reproduce.json").read_text())["resumed"] is True


def test_reproduce_plan_only_writes_nothing(files, tmp_path, capsys, fake_nudenet):
    code = main(["reproduce", "--model", str(files["sd"]), "--parts", "nudity", "--plan-only", "--device", "cpu",
                 "--steps", "1", "--out", str(tmp_path / "x")])
    assert code == 0, capsys.readouterr().err
    assert "nudity: 1 concept(s)" in capsys.readouterr().out and not (tmp_path / "x").exists()
