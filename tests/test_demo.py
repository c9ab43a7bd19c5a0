import base64
import csv
import json
import re
import shutil
from dataclasses import replace

import pytest

import revival.study
from revival.cli import main
from revival.demo import DemoConfig, minisd_profile, plan_steps, resume_run, run_demo, start_run, write_outputs
from revival.errors import RevivalError
from revival.models import MINI_PATH
from revival.report.plots import STAGES
from revival.results import base_result
from revival.study import StudySettings

TINY = DemoConfig(concepts=("star", "cage"), study=StudySettings(n_eval=2, eval_steps=2, timesteps=2, batch_size=64),
                  locators=("zeros", "global_bottom"), top_ratios=(0.2, 0.6), top_ratios_generated=(0.2,),
                  tradeoff_scales=(1.0, 2.0))


class Interrupt(Exception):
    pass


def test_demo_resumes_from_cached_stages(random_mini_pipeline, tmp_path, monkeypatch):
    model = {"path": "mini", "sha256": "abc"}
    start_run(tmp_path, TINY, model)
    assert resume_run(tmp_path, model) == TINY
    with pytest.raises(RevivalError, match="other model weights"):
        resume_run(tmp_path, {"path": "mini", "sha256": "changed"})

    def stop_half_way(done, total, label):
        if done == total // 2:
            raise Interrupt(label)

    with pytest.raises(Interrupt):
        run_demo(random_mini_pipeline, tmp_path, TINY, progress=stop_half_way)
    assert any((tmp_path / "stages" / "evals").glob("*.json")) and not list(tmp_path.rglob("*.tmp*"))
    steps = []
    first = run_demo(random_mini_pipeline, tmp_path, TINY, progress=lambda d, t, label: steps.append((d, t)))
    assert steps[-1] == (plan_steps(TINY, 4), plan_steps(TINY, 4))  # zeros + global_bottom at 3 budgets

    # a third run must not prune, generate or attack again: everything comes from the stage caches
    def forbidden(*a, **k):
        raise AssertionError("recomputed a cached stage")

    for name in ("concept_prune", "evaluate_family", "revive", "attack_trial", "defend"):
        monkeypatch.setattr(revival.study, name, forbidden)
    again = run_demo(random_mini_pipeline, tmp_path, TINY)
    strip = ("timings_s",)
    assert {k: v for k, v in again.result.items() if k not in strip} == \
        {k: v for k, v in first.result.items() if k not in strip}
    for c in TINY.concepts:
        for s in STAGES:
            assert (again.images[c][s] == first.images[c][s]).all()
    assert set(first.result["accuracy_by_stage"]["star"]) == set(STAGES)
    assert first.result["defense_tradeoff"]["concept"] == "star"
    sweep = first.result["top_ratio_sweep"]["cage"]
    assert [r["top_ratio"] for r in sweep] == [0.2, 0.6] and all(r["revived_accuracy"] is not None for r in sweep)

    paths = write_outputs(tmp_path, first, base_result("test", {}, {}), TINY)
    rows = list(csv.DictReader(open(paths["csv"])))
    assert len(rows) == len(TINY.concepts) * len(STAGES)
    result = json.loads(open(paths["result"]).read())
    cage = result["concepts"]["cage"]
    assert cage["attacker_choice"].split("@")[0] in TINY.locators and cage["oracle_choice"] in cage["locators"]
    assert rows[0]["erased_ci95_low"] <= rows[0]["erased_accuracy"] <= rows[0]["erased_ci95_high"]
    assert "ORACLE" in result["oracle_rule"] and result["intervals"]


def test_profiles():
    assert minisd_profile(True, ("neon",)).concepts == ("neon",)
    assert minisd_profile(False, None).concepts == ("star", "neon", "striped")
    assert minisd_profile(False, None).study.n_eval > minisd_profile(True, None).study.n_eval
    with pytest.raises(RevivalError, match="unknown concept 'dragon' for the bundled mini model"):
        run_demo(None, "unused", replace(TINY, concepts=("dragon",)))


def test_demo_quick_cli_on_the_shipped_model(tmp_path, capsys):
    """The CI smoke test: `revival demo --quick` on the bundled model (one concept, to stay fast) writes a complete,
    self-contained run at the paper's settings."""
    # a copy pins the shipped weights for the run and its resume
    model = shutil.copytree(MINI_PATH, tmp_path / "mini")
    out = tmp_path / "demo"
    argv = ["demo", "--quick", "--concepts", "star", "--model", str(model), "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "erased-concept accuracy" in printed and "report.html" in printed
    result = json.loads((out / "result.json").read_text())
    assert list(result["concepts"]) == ["star"] and result["config"]["study"]["skill_ratio"] == 0.02
    assert result["inputs"]["model"]["sha256"] and result["timings_s"]
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [(r["concept"], r["stage"]) for r in rows] == [("star", s) for s in STAGES]
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    images = [out / p for p in result["outputs"]["grids"].values()] + \
             [out / p for p in result["outputs"]["plots"].values()]
    assert len(images) == len(STAGES) + 4 + 1
    for path in images:
        assert path.is_file() and base64.b64encode(path.read_bytes()).decode() in html, path
    assert len(re.findall(r"<img src='data:image/png;base64,", html)) == len(images)

    # resuming a finished run reuses every stage and rewrites the same figures
    assert main(["demo", "--model", str(model), "--resume", str(out)]) == 0
    again = json.loads((out / "result.json").read_text())
    assert again["accuracy_by_stage"] == result["accuracy_by_stage"] and again["resumed"] is True
