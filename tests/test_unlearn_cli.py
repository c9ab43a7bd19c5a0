"""`revival prune` end to end on the tiny Stable Diffusion pipeline, and every bad-input case."""

import json
import shutil

import pytest
import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file

from revival.checkpoints import load_checkpoint
from revival.cli import main
from revival.testing import tiny_sd_pipeline

FAST = ["--steps", "3", "--timesteps", "2"]


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    torch.set_num_threads(1)
    return tiny_sd_pipeline(tmp_path_factory.mktemp("model") / "sd")


def run_cli(capsys, *args):
    code = main(["prune", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_prune_writes_unet_masks_and_result(sd, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(capsys, "--model", sd, "--concept", "church", "--concept", "golf ball",
                              "--out", out, *FAST)
    assert code == 0 and "pruned" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["masks.safetensors", "result.json", "unet"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary folder left behind
    result = json.loads((out / "result.json").read_text())
    assert result["outputs"]["checkpoint"] == str(out / "unet")
    assert result["outputs"]["masks"] == str(out / "masks.safetensors")
    cfg = result["config"]
    assert cfg["concepts"] == ["church", "golf ball"] and cfg["skill_ratio"] == 0.02 and cfg["seed"] == 0
    assert cfg["timesteps"] == 2 and cfg["num_inference_steps"] == 3 and cfg["hook"] == "ffn2"
    assert cfg["prompts"]["church"]["target"][0] == "a church in a road"
    assert "sha256" in result["inputs"]["unet"] and set(result["timings_s"]) >= {"collect", "total"}
    masks = load_file(str(out / "masks.safetensors"))
    assert set(masks) == set(result["per_layer"]) and len(masks) == 4
    ckpt = load_checkpoint(out / "unet")
    original = load_checkpoint(sd)
    for name, mask in masks.items():
        assert mask.dtype == torch.bool
        assert result["per_layer"][name]["pruned"] == int(mask.sum())
        assert (ckpt.state_dict[name][mask] == 0).all()
        assert torch.equal(ckpt.state_dict[name][~mask], original.state_dict[name][~mask])
    assert sum(int(m.sum()) for m in masks.values()) > 0
    UNet2DConditionModel.from_pretrained(out / "unet")
    assert main(["generate", "--model", str(sd), "--unet", str(out / "unet"), "--prompt", "a church",
                 "-n", "1", "--steps", "1", "--out", str(tmp_path / "g.png")]) == 0


def test_overwrite_and_custom_prompts(sd, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("x")
    code, _, err = run_cli(capsys, "--model", sd, "--concept", "church", "--out", out, *FAST)
    assert code == 2 and "--overwrite" in err and (out / "old.txt").exists()
    # --overwrite replaces only an output of ours (issue 12): make the folder an earlier run's
    (out / "result.json").write_text(json.dumps({"command": "revival prune", "version": "0"}))
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("base\ttarget\na photo of a cat\ta photo of a cat by Monet\n")
    code, _, _ = run_cli(capsys, "--model", sd, "--prompts", pairs, "--out", out, "--overwrite",
                         "--hook", "attn_v", "--skill-ratio", "0.1", *FAST)
    assert code == 0 and not (out / "old.txt").exists()
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["concepts"] == ["pairs"] and result["config"]["family"] == "custom"
    assert all(n.endswith("attn2.to_v.weight") for n in result["per_layer"])
    assert "sha256" in result["inputs"]["prompts"]


def test_interrupted_run_leaves_no_output(sd, tmp_path, capsys, monkeypatch):
    import revival.results as results  # the prune command writes its result.json with results.write_result

    def fail(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(results, "write_result", fail)
    code, _, _ = run_cli(capsys, "--model", sd, "--concept", "church", "--out", tmp_path / "run", *FAST)
    assert code == 130 and list(tmp_path.iterdir()) == []


def one_line_error(capsys, *args, match):
    code, _, err = run_cli(capsys, *args)
    last = err.rstrip("\n").split("\n")[-1]  # diffusers' loading bars may come before it
    assert code == 2
    assert last.startswith("revival prune: error: ") and match in last, err
    return last


def test_bad_skill_ratio(sd, tmp_path, capsys):
    for ratio in ("0", "1", "1.5", "-0.1"):
        one_line_error(capsys, "--model", sd, "--concept", "church", "--out", tmp_path / "r", "--skill-ratio",
                       ratio, match="(0, 1)")
    assert not (tmp_path / "r").exists()


def test_folder_without_unet(sd, tmp_path, capsys):
    model = tmp_path / "nounet"
    shutil.copytree(sd, model)
    shutil.rmtree(model / "unet")
    one_line_error(capsys, "--model", model, "--concept", "church", "--out", tmp_path / "r", match="no UNet")
    one_line_error(capsys, "--model", tmp_path / "missing", "--concept", "church", "--out", tmp_path / "r",
                   match="no such model folder")


def test_unet_without_feed_forward_layers(sd, tmp_path, capsys):
    model = tmp_path / "noattn"
    shutil.copytree(sd, model)
    shutil.rmtree(model / "unet")
    UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32),
                         down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                         mid_block_type=None, layers_per_block=1, norm_num_groups=8,
                         cross_attention_dim=32).save_pretrained(model / "unet")
    one_line_error(capsys, "--model", model, "--concept", "church", "--out", tmp_path / "r", *FAST,
                   match="no feed-forward layers found")


def test_unknown_mini_word_lists_the_vocabulary(random_mini_folder, tmp_path, capsys):
    err = one_line_error(capsys, "--model", random_mini_folder, "--concept", "dragon", "--out", tmp_path / "r", *FAST,
                         match="'dragon'")
    assert "vocabulary" in err and "desert" in err


def test_concept_arguments(sd, tmp_path, capsys):
    one_line_error(capsys, "--model", sd, "--out", tmp_path / "r", match="--concept")
    pairs = tmp_path / "p.csv"
    pairs.write_text("base,target\na,b\n")
    one_line_error(capsys, "--model", sd, "--prompts", pairs, "--concept", "x", "--concept", "y",
                   "--out", tmp_path / "r", match="at most one")
