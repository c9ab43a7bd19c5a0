import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from revival.checkpoints import load_checkpoint
from revival.cli import main

NAMES = ["down.ff.net.2.weight", "up.ff.net.2.weight"]


def _unlearned(tmp_path):
    g = torch.Generator().manual_seed(0)
    weights = {NAMES[0]: torch.randn(8, 32, generator=g), NAMES[1]: torch.randn(16, 64, generator=g),
               "down.ff.net.2.bias": torch.randn(8, generator=g)}
    masks = {n: torch.rand(weights[n].shape, generator=g) < 0.05 for n in NAMES}
    for n in NAMES:
        weights[n] = weights[n].masked_fill(masks[n], 0.0)
    save_file(weights, str(tmp_path / "model.safetensors"))
    save_file(masks, str(tmp_path / "masks.safetensors"))
    return weights, masks


def _run(tmp_path, *extra, out="out"):
    return main(["obfuscate", "--unet", str(tmp_path / "model.safetensors"), "--masks",
                 str(tmp_path / "masks.safetensors"), "--out", str(tmp_path / out), *extra])


def test_round_trip_safetensors(tmp_path):
    weights, masks = _unlearned(tmp_path)
    assert _run(tmp_path, "--scope", "layer", "--scale", "0.5", "--seed", "3") == 0
    out = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert set(out) == set(weights)
    for n in NAMES:
        assert torch.equal(out[n][~masks[n]], weights[n][~masks[n]]) and (out[n][masks[n]] != 0).all()
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["config"] == {"method": "gaussian", "scope": "layer", "scale": 0.5, "seed": 3, "params": {},
                                "device": "cpu"}
    assert result["outputs"]["checkpoint"].endswith("model.safetensors")
    assert result["pruned"] == sum(int(m.sum()) for m in masks.values()) == result["changed"]
    assert set(result["per_layer"]) == set(NAMES) and "obfuscate" in result["timings_s"]
    assert {"unet", "masks"} <= set(result["inputs"]) and result["command"].startswith("revival")
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_params_and_decoys(tmp_path):
    weights, masks = _unlearned(tmp_path)
    assert _run(tmp_path, "--method", "decoy", "--param", "decoys=1", "--param", "pattern=row") == 0
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["config"]["params"] == {"decoys": 1, "pattern": "row"}
    assert result["decoys"] == result["pruned"]


def test_unet_folder_round_trip(random_mini_pipeline, tmp_path):
    random_mini_pipeline.unet.save_pretrained(tmp_path / "unlearned")
    sd = load_checkpoint(tmp_path / "unlearned").state_dict
    name = [n for n in sd if n.endswith("ff.net.2.weight")][0]
    mask = torch.zeros(sd[name].shape, dtype=torch.bool)
    mask[:, :3] = True
    save_file({name: mask}, str(tmp_path / "masks.safetensors"))
    rc = main(["obfuscate", "--unet", str(tmp_path / "unlearned"), "--masks", str(tmp_path / "masks.safetensors"),
               "--out", str(tmp_path / "out")])
    assert rc == 0
    again = load_checkpoint(tmp_path / "out")
    assert again.kind == "unet_folder" and again.config == load_checkpoint(tmp_path / "unlearned").config
    changed = again.state_dict[name] != sd[name]
    assert torch.equal(changed, mask)
    assert all(torch.equal(again.state_dict[k], v) for k, v in sd.items() if k != name)


def _bad_masks(tmp_path, kind):
    weights, masks = _unlearned(tmp_path)
    if kind == "name":
        masks = {"nope.weight": masks[NAMES[0]]}
    elif kind == "shape":
        masks = {NAMES[0]: torch.ones(3, 3, dtype=torch.bool)}
    elif kind == "empty":
        masks = {n: torch.zeros_like(m) for n, m in masks.items()}
    save_file(masks, str(tmp_path / "masks.safetensors"))


@pytest.mark.parametrize("case, extra, message", [
    ("name", [], "names no parameter"),
    ("shape", [], "has shape"),
    ("empty", [], "empty"),
    (None, ["--scale", "0"], "scale"),
    (None, ["--scale", "-1"], "scale"),
    (None, ["--method", "gaussian", "--param", "decoys=2"], "takes no parameter"),
    (None, ["--method", "lowrank", "--scope", "global"], "row or layer"),
])
def test_bad_input_writes_nothing(tmp_path, capsys, case, extra, message):
    if case:
        _bad_masks(tmp_path, case)
    else:
        _unlearned(tmp_path)
    assert _run(tmp_path, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_masks_file_and_existing_out(tmp_path, capsys):
    _unlearned(tmp_path)
    (tmp_path / "masks.safetensors").unlink()
    assert _run(tmp_path) == 2 and "no such masks file" in capsys.readouterr().err
    _unlearned(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    assert _run(tmp_path) == 2 and "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "out" / "keep.txt").exists()
    # --overwrite replaces only an output of ours (issue 12): make the folder an earlier run's
    (tmp_path / "out" / "result.json").write_text(json.dumps({"command": "revival obfuscate", "version": "0"}))
    assert _run(tmp_path, "--overwrite") == 0 and not (tmp_path / "out" / "keep.txt").exists()
