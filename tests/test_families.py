"""Every diffusers text-to-image family the method applies to, end to end on a tiny random pipeline built from
configs: prune -> revive -> obfuscate -> evaluate (the artists' protocol with a tiny random CLIP: CLIP score and
the pairwise score against the original weights) through the command line, one named test per family; the
same loop through the Python API on CUDA where there is a GPU; dtypes; the families' one-line refusals."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from revival.cli import main
from revival.testing import TINY_FAMILIES, tiny_clip_folder

FAST = ("--steps", "4", "--timesteps", "2", "--skill-ratio", "0.1", "--batch-size", "12")
SIZE = ("--height", "16", "--width", "16")  # Flux's pipeline default is 1024 px whatever the config


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    built: dict[str, object] = {}

    def get(family: str):
        if family not in built:
            built[family] = TINY_FAMILIES[family](root / family)
        return built[family]

    return get


def run_ok(capsys, *args) -> str:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def loop(family: str, model, tmp_path, capsys, denoiser: str) -> dict:
    """prune -> revive (scored against the original) -> obfuscate -> generate with the revived and defended weights."""
    unl, rev, dfd = tmp_path / "unlearned", tmp_path / "revived", tmp_path / "defended"
    size = SIZE if family == "flux" else ()
    run_ok(capsys, "prune", "--model", model, "--concept", "church", "--out", unl, "--device", "cpu", *FAST, *size)
    assert (unl / denoiser / "config.json").is_file()
    pruned = json.loads((unl / "result.json").read_text())
    assert pruned["config"]["pipeline"]["family"] == family
    assert pruned["summary"]["pruned"] > 0
    assert all(".ff.net.2.weight" in n and "ff_context" not in n for n in pruned["per_layer"])
    run_ok(capsys, "revive", "--unet", unl, "--out", rev, "--reference", model, "--masks", unl / "masks.safetensors",
           "--device", "cpu")
    revived = json.loads((rev / "result.json").read_text())
    assert revived["sign_recovery"]["overall"] is not None
    run_ok(capsys, "obfuscate", "--unet", unl, "--masks", unl / "masks.safetensors", "--out", dfd, "--device", "cpu")
    clip = tiny_clip_folder(tmp_path / "clip")
    for stage in (rev, dfd):
        out = tmp_path / f"eval-{stage.name}"
        run_ok(capsys, "evaluate", "--model", model, "--unet", stage / denoiser, "--concept", "Monet", "--clip", clip,
               "-n", "1", "--steps", "2", "--out", out, "--device", "cpu", *size)
        record = json.loads((out / "result.json").read_text())
        assert record["config"]["sampling"]["family"] == family
        assert record["clip_score"]["target"]["n"] == 1 and record["pairwise"]["n"] == 1
    return pruned


def test_loop_sd1(tiny, tmp_path, capsys):
    loop("sd1", tiny("sd1"), tmp_path, capsys, "unet")


def test_loop_sd2_v_prediction(tiny, tmp_path, capsys):
    model = tiny("sd2")
    assert json.loads((model / "scheduler" / "scheduler_config.json").read_text())["prediction_type"] == "v_prediction"
    loop("sd2", model, tmp_path, capsys, "unet")


def test_loop_sdxl(tiny, tmp_path, capsys):
    pruned = loop("sdxl", tiny("sdxl"), tmp_path, capsys, "unet")
    assert len(pruned["per_layer"]) == 8  # two transformer blocks per attention in the second level


def test_loop_sd3(tiny, tmp_path, capsys):
    pruned = loop("sd3", tiny("sd3"), tmp_path, capsys, "transformer")
    assert pruned["config"]["scheduler"] == "FlowMatchEulerDiscreteScheduler"


def test_loop_flux(tiny, tmp_path, capsys):
    pruned = loop("flux", tiny("flux"), tmp_path, capsys, "transformer")
    assert pruned["config"]["height"] == 16


def test_prune_in_bf16_records_the_dtype(tiny, tmp_path, capsys):
    out = tmp_path / "u"
    run_ok(capsys, "prune", "--model", tiny("sd1"), "--concept", "church", "--out", out, "--dtype", "bf16",
           "--device", "cpu", *FAST)
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["pipeline"]["dtype"] == "bfloat16"
    assert json.loads((out / "unet" / "config.json").read_text())["_class_name"] == "UNet2DConditionModel"


def test_transformer_without_feed_forward_is_one_line(tiny, tmp_path, capsys):
    from diffusers import FluxTransformer2DModel

    model = tmp_path / "noff"
    shutil.copytree(tiny("flux"), model)
    shutil.rmtree(model / "transformer")
    FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=0, num_single_layers=1, attention_head_dim=16,
                           num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32,
                           axes_dims_rope=(4, 4, 8)).save_pretrained(model / "transformer")
    code = main(["prune", "--model", str(model), "--concept", "church", "--out", str(tmp_path / "o"), *FAST, *SIZE])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no feed-forward layers found" in err[0]
    assert not (tmp_path / "o").exists()


def test_pickled_component_is_refused_without_allow_pickle(tiny, tmp_path, capsys):
    from safetensors.torch import load_file

    model = tmp_path / "pickled"
    shutil.copytree(tiny("sd1"), model)
    vae = model / "vae" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(vae), vae.with_suffix(".bin"))
    vae.unlink()
    code = main(["generate", "--model", str(model), "--prompt", "a church", "-n", "1", "--steps", "1",
                 "--out", str(tmp_path / "g.png"), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--allow-pickle" in err[0]
    run_ok(capsys, "generate", "--model", model, "--prompt", "a church", "-n", "1", "--steps", "1",
           "--out", tmp_path / "g.png", "--device", "cpu", "--allow-pickle")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here: the GPU smoke test runs only on a GPU")
@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_cuda_smoke_whole_loop(tiny, tmp_path, dtype):
    """prune -> revive -> obfuscate -> generate on CUDA through the Python API: masks, generators, completions and
    noise all on the weights' device (any CPU tensor mixed in raises)."""
    from revival.evaluate.generate import generate
    from revival.families import denoiser
    from revival.models import load_pipeline
    from revival.study import Study, StudySettings

    pipe = load_pipeline(tiny("sd1"), device="cuda", dtype=dtype)
    study = Study(pipe, tmp_path / "stages", StudySettings(skill_ratio=0.1, timesteps=2,
                                                           extra={"note": "cuda smoke"}))
    unlearned = study.unlearn("church", "object")
    revived = study.revive(unlearned, unlearned)
    assert revived.info["sign_recovery"]["overall"] is not None
    defended = study.defend(unlearned, "gaussian", 1.0)
    assert all(v.device.type == "cuda" for v in defended.state(study.original_state).values())
    denoiser(pipe).load_state_dict(revived.state(study.original_state))
    images = generate(pipe, ["a church"] * 2, [0, 1], num_inference_steps=2, guidance_scale=7.5)
    assert images.shape[0] == 2


