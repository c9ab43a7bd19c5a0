import pytest
import torch
from safetensors.torch import save_file

from revival.checkpoints import load_checkpoint, save_checkpoint, select_layers
from revival.errors import RevivalError


def _unet_folder(pipe, path):
    pipe.unet.save_pretrained(path)
    return path


def test_unet_folder_round_trip(random_mini_pipeline, tmp_path):
    ckpt = load_checkpoint(_unet_folder(random_mini_pipeline, tmp_path / "unet_in"))
    assert ckpt.kind == "unet_folder" and ckpt.config["sample_size"] == 16
    sd = dict(ckpt.state_dict)
    name = select_layers(sd, "ffn2").names[0]
    sd[name] = torch.zeros_like(sd[name])
    out = save_checkpoint(sd, ckpt, tmp_path / "out")
    again = load_checkpoint(tmp_path / "out")
    assert out.name == "unet" and torch.equal(again.state_dict[name], sd[name])


def test_pipeline_folder_finds_unet(random_mini_folder):
    assert load_checkpoint(random_mini_folder).kind == "unet_folder"


def test_select_layers_presets_and_glob(random_mini_pipeline):
    sd = random_mini_pipeline.unet.state_dict()
    ffn2 = select_layers(sd, "ffn2").names
    assert len(ffn2) == 4 and all(n.endswith("ff.net.2.weight") for n in ffn2)
    assert len(select_layers(sd, "up_blocks.*.ff.net.2.weight").names) == 2
    sel = select_layers(sd, "*ff.net.2.*")
    assert sel.skipped and all(n.endswith("bias") for n in sel.skipped)
    with pytest.raises(RevivalError, match="matches no parameter"):
        select_layers(sd, "*ff.net.9.weight")


def test_bad_files(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(RevivalError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "x.txt")
    save_file({"w": torch.ones(4, 4)}, str(tmp_path / "ok.safetensors"))
    data = (tmp_path / "ok.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(RevivalError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "cut.safetensors")
    torch.save({"w": torch.ones(2, 2)}, tmp_path / "m.pt")
    with pytest.raises(RevivalError, match="allow-pickle"):
        load_checkpoint(tmp_path / "m.pt")
    assert torch.equal(load_checkpoint(tmp_path / "m.pt", allow_pickle=True).state_dict["w"], torch.ones(2, 2))
    with pytest.raises(RevivalError, match="not a diffusers UNet"):
        load_checkpoint(tmp_path)
