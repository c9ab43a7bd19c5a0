"""Which bundled world a pipeline draws; the 64x64 world's prompts and evaluation on images of known answer."""

import numpy as np
import pytest

from revival.errors import RevivalError
from revival.evaluate import mini_eval
from revival.evaluate.mini_eval import evaluate_family, known_concepts, resolve_concept
from revival.minisd import world as sdworld
from revival.models import load_pipeline
from revival.study import Study, StudySettings, family_of
from revival.testing import tiny_sd_pipeline
from revival.unlearn.prompts import family_prompts
from revival.worlds import world_of


@pytest.fixture(scope="module")
def minisd(random_mini_pipeline):
    return random_mini_pipeline


def test_world_of_tells_the_two_apart(minisd, tmp_path):
    assert world_of(minisd) == "minisd" and world_of(load_pipeline("mini")) == "minisd"  # the bundled model
    assert world_of(load_pipeline(tiny_sd_pipeline(tmp_path / "sd"))) == "sd"


@pytest.mark.parametrize("concept", [*sdworld.OBJECTS[:3], *sdworld.STYLES[:2], *sdworld.ATTRIBUTES])
def test_prune_prompts_are_the_world_s_paper_templates(concept):
    family = sdworld.family_of(concept)
    assert family_prompts(concept, family, "minisd") == sdworld.prune_prompt_pairs(family, concept)


def test_concepts_and_families_of_the_64x64_world():
    assert set(known_concepts("minisd")) == set(sdworld.CONCEPTS)
    assert resolve_concept("Striped", world_name="minisd") == ("striped", "attribute")
    assert family_of("sepia", "minisd") == "style" and family_of("cage", "minisd") == "attribute"
    with pytest.raises(KeyError):
        family_of("sepia", "sd")  # a style of the 64x64 world only (and no paper artist)


def _renders(drop: str | None):
    """A stand-in for generation that draws exactly what each prompt asks (less the `drop` attribute)."""
    def generate(pipe, prompts, seeds, *args, **kwargs):
        out = []
        for p, s in zip(prompts, seeds, strict=True):
            spec = sdworld.parse_caption(p)
            if drop == "cage":
                spec = sdworld.Spec(spec.object, spec.scene, spec.style, False, spec.striped)
            elif drop == "striped":
                spec = sdworld.Spec(spec.object, spec.scene, spec.style, spec.caged, False)
            out.append((sdworld.render(spec, np.random.default_rng(s)) * 255).round().astype(np.uint8))
        return np.stack(out)
    return generate


@pytest.mark.parametrize("family", ["object", "style", "attribute"])
def test_true_renders_score_high(minisd, family, monkeypatch):
    monkeypatch.setattr(mini_eval, "generate", _renders(None))
    ev = evaluate_family(minisd, family, n_per_concept=8, seed=3)
    assert set(ev.shares) == set(mini_eval.families("minisd").get(family).concepts)
    assert min(ev.per_concept.values()) >= 0.75, ev.per_concept


@pytest.mark.parametrize("attribute", sdworld.ATTRIBUTES)
def test_an_attribute_that_is_not_drawn_scores_low(minisd, attribute, monkeypatch):
    monkeypatch.setattr(mini_eval, "generate", _renders(attribute))
    ev = evaluate_family(minisd, "attribute", n_per_concept=8, seed=3)
    assert ev.per_concept[attribute] <= 0.25 and ev.per_concept["photo"] >= 0.75


def test_preserved_sample_is_seeded_shared_and_cached(minisd, tmp_path, monkeypatch):
    calls = []
    real = _renders(None)
    monkeypatch.setattr(mini_eval, "generate", lambda pipe, prompts, *a, **k: calls.append(len(prompts)) or
                        real(pipe, prompts, *a, **k))
    study = Study(minisd, tmp_path / "s", StudySettings(n_eval=2, preserved=3))
    star = study.measured("star", "object")
    assert star[0] == "star" and len(set(star)) == 4 and star == study.measured("star", "object")
    a = study.accuracy(study.original, "star", "object")
    assert a["preserved"]["n"] == 6 and calls == [8]
    house = study.measured("house", "object")
    study.accuracy(study.original, "house", "object")
    assert calls[1:] == [2 * len(set(house) - set(star))]  # only what the first target did not draw
    assert Study(minisd, tmp_path / "s", StudySettings(n_eval=2)).measured("star", "object") is None


