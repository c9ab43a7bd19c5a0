"""concept_prune end to end on the random-init miniature Stable Diffusion (the bundled model's world) and on the tiny
Stable Diffusion pipeline."""

import pytest
import torch
from diffusers import PNDMScheduler, UNet2DConditionModel

from revival.errors import RevivalError
from revival.models import load_pipeline
from revival.testing import tiny_sd_pipeline
from revival.unlearn import PromptPairs, concept_prune, hook_layers

FAST = dict(num_inference_steps=3, timesteps=2)


@pytest.fixture(scope="module")
def mini(random_mini_pipeline):
    torch.set_num_threads(1)
    return random_mini_pipeline


@pytest.fixture(scope="module")
def star_masks(mini):
    return concept_prune(mini, "star", apply=False, **FAST).masks


def test_mini_prune_zeroes_exactly_the_masked_weights(random_mini_folder):
    pipe = load_pipeline(random_mini_folder)  # a copy: pruned in place
    before = {n: p.detach().clone() for n, p in pipe.unet.named_parameters()}
    res = concept_prune(pipe, "star", **FAST)
    after = dict(pipe.unet.named_parameters())
    assert sorted(res.masks) == sorted(hook_layers(pipe.unet, "ffn2")) and len(res.masks) == 4
    for name, p in after.items():
        mask = res.masks.get(name)
        if mask is None:
            assert torch.equal(p, before[name]), name
            continue
        assert (p[mask] == 0).all() and torch.equal(p[~mask], before[name][~mask])
        k = int(0.02 * p.shape[1])
        assert (mask.sum(1) <= k * FAST["timesteps"]).all()
        stats = res.per_layer[name]
        assert stats["shape"] == list(p.shape) and stats["pruned"] == int(mask.sum())
        assert stats["density"] == pytest.approx(mask.float().mean().item())
    assert sum(s["pruned"] for s in res.per_layer.values()) == res.per_concept["star"]["pruned"] > 0
    assert res.config["prompts"]["star"]["target"][0].startswith("a star in a")
    assert res.config["world"] == "minisd" and res.config["guidance_scale"] == 7.5  # the paper's sampling
    assert set(res.timings_s) >= {"collect", "score", "total"}


def test_mini_prune_is_deterministic_and_apply_false_keeps_weights(mini, star_masks):
    w = {n: p.detach().clone() for n, p in mini.unet.named_parameters()}
    again = concept_prune(mini, "star", apply=False, **FAST).masks
    assert all(torch.equal(star_masks[n], again[n]) for n in star_masks)
    assert all(torch.equal(p, w[n]) for n, p in mini.unet.named_parameters())


def test_several_concepts_unite_their_masks(mini, star_masks):
    ball = concept_prune(mini, "ball", apply=False, **FAST)
    both = concept_prune(mini, ["star", "ball"], apply=False, **FAST)
    for n in star_masks:
        assert torch.equal(both.masks[n], star_masks[n] | ball.masks[n])
    assert set(both.per_concept) == {"star", "ball"}
    assert not all(torch.equal(star_masks[n], ball.masks[n]) for n in star_masks)


def test_select_ratio_keeps_a_subset(mini, star_masks):
    voted = concept_prune(mini, "star", select_ratio=0.5, apply=False, **FAST).masks
    assert all((voted[n] & ~star_masks[n]).sum() == 0 for n in voted)
    assert sum(int(voted[n].sum()) for n in voted) < sum(int(star_masks[n].sum()) for n in star_masks)


def test_custom_prompts_and_other_hooks(mini):
    pairs = PromptPairs(("a photo of a ball", "a photo of a box"), ("a photo of a ball in a cage",
                                                                       "a photo of a box in a cage"))
    res = concept_prune(mini, "cage", prompts=pairs, hook="attn_v", skill_ratio=0.05, apply=False, **FAST)
    assert all(n.endswith("attn2.to_v.weight") for n in res.masks)
    assert res.config["family"] == "custom" and res.config["prompts"]["cage"] == pairs.as_dict()


@pytest.mark.parametrize("kwargs, match", [
    (dict(concepts="dragon"), "vocabulary"),
    (dict(concepts="star", skill_ratio=0.0), r"skill_ratio must be in \(0, 1\)"),
    (dict(concepts="star", skill_ratio=1.0), r"skill_ratio must be in \(0, 1\)"),
    (dict(concepts="star", timesteps=4), "timesteps"),
    (dict(concepts="star", select_ratio=1.0), "select_ratio"),
    (dict(concepts="star", hook="ffn3"), "ffn2, ffn1, attn_k, attn_v"),
    (dict(concepts=[]), "no concept"),
    (dict(concepts=["a", "b"], prompts=PromptPairs(("a",), ("b",))), "one concept"),
])
def test_bad_input(mini, kwargs, match):
    with pytest.raises(RevivalError, match=match):
        concept_prune(mini, **{"num_inference_steps": 3, "timesteps": 2, **kwargs})


def test_unet_without_transformer_blocks_is_refused():
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16),
                                down_block_types=("DownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "UpBlock2D"), mid_block_type=None,
                                layers_per_block=1, norm_num_groups=8, cross_attention_dim=8)
    with pytest.raises(RevivalError, match="no feed-forward layers found"):
        hook_layers(unet, "ffn2")


def test_tiny_stable_diffusion(tmp_path):
    pipe = load_pipeline(tiny_sd_pipeline(tmp_path / "sd"))
    pipe.scheduler = PNDMScheduler.from_config(pipe.scheduler.config)
    res = concept_prune(pipe, ["church", "golf ball"], **FAST)
    assert isinstance(pipe.scheduler, PNDMScheduler)  # DDIM only during collection
    assert len(res.masks) == 4 and res.config["world"] == "sd" and res.config["guidance_scale"] == 7.5
    assert len(res.config["prompts"]["church"]["base"]) == 12
    params = dict(pipe.unet.named_parameters())
    assert all((params[n][m] == 0).all() for n, m in res.masks.items())
    assert sum(s["pruned"] for s in res.per_layer.values()) > 0
    keys = concept_prune(pipe, "naked", family="attribute", hook="attn_k", skill_ratio=0.1, apply=False, **FAST)
    assert all(n.endswith("attn2.to_k.weight") for n in keys.masks)
    assert sum(s["pruned"] for s in keys.per_layer.values()) > 0
