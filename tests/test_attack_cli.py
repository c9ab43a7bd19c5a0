import json

import pytest
import torch
from attack_helpers import prune, tiny_unet
from safetensors.torch import save_file

from revival.checkpoints import load_checkpoint
from revival.cli import main


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """An original and a pruned tiny UNet folder, and the pruned weights as a single safetensors file."""
    root = tmp_path_factory.mktemp("ckpts")
    unet = tiny_unet()
    unet.save_pretrained(root / "orig")
    pruned = prune({k: v.detach().clone() for k, v in unet.state_dict().items()})
    unet.load_state_dict(pruned)
    unet.save_pretrained(root / "pruned")
    save_file(pruned, str(root / "pruned.safetensors"))
    return root


def one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("revival revive: error:"), err
    for f in fragments:
        assert f in err, err


def test_round_trip_on_unet_folder(folders, tmp_path, capsys):
    out = tmp_path / "revived"
    rc = main(["revive", "--unet", str(folders / "pruned"), "--out", str(out), "--reference", str(folders / "orig")])
    assert rc == 0
    rec = json.loads((out / "result.json").read_text())
    assert rec["outputs"]["checkpoint"] == str(out / "unet")
    assert set(rec) >= {"command", "version", "config", "inputs", "per_layer", "timings_s", "sign_recovery"}
    assert rec["config"]["method"] == "softimpute" and rec["config"]["top_ratio"] == 0.6
    assert "sha256" in rec["inputs"]["unet"] and "sha256" in rec["inputs"]["reference"]
    revived = load_checkpoint(out).state_dict
    pruned = load_checkpoint(folders / "pruned").state_dict
    for name, row in rec["per_layer"].items():
        miss = pruned[name] == 0
        assert row["missing"] == int(miss.sum()) and int((revived[name][miss] != 0).sum()) == row["retained"]
    assert "sign recovery" in capsys.readouterr().out
    assert not (tmp_path / "revived.partial").exists()


def test_round_trip_on_safetensors_file_without_reference(folders, tmp_path):
    out = tmp_path / "r"
    assert main(["revive", "--unet", str(folders / "pruned.safetensors"), "--out", str(out), "--method", "als",
                 "--magnitude", "row_mean", "--top-ratio", "0.4"]) == 0
    rec = json.loads((out / "result.json").read_text())
    assert rec["outputs"]["checkpoint"] == str(out / "pruned.safetensors") and "sign_recovery" not in rec
    revived = load_checkpoint(out / "pruned.safetensors").state_dict
    assert set(revived) == set(load_checkpoint(folders / "pruned.safetensors").state_dict)
    assert main(["revive", "--unet", str(folders / "pruned.safetensors"), "--out", str(out)]) == 2  # not empty
    assert main(["revive", "--unet", str(folders / "pruned.safetensors"), "--out", str(out), "--overwrite"]) == 0


def test_reference_mini_means_the_bundled_unet(folders, tmp_path, monkeypatch):
    import revival.cli.revive as cli_revive

    pipe = tmp_path / "pipe"
    (pipe / "unet").mkdir(parents=True)
    for f in (folders / "orig").iterdir():
        (pipe / "unet" / f.name).write_bytes(f.read_bytes())
    monkeypatch.setattr(cli_revive, "resolve_model_path", lambda name: pipe if name == "mini" else None)
    out = tmp_path / "r"
    assert main(["revive", "--unet", str(folders / "pruned"), "--out", str(out), "--reference", "mini"]) == 0
    assert json.loads((out / "result.json").read_text())["sign_recovery"]["overall"] > 0


