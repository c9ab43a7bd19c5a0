"""`revival train-mini`: the miniature Stable Diffusion's stages from the command line, on a tiny
pool with tiny components: resumable to the same weights, exported atomically, one line for every bad input."""

import functools
import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from revival.checkpoints import sha256_file
from revival.cli import main
from revival.errors import RevivalError
from revival.minisd import build, training
from revival.minisd import unet as unet_module
from revival.minisd.autoencoder import VAETrainConfig
from revival.minisd.text_encoder import TextTrainConfig

POOL = 32
UNET = ("train-mini", "--variant", "narrow", "--steps", "4", "--autocast", "fp32", "--compile",
        "off")  # torch.compile is minutes of compiling on a CPU: see test_a_compiled_run_resumes_uncompiled_...


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A workdir with a tiny pool, VAE and text encoder (two steps each) and their latents: what the UNet needs."""
    torch.set_num_threads(1)
    workdir = tmp_path_factory.mktemp("minisd") / "w"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(build, "POOL_SIZE", POOL)
        quiet = lambda s: None  # noqa: E731
        vae = build.vae_stage(workdir, quiet, cfg=VAETrainConfig(steps=2, batch_size=2))
        te = build.text_stage(workdir, quiet, cfg=TextTrainConfig(steps=2, batch_size=8))
        build.latents_stage(workdir, vae, te)
    return workdir


@pytest.fixture
def workdir(base, tmp_path, monkeypatch):
    """A copy of the tiny workdir; UNet batches of 4 and a checkpoint after every step."""
    monkeypatch.setattr(build, "POOL_SIZE", POOL)
    monkeypatch.setattr(unet_module, "UNetTrainConfig", functools.partial(unet_module.UNetTrainConfig, batch_size=4))
    monkeypatch.setattr(training, "CHECKPOINT_EVERY_S", 0.0)
    return shutil.copytree(base, tmp_path / "w")


def _unet_weights(out):
    return load_file(str(out / "unet" / "diffusion_pytorch_model.safetensors"))


def test_stages_record_the_device(base):
    for name in ("vae-final", "text-final"):
        record = json.loads((base / f"{name}.json").read_text())
        assert record["device"] == "cpu" and record["devices"] == ["cpu"] and record["torch"] == torch.__version__


def test_unet_resumes_after_an_interruption_to_the_same_weights(workdir, tmp_path, monkeypatch, capsys):
    other = shutil.copytree(workdir, tmp_path / "other")
    assert main([*UNET, "--component", "unet", "--workdir", str(other), "--out", str(tmp_path / "a")]) == 0
    save = training.atomic_torch_save

    def interrupted(obj, path):
        save(obj, path)
        if obj["step"] == 2:
            raise KeyboardInterrupt

    out = tmp_path / "b"
    monkeypatch.setattr(training, "atomic_torch_save", interrupted)
    assert main([*UNET, "--component", "unet", "--workdir", str(workdir), "--out", str(out)]) == 130
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".b.")]
    monkeypatch.setattr(training, "atomic_torch_save", save)
    capsys.readouterr()
    assert main([*UNET, "--component", "unet", "--workdir", str(workdir), "--out", str(out)]) == 0
    assert "unet-narrow: resumed at step 2" in capsys.readouterr().out
    a, b = _unet_weights(tmp_path / "a"), _unet_weights(out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == 4 and record["device"] == "cpu" and record["devices"] == ["cpu"]
    assert record["torch"] == torch.__version__ and record["config"]["variant"] == "narrow"

    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(out, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    assert pipe("", num_inference_steps=1, output_type="np").images.shape == (1, 64, 64, 3)


def test_init_warm_starts_the_unet_and_its_record_says_from_what(workdir, tmp_path, capsys):
    """--init: the UNet starts from an exported warm start (fresh optimizer, warm-up from its step); the exported
    folder's record names the file, its step and sha256, and keeps them when the run is resumed."""
    first = shutil.copytree(workdir, tmp_path / "first")
    short = [a if a != "4" else "2" for a in UNET]
    assert main([*short, "--component", "unet", "--workdir", str(first), "--out", str(tmp_path / "a")]) == 0
    warm = tmp_path / "warm.safetensors"
    training.export_warm_start(first, "unet-narrow", {"unet": unet_module.build_unet("narrow")}, warm)
    capsys.readouterr()
    out = tmp_path / "b"
    argv = [*UNET, "--component", "unet", "--workdir", str(workdir), "--init", str(warm), "--out", str(out)]
    assert main(argv) == 0
    assert f"unet-narrow: warm start from {warm} at step 2" in capsys.readouterr().out
    record = json.loads((out / "training.json").read_text())
    assert record["warm_start"] == {"path": str(warm), "step": 2, "sha256": sha256_file(warm)}
    assert record["warmup_from_step"] == 2 and record["steps"] == 4
    shutil.rmtree(out)
    assert main(argv) == 0  # the checkpoint is resumed (already at step 4), not the warm start
    said = capsys.readouterr().out
    assert "exists: resuming it" in said and "warm start from" not in said
    assert json.loads((out / "training.json").read_text())["warm_start"] == record["warm_start"]


