"""The miniature's text encoder: a `CLIPTextModel` trained contrastively against an image encoder, then frozen.

As CLIP is trained before Stable Diffusion and frozen in it, the text encoder here learns only
from caption-image agreement on the mini world; the diffusion model never changes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel

from revival.minisd.data import to_tensor
from revival.minisd.tokenizer import MAX_LENGTH

TEXT_DIM = 128


def text_config(vocab_size: int) -> CLIPTextConfig:
    """CLIP text transformer: 3 layers, width 128, causal attention, final layer norm."""
    return CLIPTextConfig(vocab_size=vocab_size, hidden_size=TEXT_DIM, intermediate_size=512, num_hidden_layers=3,
                          num_attention_heads=4, max_position_embeddings=MAX_LENGTH, pad_token_id=0, bos_token_id=1,
                          eos_token_id=2, projection_dim=TEXT_DIM)


class ImageTower(nn.Module):
    """The contrastive partner: a small CNN from 64x64 RGB to a unit embedding (discarded after training)."""

    def __init__(self, dim: int = TEXT_DIM, channels: tuple[int, ...] = (32, 64, 96)):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.GroupNorm(8, c), nn.SiLU(),
                       nn.Conv2d(c, c, 3, padding=1), nn.GroupNorm(8, c), nn.SiLU(), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.proj = nn.Linear(c_in * 2, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(F.avg_pool2d(x, 2))  # 32x32 keeps every concept visible at a quarter of the cost
        return F.normalize(self.proj(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)), dim=-1)


@dataclass(frozen=True)
class TextTrainConfig:
    """Hyper-parameters of the contrastive training."""

    steps: int = 1500
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0


def pooled(text_encoder: CLIPTextModel, ids: torch.Tensor) -> torch.Tensor:
    """The EOS token's final hidden state (CLIP's pooled output)."""
    return text_encoder(ids).pooler_output


def train_text_encoder(pool: dict, tokenizer, cfg: TextTrainConfig, workdir: Path, log=print,
                       device: str = "cpu") -> tuple[CLIPTextModel, dict]:
    """Symmetric InfoNCE with every identical caption in the batch a positive; resumable; trains on `device` from
    batches drawn on the CPU."""
    from revival.minisd.training import train_loop

    torch.manual_seed(cfg.seed)
    te = CLIPTextModel(text_config(len(tokenizer)))
    tower = ImageTower()
    head = nn.Linear(TEXT_DIM, TEXT_DIM, bias=False)
    scale = nn.Parameter(torch.tensor(2.6))
    holder = nn.Module()
    holder.scale = scale
    captions, images = pool["captions"], pool["images"]
    ids_all = tokenizer(captions, padding="max_length", max_length=MAX_LENGTH, truncation=True,
                        return_tensors="pt").input_ids

    def loss_fn(step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        idx = torch.randint(0, len(captions), (cfg.batch_size,), generator=g)
        ids = ids_all[idx].to(device)
        t = F.normalize(head(pooled(te, ids)), dim=-1)
        v = tower(to_tensor(images[idx.numpy()]).to(device))
        logits = scale.exp().clamp(max=100) * t @ v.T
        same = (ids[:, None, :] == ids[None, :, :]).all(-1).float()
        target = same / same.sum(1, keepdim=True)
        return 0.5 * (-(target * logits.log_softmax(1)).sum(1).mean() - (target * logits.log_softmax(0)).sum(0).mean())

    record = train_loop("text_encoder", workdir, {"text_encoder": te, "tower": tower, "head": head, "scale": holder},
                        loss_fn, cfg.steps, cfg.lr, warmup=100, weight_decay=0.01, config=asdict(cfg), log=log,
                        device=device)
    record["retrieval_top1"] = retrieval_accuracy(te, head, tower, pool, tokenizer)
    te.requires_grad_(False)
    return te.eval(), record


@torch.no_grad()
def retrieval_accuracy(te, head, tower, pool: dict, tokenizer, n: int = 512) -> float:
    """Share of the last `n` pool images whose best-matching caption, among the distinct captions of those
    images, is their own (ties between identical captions count as a hit)."""
    captions = pool["captions"][-n:]
    distinct = sorted(set(captions))
    ids = tokenizer(distinct, padding="max_length", max_length=MAX_LENGTH, truncation=True,
                    return_tensors="pt").input_ids
    t = F.normalize(head(pooled(te, ids)), dim=-1)
    v = tower(to_tensor(pool["images"][-n:]))
    best = (v @ t.T).argmax(1)
    return float(sum(distinct[b] == c for b, c in zip(best.tolist(), captions, strict=True)) / n)
