"""The miniature's training loop: a warm start carries the EMA weights and the step between machines."""

import torch
from safetensors import safe_open
from torch import nn

from revival.minisd.training import export_warm_start, train_loop


def _run(workdir, steps, init=None):
    torch.manual_seed(0)
    net = nn.Linear(4, 2)
    x, y = torch.randn(16, 4), torch.randn(16, 2)
    record = train_loop("net", workdir, {"net": net}, lambda s: ((net(x) - y) ** 2).mean(), steps, lr=0.05,
                        warmup=2, ema_decay=0.9, log=lambda s: None, init=init)
    return net, record


def test_warm_start_resumes_at_the_exported_step_from_the_ema_weights(tmp_path):
    first, _ = _run(tmp_path / "a", 6)  # at the end the EMA weights replace the live ones
    out = tmp_path / "warm.safetensors"
    assert export_warm_start(tmp_path / "a", "net", {"net": nn.Linear(4, 2)}, out) == 6
    with safe_open(str(out), "pt") as f:
        assert f.metadata()["step"] == "6" and f.get_tensor("net.weight").dtype == torch.float16
        assert torch.allclose(f.get_tensor("net.weight").float(), first.weight.detach(), atol=1e-3)
    second, record = _run(tmp_path / "b", 6, init=out)  # nothing left to train: the weights are the warm start's
    assert record["warm_start"] == str(out) and record["loss_per_100"] == []
    assert torch.allclose(second.weight.detach(), first.weight.detach(), atol=1e-3)
    _, longer = _run(tmp_path / "c", 9, init=out)
    assert len(longer["loss_per_100"]) == 1  # three more steps were trained