def test_all_skips_finished_components_and_exports_to_the_workdir(workdir, capsys):
    (workdir / "evaluator.safetensors").write_bytes(b"")  # stands for a trained evaluator
    argv = ["train-mini", "--variant", "narrow", "--steps", "2", "--compile", "off",
            "--workdir", str(workdir)]
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert all(f"{c}: trained earlier, kept" in said for c in ("evaluator", "vae", "text"))
    record = json.loads((workdir / "pipeline-narrow-2" / "training.json").read_text())
    assert record["device"] == "cpu" and record["compile"] is False and record["config"]["compile"] is False
    assert not [p for p in workdir.iterdir() if p.name.startswith(".pipeline")]  # no temporary folder, no lock


def test_a_compiled_run_resumes_uncompiled_and_back_with_plain_keys(workdir, tmp_path, monkeypatch, capsys):
    """--compile on trains through torch.compile's wrapper (here with the eager backend: real dynamo tracing without
    inductor's minutes of compiling) and saves the plain UNet: a checkpoint of either setting resumes with the other,
    to the weights of an uncompiled run, with the keys of a freshly built UNet."""
    plain = shutil.copytree(workdir, tmp_path / "plain")
    assert main([*UNET, "--component", "unet", "--workdir", str(plain), "--out", str(tmp_path / "a")]) == 0
    compiled = []
    real_compile = torch.compile

    def eager_compile(model, **kwargs):
        compiled.append(model)
        return real_compile(model, backend="eager", **kwargs)

    save = training.atomic_torch_save

    def interrupted(obj, path):
        save(obj, path)
        if obj["step"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(torch, "compile", eager_compile)
    monkeypatch.setattr(training, "atomic_torch_save", interrupted)
    on = [a if a != "off" else "on" for a in UNET]
    out = tmp_path / "b"
    try:
        assert main([*on, "--component", "unet", "--workdir", str(workdir), "--out", str(out)]) == 130
        assert len(compiled) == 1 and type(compiled[0]).__name__ == "UNet2DConditionModel"
        monkeypatch.setattr(training, "atomic_torch_save", save)
        expected = set(unet_module.build_unet("narrow").state_dict())
        keys = lambda: set(torch.load(workdir / "unet-narrow.pt", weights_only=True)["modules"]["unet"])  # noqa: E731
        assert keys() == expected
        capsys.readouterr()
        assert main([*UNET, "--component", "unet", "--workdir", str(workdir), "--out", str(out)]) == 0
        assert "unet-narrow: resumed at step 2" in capsys.readouterr().out and len(compiled) == 1
        a, b = _unet_weights(tmp_path / "a"), _unet_weights(out)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        record = json.loads((out / "training.json").read_text())
        assert record["compile"] is False and record["config"]["compile"] is False
        longer = [*[a if a != "4" else "6" for a in on], "--component", "unet", "--workdir", str(workdir)]
        assert main([*longer, "--out", str(tmp_path / "c")]) == 0  # and back: an uncompiled checkpoint, compiled on
        assert "unet-narrow: resumed at step 4" in capsys.readouterr().out and len(compiled) == 2
        assert keys() == expected and _unet_weights(tmp_path / "c").keys() == a.keys()
        record = json.loads((tmp_path / "c" / "training.json").read_text())
        assert record["compile"] is True and record["config"]["compile"] is True and record["steps"] == 6
    finally:
        torch._dynamo.reset()


def test_compile_auto_keeps_what_measured_faster():
    assert unet_module.resolve_compile("auto", True) is True  # bf16 autocast: 0.745 s/step against 0.857
    assert unet_module.resolve_compile("auto", False) is False  # fp32: 0.942 against 0.905
    assert unet_module.resolve_compile("on", False) is True and unet_module.resolve_compile("off", True) is False


def test_compile_without_a_cxx_compiler(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no g++ / c++ here
    monkeypatch.delenv("CXX", raising=False)
    assert unet_module.resolve_compile("auto", True) is False and unet_module.resolve_compile("off", True) is False
    with pytest.raises(RevivalError, match="--compile on: torch.compile needs a C\\+\\+ compiler"):
        unet_module.resolve_compile("on", True)


def _regular_file(tmp_path):
    (tmp_path / "f.txt").write_text("x")


def _busy_workdir(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / ".w.lock").write_text(f"{os.getppid()}\n")  # a live process holds it


def _foreign_warm_start(tmp_path):
    save_file({"unet.x": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"step": "3"})


@pytest.mark.parametrize(("argv", "says", "setup"), [
    (("--device", "bogus"), "argument --device: unknown device 'bogus'", None),
    (("--variant", "huge"), "argument --variant: invalid choice: 'huge'", None),
    (("--out", "{tmp}/f.txt/p"), "{tmp}/f.txt is a file", _regular_file),
    (("--workdir", "{tmp}/w"), "{tmp}/w: another revival run", _busy_workdir),
    (("--compile", "maybe"), "argument --compile: invalid choice: 'maybe'", None),
    (("--component", "text", "--compile", "off"), "--compile: only with --component all or unet", None),
    (("--component", "vae", "--out", "{tmp}/p"), "--out: only with --component all or unet", None),
    (("--init", "{tmp}/none.safetensors"), "--init {tmp}/none.safetensors: cannot read it", None),
    (("--init", "{tmp}/f.txt"), "--init {tmp}/f.txt: not a warm start", _regular_file),
    (("--init", "{tmp}/other.safetensors"), "not a warm start of the `base` UNet", _foreign_warm_start),
    (("--component", "text", "--init", "{tmp}/w.safetensors"), "--init: only with --component all or unet", None),
])
def test_bad_input_is_one_line_before_any_work(argv, says, setup, tmp_path, capsys):
    if setup is not None:
        setup(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.format(tmp=tmp_path) for a in argv]
    workdir = [] if "--workdir" in argv else ["--workdir", str(tmp_path / "fresh")]
    assert main(["train-mini", *argv, *workdir]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("revival train-mini: error: ")
    assert says.format(tmp=tmp_path) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no workdir, no --out, no lock


@pytest.mark.parametrize("argv", [("--generation", "1"), ("--generation", "2"), ("--lr", "0.001"), ("--seed", "3"),
                                  ("--batch-size", "4")])
def test_the_first_generation_s_options_are_gone(argv, tmp_path, capsys):
    """The first generation was removed, and with it --generation and the options only it took."""
    assert main(["train-mini", *argv, "--workdir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"unrecognized arguments: {' '.join(argv)}" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_a_device_torch_does_not_have_is_one_line(tmp_path, capsys):
    assert main(["train-mini", "--device", "cuda", "--workdir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("revival train-mini: error: --device cuda: CUDA is not available") and "\n" not in err
    assert not (tmp_path / "w").exists()
