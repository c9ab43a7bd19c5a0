"""The miniature's training loop: a warm start carries the EMA weights and the step between machines."""

import pytest
import torch
from safetensors import safe_open
from torch import nn

from revival.checkpoints import sha256_file
from revival.errors import RevivalError
from revival.minisd.training import export_warm_start, train_loop


def _run(workdir, steps, init=None, log=lambda s: None, warmup=2, stop=None):
    """A seeded linear fit; `stop`: Ctrl-C at that step."""
    torch.manual_seed(0)
    net = nn.Linear(4, 2)
    x, y = torch.randn(16, 4), torch.randn(16, 2)

    def loss(step):
        if step == stop:
            raise KeyboardInterrupt
        return ((net(x) - y) ** 2).mean()

    record = train_loop("net", workdir, {"net": net}, loss, steps, lr=0.05, warmup=warmup, ema_decay=0.9, log=log,
                        init=init)
    return net, record


def test_warm_start_resumes_at_the_exported_step_from_the_ema_weights(tmp_path):
    first, _ = _run(tmp_path / "a", 6)  # at the end the EMA weights replace the live ones
    out = tmp_path / "warm.safetensors"
    assert export_warm_start(tmp_path / "a", "net", {"net": nn.Linear(4, 2)}, out) == 6
    with safe_open(str(out), "pt") as f:
        assert f.metadata()["step"] == "6" and f.get_tensor("net.weight").dtype == torch.float16
        assert torch.allclose(f.get_tensor("net.weight").float(), first.weight.detach(), atol=1e-3)
    second, record = _run(tmp_path / "b", 6, init=out)  # nothing left to train: the weights are the warm start's
    assert record["warm_start"] == {"path": str(out), "step": 6, "sha256": sha256_file(out)}
    assert record["warmup_from_step"] == 6 and record["loss_per_100"] == []
    assert torch.allclose(second.weight.detach(), first.weight.detach(), atol=1e-3)
    _, longer = _run(tmp_path / "c", 9, init=out)
    assert len(longer["loss_per_100"]) == 1  # three more steps were trained



def test_a_resumed_run_ends_with_the_uninterrupted_run_s_weights_and_names_its_device(tmp_path, monkeypatch):
    import revival.minisd.training as training

    monkeypatch.setattr(training, "CHECKPOINT_EVERY_S", 0.0)  # a checkpoint after every step
    whole, record = _run(tmp_path / "a", 6, warmup=4)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", 6, warmup=4, stop=3)
    said = []
    resumed, _ = _run(tmp_path / "b", 6, warmup=4, log=said.append)  # still warming up: the warm-up goes on
    assert said == ["net: resumed at step 3"]
    assert torch.equal(resumed.weight, whole.weight) and torch.equal(resumed.bias, whole.bias)
    assert record["device"] == "cpu" and record["devices"] == ["cpu"] and record["torch"] == torch.__version__


def test_a_checkpoint_beyond_the_steps_asked_is_one_line(tmp_path):
    _run(tmp_path, 6)
    with pytest.raises(RevivalError, match=r"net.pt: already trained 6 steps, more than the 4 asked"):
        _run(tmp_path, 4)
