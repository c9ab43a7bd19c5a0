"""Diffusers text-to-image families: which one a pipeline is, its denoiser, its FFN layers, its sampling defaults.

The method applies to every family whose denoiser has transformer blocks with a feed-forward net
(diffusers' `FeedForward`): Stable Diffusion 1.x / 2.x and SDXL (a UNet) and SD3 and Flux (a
transformer; their joint blocks have two FFNs, `ff` on the image tokens and `ff_context` on the
text tokens: ConceptPrune and the attack target the image stream's, as on the UNet). FFNs are
found by module type, not by parameter name; their weights still end in `ff.net.2` (output) and
`ff.net.0.proj` (input), which is what checkpoint-only code (the attack) selects by.

Generation defaults per family are those the model's authors publish (SD1.x 512 px, 50 steps,
guidance 7.5; SDXL 1024 px; ...); the size is the pipeline's own default (its config's sample
size times the VAE factor), and the scheduler the folder's own. Every value is overridable and
recorded with the resolved ones (`sampling_record`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from revival.catalog import LAYER_PRESETS
from revival.errors import RevivalError
from revival.modelfiles import CLASS_FAMILIES, FAMILY_SAMPLING


@dataclass(frozen=True)
class Defaults:
    """Published sampling defaults of a family (size None: the pipeline's own default size)."""

    steps: int
    guidance: float
    batch_size: int


FAMILY_DEFAULTS = {name: Defaults(*values) for name, values in FAMILY_SAMPLING.items()}
PIPELINE_FAMILIES = {k: v for k, v in CLASS_FAMILIES.items() if v != "sd1"}


def family_of(pipe) -> str:
    """The family of a loaded pipeline: sd1, sd2, sdxl, sd3 or flux (one-line error otherwise)."""
    name = type(pipe).__name__
    if name in PIPELINE_FAMILIES:
        return PIPELINE_FAMILIES[name]
    if name == "StableDiffusionPipeline":
        v_pred = getattr(pipe.scheduler.config, "prediction_type", "epsilon") == "v_prediction"
        return "sd2" if v_pred or pipe.unet.config.cross_attention_dim == 1024 else "sd1"
    if getattr(pipe, "unet", None) is not None or getattr(pipe, "transformer", None) is not None:
        return "other"
    raise RevivalError(f"{name}: not a text-to-image pipeline with a UNet or transformer denoiser")


def denoiser_name(pipe) -> str:
    """`unet` or `transformer`: the pipeline component that denoises (and that the method prunes)."""
    for name in ("unet", "transformer"):
        if getattr(pipe, name, None) is not None:
            return name
    raise RevivalError(f"{type(pipe).__name__}: has no UNet or transformer to prune")


def denoiser(pipe) -> torch.nn.Module:
    """The pipeline's UNet or transformer."""
    return getattr(pipe, denoiser_name(pipe))


def feed_forwards(module: torch.nn.Module) -> list[str]:
    """Module names of the image-stream feed-forward nets (diffusers `FeedForward`, not a block's `ff_context`)."""
    from diffusers.models.attention import FeedForward

    return [name for name, m in module.named_modules()
            if isinstance(m, FeedForward) and name.rsplit(".", 1)[-1] != "ff_context"]


def ffn_weights(module: torch.nn.Module, hook: str = "ffn2") -> list[str]:
    """Parameter names of the weights ConceptPrune hooks: found by module for ffn1/ffn2, by name for attn_k/v.

    One-line error when the model has none (the method does not apply to it).
    """
    if hook not in LAYER_PRESETS:
        raise RevivalError(f"unknown hook {hook!r}; known: {', '.join(LAYER_PRESETS)}")
    what = type(module).__name__
    if hook in ("ffn1", "ffn2"):
        modules = dict(module.named_modules())
        names = []
        for ff in feed_forwards(module):
            net = modules[ff].net
            if hook == "ffn2":
                idx = [i for i, sub in enumerate(net) if isinstance(sub, torch.nn.Linear)]
                if idx:
                    names.append(f"{ff}.net.{idx[-1]}.weight")
            elif isinstance(getattr(net[0], "proj", None), torch.nn.Linear):
                names.append(f"{ff}.net.0.proj.weight")
        if not names:
            raise RevivalError(f"{what}: no feed-forward layers found (no diffusers FeedForward module): the "
                               "pruning method does not apply to this model")
        return names
    import fnmatch

    names = [n for n, p in module.named_parameters() if fnmatch.fnmatchcase(n, LAYER_PRESETS[hook]) and p.ndim == 2]
    if not names:
        raise RevivalError(f"{what}: has no {hook} layers ({LAYER_PRESETS[hook]}): the pruning method does not "
                           "apply to this model with this hook")
    return names


def default_size(pipe) -> tuple[int, int]:
    """(height, width) the pipeline generates when given none."""
    fam = family_of(pipe)
    factor = getattr(pipe, "vae_scale_factor", 8)
    if fam == "flux":
        size = getattr(pipe, "default_sample_size", 128) * factor
        return size, size
    sample = denoiser(pipe).config.get("sample_size", 64)
    h, w = (sample, sample) if isinstance(sample, int) else tuple(sample)
    return h * factor, w * factor


@dataclass
class Sampling:
    """Resolved sampling settings of one run (every value recorded in result.json)."""

    family: str
    steps: int
    guidance: float
    batch_size: int
    height: int
    width: int
    scheduler: str

    def record(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


def sampling(pipe, steps: int | None = None, guidance: float | None = None, batch_size: int | None = None,
             height: int | None = None, width: int | None = None) -> Sampling:
    """The family's defaults (a bundled world's own, e.g. the bundled miniature SD's 20 steps at guidance 3) with the
    given overrides."""
    from revival.modelfiles import WORLD_SAMPLING
    from revival.worlds import world_of

    fam = family_of(pipe)
    d = FAMILY_DEFAULTS.get(fam, FAMILY_DEFAULTS["sd1"])
    if fam == "sd1" and world_of(pipe) == "minisd":
        d = Defaults(*WORLD_SAMPLING["minisd"])
    size = default_size(pipe)
    height, width = height or size[0], width or size[1]
    return Sampling(fam, steps or d.steps, d.guidance if guidance is None else guidance, batch_size or d.batch_size,
                    height, width, type(pipe.scheduler).__name__)


def is_flow_matching(pipe) -> bool:
    """Whether the pipeline samples by flow matching (SD3, Flux): its scheduler cannot be swapped for DDIM."""
    return "FlowMatch" in type(pipe.scheduler).__name__