@pytest.fixture(scope="module")
def minisd_folder(random_mini_folder):
    return random_mini_folder


def test_bundled_world_reads_the_folder(minisd_folder, tmp_path):
    from revival.modelfiles import MINI_PATH, bundled_world

    assert bundled_world(minisd_folder) == "minisd" and bundled_world(MINI_PATH) == "minisd"
    assert bundled_world(tiny_sd_pipeline(tmp_path / "sd")) is None


def test_a_first_generation_folder_is_refused_in_one_line(tmp_path, capsys):
    """The first generation (`MiniPipeline`, 32x32) was removed: its folders get one line saying so, whatever reads
    them (here its model_index.json alone, as the removed `revival train-mini --generation 1` wrote it)."""
    import json

    from revival.cli import main
    from revival.modelfiles import bundled_world

    gen1 = tmp_path / "gen1"
    gen1.mkdir()
    (gen1 / "model_index.json").write_text(json.dumps({"_class_name": "MiniPipeline", "unet": ["diffusers",
                                                                                               "UNet2DConditionModel"]}))
    with pytest.raises(RevivalError, match="first-generation folders are no longer supported"):
        load_pipeline(gen1)
    assert bundled_world(gen1) is None
    for argv in (["generate", "--prompt", "a star", "--out", str(tmp_path / "g.png")],
                 ["evaluate", "--concept", "star", "--out", str(tmp_path / "ev")],
                 ["experiment", "rq1", "--out", str(tmp_path / "rq1")]):
        assert main([*argv, "--model", str(gen1)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"{gen1}: a first-generation mini model (MiniPipeline)" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen1"]


def test_evaluate_cli_measures_a_miniature_sd_with_its_world(minisd_folder, tmp_path):
    import json

    from revival.cli import main

    out = tmp_path / "ev"
    assert main(["evaluate", "--model", str(minisd_folder), "--concept", "striped", "-n", "1", "--steps", "2",
                 "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["world"] == "minisd" and set(result["per_concept"]) == {"cage", "striped", "photo"}
    assert result["config"]["guidance"] == 3.0


def test_experiment_settings_on_a_miniature_sd_are_the_paper_s(minisd_folder):
    from revival.cli import build_parser
    from revival.cli.experiment import _config

    args = build_parser().parse_args(["experiment", "rq1", "--model", str(minisd_folder), "--concepts", "star",
                                      "striped"])
    s = _config(args, "minisd", minisd_folder).study
    assert (s.skill_ratio, s.attribute_skill_ratio, s.timesteps, s.n_eval, s.preserved) == (0.02, 0.01, 10, 32, 3)
    assert (s.eval_steps, s.guidance) == (20, 3.0)
    args = build_parser().parse_args(["experiment", "rq1", "--model", str(minisd_folder), "--guidance", "5"])
    assert _config(args, "minisd", minisd_folder).study.guidance == 5.0  # an earlier run's sampling, on request
    args = build_parser().parse_args(["experiment", "rq1", "--concepts", "church", "--preserved", "2"])
    with pytest.raises(RevivalError, match="--preserved applies to a miniature Stable Diffusion only"):
        _config(args, None, images=False)  # a Stable Diffusion model


def test_evaluate_preserved_pools_the_experiments_seeded_sample(minisd_folder, tmp_path, capsys):
    import json

    from revival.cli import main
    from revival.evaluate.mini_eval import measured_concepts

    out = tmp_path / "ev"
    assert main(["evaluate", "--model", str(minisd_folder), "--concept", "star", "-n", "1", "--steps", "1",
                 "--preserved", "2", "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    sample = measured_concepts("minisd", "object", "star", 2, 0)
    assert set(result["per_concept"]) == set(sample) and len(sample) == 3 and sample[0] == "star"
    assert result["intervals"]["preserved"]["n"] == 2 and result["config"]["preserved"] == 2
    study = Study(load_pipeline(minisd_folder), tmp_path / "s", StudySettings(preserved=2))
    assert study.measured("star", "object") == sample  # the sample `experiment --preserved 2` draws
    sd = tiny_sd_pipeline(tmp_path / "sd")
    capsys.readouterr()
    assert main(["evaluate", "--model", str(sd), "--concept", "church", "--preserved", "1", "--out",
                 str(tmp_path / "e2")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--preserved applies to a bundled mini model only" in err
    assert not (tmp_path / "e2").exists()
