"""The miniature's VAE: a diffusers `AutoencoderKL`, 64x64x3 images <-> 16x16x4 latents, as SD's 8x is 4x here."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from revival.minisd.data import to_tensor

VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(16, 32, 64),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=64,
)


@dataclass(frozen=True)
class VAETrainConfig:
    """Hyper-parameters of the VAE's training (L1 + MSE reconstruction, a small KL weight, as SD's VAE)."""

    steps: int = 3000
    batch_size: int = 16
    crop: int = 32  # the VAE is convolutional: train on random crops, 4x cheaper than whole images
    lr: float = 1e-3
    kl_weight: float = 1e-6
    seed: int = 0


def build_vae(seed: int = 0) -> AutoencoderKL:
    """An untrained VAE, deterministic under `seed`."""
    torch.manual_seed(seed)
    return AutoencoderKL(**VAE_CONFIG)


def train_vae(pool: dict, cfg: VAETrainConfig, workdir: Path, log=print,
              device: str = "cpu") -> tuple[AutoencoderKL, dict]:
    """Train on `pool` images (resumable) on `device`; sets `scaling_factor` to 1 / std of the latents, as SD does.
    Batches are drawn on the CPU, so the batch of a step is the same on every device."""
    from revival.minisd.training import train_loop

    vae = build_vae(cfg.seed)
    images = pool["images"]

    def loss_fn(step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        idx = torch.randint(0, len(images), (cfg.batch_size,), generator=g).numpy()
        x = _random_crop(to_tensor(images[idx]), cfg.crop, g).to(device)
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g).to(device)
        rec = vae.decode(z).sample
        kl = post.kl().mean() / z[0].numel()
        return F.l1_loss(rec, x) + F.mse_loss(rec, x) + cfg.kl_weight * kl * z[0].numel()

    record = train_loop("vae", workdir, {"vae": vae}, loss_fn, cfg.steps, cfg.lr, warmup=100, config=asdict(cfg),
                        log=log, device=device)
    with torch.no_grad():
        z = torch.cat([vae.encode(to_tensor(images[i : i + 64])).latent_dist.mean
                       for i in range(0, min(1024, len(images)), 64)])
        x = to_tensor(images[-256:])
        rec = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
    vae.register_to_config(scaling_factor=float(1 / z.std()))
    record["scaling_factor"] = vae.config.scaling_factor
    record["reconstruction_mae_0_255"] = float((rec - x).abs().mean() * 127.5)
    return vae, record


def _random_crop(x: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    if size >= x.shape[-1]:
        return x
    i, j = (int(v) for v in torch.randint(0, (x.shape[-1] - size) // 4 + 1, (2,), generator=g) * 4)
    return x[..., i : i + size, j : j + size]


@torch.no_grad()
def encode_pool(vae: AutoencoderKL, images, batch_size: int = 128) -> torch.Tensor:
    """Latent means of uint8 images, scaled by the VAE's scaling factor (the UNet's training targets)."""
    out = [vae.encode(to_tensor(images[i : i + batch_size])).latent_dist.mean
           for i in range(0, len(images), batch_size)]
    return torch.cat(out) * vae.config.scaling_factor