@pytest.mark.parametrize("command", ["prune", "revive", "obfuscate", "evaluate", "generate", "experiment",
                                     "reproduce", "demo"])
def test_every_command_help_renders(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0 and "--device" in capsys.readouterr().out


@pytest.mark.parametrize("family", ["sd1", "flux"])
def test_study_loop_keeps_the_weights_dtype_and_device(tiny, tmp_path, family):
    """unlearn -> revive -> defend -> adaptive attack through the Python API on bf16 weights: every stage keeps the
    weights' dtype and device (the same code path the CUDA smoke test runs on a GPU)."""
    from revival.families import denoiser
    from revival.models import load_pipeline
    from revival.study import Study, StudySettings

    pipe = load_pipeline(tiny(family), dtype="bf16", device="cpu")
    settings = StudySettings(skill_ratio=0.1, timesteps=2, budget_factors=(1.0,))
    study = Study(pipe, tmp_path / "stages", settings)
    if family == "flux":  # Flux's pipeline samples at 1024 px unless told: prune through the API at 16 px
        from revival.unlearn import concept_prune

        res = concept_prune(pipe, "church", "object", skill_ratio=0.1, timesteps=2, num_inference_steps=4,
                            apply=False, height=16, width=16)
        assert sum(int(m.sum()) for m in res.masks.values()) > 0
        return
    unlearned = study.unlearn("church", "object")
    revived = study.revive(unlearned, unlearned)
    defended = study.defend(unlearned, "gaussian", 1.0)
    attacked = study.attack(defended, unlearned, "global_bottom", study.budgets(unlearned)[0])
    for stage in (unlearned, revived, defended, attacked):
        state = stage.state(study.original_state)
        assert all(state[n].dtype == torch.bfloat16 and state[n].device.type == "cpu" for n in study.layers)
    denoiser(pipe).load_state_dict(revived.state(study.original_state))
    assert revived.info["sign_recovery"]["overall"] is not None
