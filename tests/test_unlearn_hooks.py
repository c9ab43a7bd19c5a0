"""Activation collection: per-step hook sums, CFG halves, early stop, batching."""

import pytest
import torch
from diffusers import PNDMScheduler

from revival.unlearn.hooks import NormCollector, collect_norms, ddim_scheduler
from revival.unlearn.wanda import normalised_sq_colsum

FF = "mid_block.attentions.0.transformer_blocks.0.ff.net.2"  # input (batch, 8*8 tokens, 128)
TO_K = "mid_block.attentions.0.transformer_blocks.0.attn2.to_k"  # input: text states (batch, 16, 128)
PROMPTS = ["a star in a desert", "a ball in a snow", "a house in a city"]


@pytest.fixture(scope="module")
def pipe(random_mini_pipeline):
    torch.set_num_threads(1)
    return random_mini_pipeline


def test_norms_match_a_manual_computation_and_include_both_cfg_halves(pipe):
    seen = []
    handle = dict(pipe.unet.named_modules())[FF].register_forward_pre_hook(lambda m, a: seen.append(a[0].clone()))
    try:
        norms, rows = collect_norms(pipe, PROMPTS, [FF], timesteps=2, num_inference_steps=5, guidance_scale=4.0)
    finally:
        handle.remove()
    assert len(seen) == 2  # stopped after the first T=2 UNet calls
    assert seen[0].shape == (2 * len(PROMPTS), 64, 128)  # unconditional + conditional halves
    assert norms[FF].shape == (2, 128)
    for t in range(2):
        assert torch.allclose(norms[FF][t], normalised_sq_colsum(seen[t]).sqrt(), atol=1e-5)
    assert rows[FF] == 2 * 2 * len(PROMPTS) * 64


def test_no_guidance_hooks_half_the_rows(pipe):
    _, rows_cfg = collect_norms(pipe, PROMPTS[:1], [FF], 1, 3, guidance_scale=4.0)
    _, rows_plain = collect_norms(pipe, PROMPTS[:1], [FF], 1, 3, guidance_scale=1.0)
    assert rows_cfg[FF] == 2 * rows_plain[FF] == 2 * 64


def test_batching_does_not_change_the_norms(pipe):
    one, _ = collect_norms(pipe, PROMPTS, [FF, TO_K], 2, 4, 4.0, batch_size=3)
    split, _ = collect_norms(pipe, PROMPTS, [FF, TO_K], 2, 4, 4.0, batch_size=2)
    for name in (FF, TO_K):
        assert torch.allclose(one[name], split[name], atol=1e-4)


def test_text_states_are_the_same_at_every_step(pipe):
    norms, rows = collect_norms(pipe, PROMPTS[:2], [TO_K], 3, 3, 4.0)
    assert norms[TO_K].shape == (3, 128)
    assert torch.allclose(norms[TO_K][0], norms[TO_K][2], atol=1e-5)
    assert rows[TO_K] == 3 * 2 * 2 * 16


def test_timesteps_beyond_the_sampler_and_unknown_modules_fail(pipe):
    with pytest.raises(ValueError):
        collect_norms(pipe, PROMPTS, [FF], timesteps=6, num_inference_steps=5, guidance_scale=4.0)
    with pytest.raises(KeyError):
        with NormCollector(pipe.unet, ["no.such.module"], 1):
            pass


def test_hooks_are_removed_after_collection(pipe):
    collect_norms(pipe, PROMPTS[:1], [FF], 1, 2, 4.0)
    assert not dict(pipe.unet.named_modules())[FF]._forward_pre_hooks
    assert not pipe.unet._forward_hooks


def test_ddim_scheduler_is_temporary():
    class Holder:
        scheduler = PNDMScheduler(num_train_timesteps=1000)

    h = Holder()
    with ddim_scheduler(h):
        assert type(h.scheduler).__name__ == "DDIMScheduler"
    assert isinstance(h.scheduler, PNDMScheduler)
