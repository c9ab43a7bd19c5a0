"""ConceptPrune (Chavhan et al. 2024): erase a concept by zeroing its WANDA-skilled UNet weights.

For each concept: sample the base and the target prompts with hooks on the chosen layers, turn
the per-step column norms into per-step WANDA masks, take their union over the first T steps
(with the `select_ratio` vote), then the union over concepts; pruned weights become exactly 0.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from revival.checkpoints import LAYER_PRESETS, module_name
from revival.errors import RevivalError
from revival.families import denoiser, family_of, ffn_weights, sampling
from revival.unlearn.hooks import collect_norms
from revival.unlearn.prompts import PromptPairs, check_vocabulary, family_prompts
from revival.unlearn.wanda import union_over_steps, wanda_mask
from revival.worlds import world_of

# Sampling used for activation collection on SD 1.x/2.x (the bundled model included): (num_inference_steps,
# guidance_scale), the paper's SD1.5 setting; the other families use their published defaults (`revival.families`).
PAPER_SAMPLING = (50, 7.5)


@dataclass
class PruneResult:
    """Masks (parameter name -> bool, True = pruned), statistics, prompts and settings of one run."""

    masks: dict[str, torch.Tensor]
    per_layer: dict[str, dict]
    per_concept: dict[str, dict]
    prompts: dict[str, PromptPairs]
    config: dict
    timings_s: dict[str, float] = field(default_factory=dict)


def hook_layers(unet: torch.nn.Module, hook: str = "ffn2") -> list[str]:
    """Parameter names of the 2-D weights ConceptPrune hooks in a UNet or transformer (a LAYER_PRESETS name):
    feed-forward nets found by module (`revival.families.ffn_weights`); one line when there are none."""
    return ffn_weights(unet, hook)


def layer_stats(masks: dict[str, torch.Tensor]) -> dict[str, dict]:
    """{name: {shape, pruned, density}} with density = pruned / size."""
    return {n: {"shape": list(m.shape), "pruned": int(m.sum()), "density": float(m.sum()) / m.numel()}
            for n, m in masks.items()}


def apply_masks(unet: torch.nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Set the masked weights of `unet` to exactly 0, in place."""
    params = dict(unet.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].masked_fill_(mask.to(params[name].device), 0)


