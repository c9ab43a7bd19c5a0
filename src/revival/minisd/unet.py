"""The miniature's denoiser: a diffusers `UNet2DConditionModel` on 16x16x4 latents, built the way SD1.5's is.

Cross-attention transformer blocks at every level but the lowest (as SD's 64/32/16 of 64/32/16/8),
a cross-attention mid block, GEGLU feed-forward nets ending in `ff.net.2`. Variants differ in
the levers the design screen turns (widths, transformer depth, training length).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, UNet2DConditionModel

from revival.errors import RevivalError
from revival.minisd.text_encoder import TEXT_DIM

SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
)

BASE = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(64, 128, 128),
    layers_per_block=1,
    transformer_layers_per_block=1,
    norm_num_groups=16,
    cross_attention_dim=TEXT_DIM,
    attention_head_dim=4,
)

# The design screen's variants: name -> overrides of BASE.
VARIANTS: dict[str, dict] = {
    "base": {},
    "wide": {"block_out_channels": (96, 192, 192)},
    "deep": {"layers_per_block": 2},
    "narrow": {"block_out_channels": (48, 96, 96)},
    "t2": {"transformer_layers_per_block": 2},
    # Text states projected to 16 dims (fewer than the world's 28 concepts) before cross-attention: a linear
    # to_v can then no longer write each concept's features straight into the residual stream, as SD's 768
    # dims cannot for its thousands of concepts; the nonlinear FFN has to tell the concepts apart.
    "xattn16": {"cross_attention_dim": 16, "encoder_hid_dim": TEXT_DIM, "encoder_hid_dim_type": "text_proj"},
    # The base UNet under SD's noise schedule shifted to 16x16 latents (`SNR_SHIFT`).
    "snr16": {},
}
# Variants that train and sample under a shifted noise schedule: the signal-to-noise ratio at every t times this
# factor. The same noise hides a 16x16 latent's layout sooner than a 64x64 one's (Hoogeboom et al. 2023, "simple
# diffusion": shift log SNR by 2 log(64 / 16)), so under SD's own schedule the miniature decides its objects late
# in sampling (benchmarks/results/minisd_commit_time.json), after the first T = 10 of 50 steps ConceptPrune reads.
SNR_SHIFT: dict[str, float] = {"snr16": 16.0}


def scheduler_config(variant: str = "base") -> dict:
    """The DDIM config a variant trains and samples with: SD1.5's, or for `SNR_SHIFT` variants SD's schedule with
    the SNR at every t multiplied (as explicit `trained_betas`, so the folder still loads as a plain pipeline)."""
    shift = SNR_SHIFT.get(variant)
    if shift is None:
        return dict(SCHEDULER_CONFIG)
    ab = DDIMScheduler(**SCHEDULER_CONFIG).alphas_cumprod.double()
    snr = ab / (1 - ab) * shift
    ab = snr / (1 + snr)
    betas = 1 - ab / torch.cat([ab.new_ones(1), ab[:-1]])
    cfg = {k: v for k, v in SCHEDULER_CONFIG.items() if k not in ("beta_start", "beta_end", "beta_schedule")}
    return {**cfg, "trained_betas": [round(float(b), 10) for b in betas]}


def unet_config(variant: str) -> dict:
    """The full UNet config of a screen variant."""
    if variant not in VARIANTS:
        raise KeyError(f"unknown UNet variant {variant!r}; known: {', '.join(VARIANTS)}")
    return {**BASE, **VARIANTS[variant]}


def build_unet(variant: str = "base", seed: int = 0) -> UNet2DConditionModel:
    """An untrained UNet of one variant, deterministic under `seed`."""
    torch.manual_seed(seed)
    return UNet2DConditionModel(**unet_config(variant))


@dataclass(frozen=True)
class UNetTrainConfig:
    """Hyper-parameters of the denoiser's training (epsilon prediction, classifier-free dropout, EMA)."""

    variant: str = "base"
    steps: int = 6000
    batch_size: int = 32
    lr: float = 5e-4
    ema_decay: float = 0.999
    cond_dropout: float = 0.1
    seed: int = 0
    autocast: bool = False
    compile: bool = False  # torch.compile the forward (the module trained and saved stays the plain one)


def resolve_compile(setting: str, autocast: bool) -> bool:
    """Whether the UNet trains with torch.compile: "on", "off", or "auto", which keeps what measured faster
    (benchmarks/results/minisd_train_speed.json, one CPU thread): on under bf16 autocast (0.745 s/step against
    0.857 without compile, after about 3 minutes of compiling), off in fp32 (0.942 against 0.905). Inductor builds
    C++ kernels, so "auto" is off, and "on" one line, where no C++ compiler is on the PATH."""
    if setting not in ("auto", "on", "off"):
        raise RevivalError(f"--compile {setting}: use auto, on or off")
    if setting == "off":
        return False
    compiler = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if setting == "on" and compiler is None:
        raise RevivalError("--compile on: torch.compile needs a C++ compiler (g++, or $CXX) on the PATH; install one "
                           "or use --compile off")
    return setting == "on" or (autocast and compiler is not None)


def train_unet(latents: torch.Tensor, context: torch.Tensor, empty: torch.Tensor, cfg: UNetTrainConfig,
               workdir: Path, log=print, init: Path | None = None,
               device: str = "cpu") -> tuple[UNet2DConditionModel, dict]:
    """Train on cached latents (N, 4, 16, 16) and frozen text states per image (N, L, D); resumable, or warm-started
    from `init` (see `training.export_warm_start`). Trains on `device` from noisy batches made on the CPU.
    With `cfg.compile` the loss runs `torch.compile(unet)`, a wrapper sharing the UNet's parameters, while the
    checkpoint, EMA, warm start and returned model are the plain UNet's: the same keys either way, so a run may
    resume with compile switched on or off."""
    from revival.minisd.training import train_loop

    unet = build_unet(cfg.variant, cfg.seed)
    forward = torch.compile(unet) if cfg.compile else unet
    sched = DDIMScheduler(**scheduler_config(cfg.variant))

    def loss_fn(step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        idx = torch.randint(0, len(latents), (cfg.batch_size,), generator=g)
        x0, ctx = latents[idx], context[idx].clone()
        ctx[torch.rand(len(idx), generator=g) < cfg.cond_dropout] = empty
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, sched.config.num_train_timesteps, (len(idx),), generator=g)
        xt, t, ctx, noise = (v.to(device) for v in (sched.add_noise(x0, noise, t), t, ctx, noise))
        pred = forward(xt, t, encoder_hidden_states=ctx).sample
        return F.mse_loss(pred.float(), noise)

    name = f"unet-{cfg.variant}"
    if cfg.compile:
        log(f"{name}: torch.compile on; the first step compiles (minutes on a CPU)")
    record = train_loop(name, workdir, {"unet": unet}, loss_fn, cfg.steps, cfg.lr, warmup=200,
                        ema_decay=cfg.ema_decay, config={**asdict(cfg), "unet": unet_config(cfg.variant),
                                                       "snr_shift": SNR_SHIFT.get(cfg.variant, 1.0)}, log=log,
                        autocast=cfg.autocast, compiled=cfg.compile, init=init, device=device)
    return unet, record