def test_bad_inputs_one_line_exit_2_nothing_written(folders, tmp_path, capsys):
    out = tmp_path / "never"

    def run(unet, *extra):
        return main(["revive", "--unet", str(unet), "--out", str(out), *extra])

    sd = load_checkpoint(folders / "pruned.safetensors").state_dict
    torch.save(sd, tmp_path / "m.pt")
    assert run(tmp_path / "m.pt") == 2
    one_line_error(capsys, "allow-pickle")
    bad = dict(sd)
    name = next(k for k in sd if k.endswith("ff.net.2.weight"))
    bad[name] = sd[name].clone()
    bad[name][1, 1] = float("inf")
    save_file(bad, str(tmp_path / "inf.safetensors"))
    assert run(tmp_path / "inf.safetensors") == 2
    one_line_error(capsys, "NaN or Inf", name)
    assert run(folders / "pruned", "--layers", "*ff.net.22.weight") == 2
    one_line_error(capsys, "matches no parameter", "close names")
    (tmp_path / "notes.txt").write_text("hello")
    assert run(tmp_path / "notes.txt") == 2
    one_line_error(capsys, "not a checkpoint")
    data = (folders / "pruned.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    assert run(tmp_path / "cut.safetensors") == 2
    one_line_error(capsys, "truncated or corrupt")
    assert run(folders / "orig") == 2
    one_line_error(capsys, "nothing to revive")
    assert run(folders / "pruned", "--magnitude", "oracle_sign") == 2
    one_line_error(capsys, "needs the original weights")
    assert run(folders / "pruned", "--top-ratio", "1.5") == 2
    one_line_error(capsys, "top_ratio")
    assert not out.exists() and not (tmp_path / "never.partial").exists()


def test_help_lists_registry_choices(capsys):
    with pytest.raises(SystemExit):
        main(["revive", "--help"])
    text = capsys.readouterr().out
    for name in ("paper", "softimpute", "als", "structured", "nms", "oracle_sign", "random_sign", "zeros"):
        assert name in text


def test_non_2d_layers_are_skipped_with_a_note(folders, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["revive", "--unet", str(folders / "pruned"), "--out", str(out), "--layers", "*ff.net.2.*"]) == 0
    notes = json.loads((out / "result.json").read_text())["notes"]
    assert any("bias" in n and "not a 2-D weight" in n for n in notes)
    assert "note: skipped" in capsys.readouterr().err



def test_revive_reports_locator_quality_with_masks(tmp_path):
    """--masks (evaluation only) adds precision/recall/AUROC of the locator to result.json."""
    from revival.checkpoints import load_checkpoint, save_unet_folder, select_layers

    unet = tiny_unet()
    original = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    pruned = prune(original, frac=0.05)
    masks = {n: (pruned[n] == 0) & (original[n] != 0) for n in select_layers(original, "ffn2").names}
    save_unet_folder(pruned, dict(unet.config), tmp_path / "unet")
    save_file({k: v.to(torch.uint8) for k, v in masks.items()}, str(tmp_path / "masks.safetensors"))
    out = tmp_path / "rev"
    assert main(["revive", "--unet", str(tmp_path / "unet"), "--out", str(out), "--masks",
                 str(tmp_path / "masks.safetensors"), "--locate", "global_bottom", "--locate-param", "ratio=0.05"]) == 0
    rec = json.loads((out / "result.json").read_text())
    assert rec["config"]["locator_params"] == {"ratio": 0.05}
    for key in ("precision", "recall", "auroc"):
        assert 0 <= rec["locator"][key] <= 1
    assert rec["locator"]["recall"] > 0.5  # exact zeros are the smallest magnitudes
    assert load_checkpoint(out).kind == "unet_folder"


def test_method_params_are_checked_recorded_and_per_layer_completion_is_reported(folders, tmp_path, capsys):
    out = tmp_path / "mp"
    assert main(["revive", "--unet", str(folders / "pruned"), "--out", str(out), "--method-param", "lam=auto",
                 "--method-param", "rank=6", "--method-param", "mnar=false"]) == 0
    rec = json.loads((out / "result.json").read_text())
    assert rec["config"]["method_params"] == {"lam": "auto", "rank": 6, "mnar": False}
    for row in rec["per_layer"].values():
        assert {"lambda", "rank", "reason", "iterations", "converged", "rel_change", "seconds"} <= set(row)
        assert row["lambda"] > 0 and 0 < row["rank"] <= 6 and row["reason"].startswith("auto:")
        assert row["iterations"] >= 1 and isinstance(row["converged"], bool) and row["rel_change"] >= 0
    capsys.readouterr()
    for extra, fragments in ((["--method-param", "lamda=0.5"], ("--method-param", "lamda", "lam_grid")),
                             (["--method-param", "max_iters=many"], ("--method-param", "max_iters", "integer")),
                             (["--method-param", "seed=3"], ("--method-param", "no parameter seed")),
                             (["--method", "paper", "--method-param", "lam=1"], ("--method-param", "'paper'"))):
        assert main(["revive", "--unet", str(folders / "pruned"), "--out", str(tmp_path / "no"), *extra]) == 2
        one_line_error(capsys, *fragments)
    assert not (tmp_path / "no").exists()


def test_default_records_the_holdout_choice_per_layer(folders, tmp_path):
    out = tmp_path / "d"
    assert main(["revive", "--unet", str(folders / "pruned"), "--out", str(out)]) == 0
    for row in json.loads((out / "result.json").read_text())["per_layer"].values():
        assert row["reason"].startswith(("holdout:", "too few")) and row["converged"] in (True, False)


def test_method_param_text_values_are_checked_before_any_work(folders, tmp_path, capsys):
    for extra, fragments in ((["--method-param", "dtype=half"], ("--method-param", "dtype", "float32 or float64")),
                             (["--method-param", "holdout=nope"], ("--method-param", "next or random")),
                             (["--method", "als", "--method-param", "lam=big"], ("--method-param", "auto")),
                             (["--method-param", "lam_grid=abc"], ("--method-param", "lam_grid", "positive")),
                             (["--method-param", "lam_grid=[1, -2]"], ("--method-param", "lam_grid")),
                             (["--method-param", "sigma_every=-1"], ("--method-param", "sigma_every", ">= 0")),
                             (["--method-param", "tune_rows=0"], ("--method-param", "tune_rows", ">= 1"))):
        assert main(["revive", "--unet", str(folders / "pruned"), "--out", str(tmp_path / "no"), *extra]) == 2
        one_line_error(capsys, *fragments)
    assert not (tmp_path / "no").exists()