def masks_from_norms(
    weights: dict[str, torch.Tensor],
    norms_base: dict[str, torch.Tensor],
    norms_target: dict[str, torch.Tensor],
    skill_ratio: float,
    select_ratio: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Per-layer masks from (T, in_features) column norms: WANDA per step, then the union over steps."""
    return {
        name: union_over_steps(
            [wanda_mask(w, nb, nt, skill_ratio) for nb, nt in zip(norms_base[name], norms_target[name], strict=True)],
            select_ratio,
        ).cpu()
        for name, w in weights.items()
    }


def _check_ratios(skill_ratio: float, timesteps: int, select_ratio: float, num_inference_steps: int) -> None:
    if not 0 < skill_ratio < 1:
        raise RevivalError(f"skill_ratio must be in (0, 1), got {skill_ratio}")
    if not 0 <= select_ratio < 1:
        raise RevivalError(f"select_ratio must be in [0, 1), got {select_ratio}")
    if not 1 <= timesteps <= num_inference_steps:
        raise RevivalError(f"timesteps must be in [1, num_inference_steps={num_inference_steps}], got {timesteps}")


def concept_prune(
    pipe,
    concepts: str | Sequence[str],
    family: str = "object",
    skill_ratio: float = 0.02,
    timesteps: int = 10,
    select_ratio: float = 0.0,
    hook: str = "ffn2",
    seed: int = 0,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    prompts: PromptPairs | None = None,
    batch_size: int = 16,
    apply: bool = True,
    progress: bool = False,
    height: int | None = None,
    width: int | None = None,
) -> PruneResult:
    """Erase `concepts` from `pipe.unet` (in place when `apply`); masks are the union over concepts.

    Prompts come from `family` for each concept word (fillers by pipeline: the 64x64 world for the
    bundled mini model, the paper's lists otherwise), or from `prompts` (then `concepts` is one label).
    Sampling defaults: 50 steps, guidance 7.5 for Stable Diffusion 1.x/2.x (the bundled model included);
    the family's published defaults for SDXL, SD3 and Flux (`revival.families`), at the
    pipeline's default size unless `height`/`width` are given. Only the first `timesteps` denoising
    steps are run. The denoiser (UNet or transformer) is pruned in place when `apply`.
    """
    t_start = time.perf_counter()
    concepts = [concepts] if isinstance(concepts, str) else list(concepts)
    if not concepts:
        raise RevivalError("no concept given")
    world_name = world_of(pipe)
    fam = family_of(pipe)
    steps_default, guidance_default = PAPER_SAMPLING
    if fam not in ("sd1", "sd2"):
        base = sampling(pipe)
        steps_default, guidance_default = base.steps, base.guidance
    num_inference_steps = num_inference_steps or steps_default
    guidance_scale = guidance_default if guidance_scale is None else guidance_scale
    plan = sampling(pipe, num_inference_steps, guidance_scale, batch_size, height, width)
    _check_ratios(skill_ratio, timesteps, select_ratio, num_inference_steps)
    if prompts is not None and len(concepts) != 1:
        raise RevivalError(f"custom prompt pairs describe one concept, got {len(concepts)} concept labels")
    pairs = {c: prompts if prompts is not None else family_prompts(c, family, world_name) for c in concepts}
    if world_name != "sd":  # a word-level vocabulary: unknown words are an error, not <unk>
        for p in pairs.values():
            check_vocabulary(pipe.tokenizer, p)
    model = denoiser(pipe)
    names = hook_layers(model, hook)
    weights = {n: p.detach() for n, p in model.named_parameters() if n in set(names)}
    modules = [module_name(n) for n in names]

    size = {"height": plan.height, "width": plan.width}

    def norms(prompt_list: tuple[str, ...]) -> dict[str, torch.Tensor]:
        got, _ = collect_norms(pipe, prompt_list, modules, timesteps, num_inference_steps, guidance_scale,
                               seed, batch_size, progress, **size)
        return {n: got[module_name(n)] for n in names}

    t_collect = t_score = 0.0
    base_cache: dict[tuple[str, ...], dict[str, torch.Tensor]] = {}
    masks = {n: torch.zeros(w.shape, dtype=torch.bool) for n, w in weights.items()}
    per_concept = {}
    for concept, pair in pairs.items():
        t0 = time.perf_counter()
        if pair.base not in base_cache:
            base_cache[pair.base] = norms(pair.base)
        target = norms(pair.target)
        t1 = time.perf_counter()
        concept_masks = masks_from_norms(weights, base_cache[pair.base], target, skill_ratio, select_ratio)
        for n, m in concept_masks.items():
            masks[n] |= m
        t2 = time.perf_counter()
        t_collect += t1 - t0
        t_score += t2 - t1
        per_concept[concept] = {"pruned": sum(int(m.sum()) for m in concept_masks.values())}
    t3 = time.perf_counter()
    if apply:
        apply_masks(model, masks)
    t4 = time.perf_counter()
    config = {
        "concepts": concepts, "family": family if prompts is None else "custom", "world": world_name,
        "skill_ratio": skill_ratio, "timesteps": timesteps, "select_ratio": select_ratio, "hook": hook,
        "layers": LAYER_PRESETS[hook], "seed": seed, "num_inference_steps": num_inference_steps,
        "guidance_scale": guidance_scale, "images_per_prompt": 1, "model_family": fam,
        "scheduler": type(pipe.scheduler).__name__ if fam in ("sd3", "flux") else "DDIM",
        "height": plan.height, "width": plan.width, "dtype": str(model.dtype).removeprefix("torch."),
        "batch_size": batch_size, "sampling_stopped_after_steps": timesteps,
        "prompts": {c: p.as_dict() for c, p in pairs.items()},
    }
    timings = {"collect": t_collect, "score": t_score, "apply": t4 - t3, "total": t4 - t_start}
    return PruneResult(masks, layer_stats(masks), per_concept, pairs, config,
                       {k: round(v, 3) for k, v in timings.items()})
