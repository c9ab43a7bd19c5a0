"""The mini-world evaluator: a small CNN that reads object, style and cage off a 32x32 image.

It plays the role of the paper's ResNet-50 classifier, style classifier and nudity detector for
the mini model. Trained on fresh renders of `revival.mini.world` (every family and their
combinations: scenes alone, objects in scenes, photos, styles, caged objects, caged + styled),
with mild noise, blur and colour jitter so it tolerates the imperfect images a diffusion model
makes, plus a small share of junk (pixel noise, colour blobs) labelled "no object, no style, not
caged", so a failed generation never counts as a hit for any concept. Shipped as fp16
safetensors with a JSON sidecar describing how it was made.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from revival.checkpoints import atomic_save_safetensors, atomic_write_json
from revival.errors import RevivalError
from revival.mini import world

DEFAULT_PATH = Path(__file__).parent / "assets" / "evaluator.safetensors"
OBJECT_LABELS: tuple[str, ...] = (*world.OBJECTS, "none")
STYLE_LABELS: tuple[str, ...] = ("none", *world.STYLES)


@dataclass(frozen=True)
class EvaluatorTrainConfig:
    """Every hyper-parameter of an evaluator training run (all go into the sidecar JSON)."""

    steps: int = 1200
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    p_no_object: float = 0.2
    p_style: float = 0.6
    p_caged: float = 0.35
    p_junk: float = 0.05
    heldout: int = 2000


class MiniEvaluator(nn.Module):
    """Three conv stages (one conv at 32x32, two at 16x16 and 8x8, each then max-pooled), global
    average pooling, one linear head per task."""

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        self.channels = tuple(channels)
        layers: list[nn.Module] = []
        c_in = 3
        for stage, c in enumerate(self.channels):
            for _ in range(1 if stage == 0 else 2):
                layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                c_in = c
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.object_head = nn.Linear(c_in, len(OBJECT_LABELS))
        self.style_head = nn.Linear(c_in, len(STYLE_LABELS))
        self.caged_head = nn.Linear(c_in, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits (object, style, caged) for images (N, 3, 32, 32) in [-1, 1]."""
        h = self.features(x).mean(dim=(2, 3))
        return self.object_head(h), self.style_head(h), self.caged_head(h)[:, 0]


# ---------------------------------------------------------------- data
def random_eval_spec(rng: np.random.Generator, cfg: EvaluatorTrainConfig) -> world.Spec:
    """A spec from the factorial mixture: object or none, any scene, photo or style, caged or not."""
    obj = None if rng.uniform() < cfg.p_no_object else world.OBJECTS[rng.integers(len(world.OBJECTS))]
    scene = world.SCENES[rng.integers(len(world.SCENES))]
    style = world.STYLES[rng.integers(len(world.STYLES))] if rng.uniform() < cfg.p_style else None
    caged = obj is not None and rng.uniform() < cfg.p_caged
    return world.Spec(obj, scene, style, caged)


def labelled(images: np.ndarray, specs: list[world.Spec]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Float renders (N, 32, 32, 3) as uint8-quantised tensors (N, 3, 32, 32) in [-1, 1], with integer labels."""
    x = torch.from_numpy(np.round(images * 255) / 255).float().permute(0, 3, 1, 2) * 2 - 1
    labels = {
        "object": torch.tensor([OBJECT_LABELS.index(s.object or "none") for s in specs]),
        "style": torch.tensor([STYLE_LABELS.index(s.style or "none") for s in specs]),
        "caged": torch.tensor([s.caged for s in specs], dtype=torch.float32),
    }
    return x, labels


def junk_image(rng: np.random.Generator) -> np.ndarray:
    """A failed generation: per-pixel noise, smooth colour blobs, or a blend of both (no object, no style)."""
    fine = rng.uniform(size=(world.SIZE, world.SIZE, 3))
    k = int(rng.choice([2, 4, 8]))
    coarse = torch.from_numpy(rng.uniform(size=(1, 3, world.SIZE // k, world.SIZE // k)))
    smooth = F.interpolate(coarse, size=world.SIZE, mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    a = rng.uniform()
    return (a * fine + (1 - a) * smooth).astype(np.float32)


def render_labelled(n: int, seed, cfg: EvaluatorTrainConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """`n` images of the factorial mixture (a `p_junk` share of them junk) and their labels, from `seed`."""
    rng = np.random.default_rng(seed)
    specs, images = [], []
    for _ in range(n):
        if rng.uniform() < cfg.p_junk:
            specs.append(world.Spec(None, "any"))
            images.append(junk_image(rng))
        else:
            specs.append(random_eval_spec(rng, cfg))
            images.append(world.render(specs[-1], rng))
    return labelled(np.stack(images), specs)


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Mild corruptions of images in [-1, 1]: colour jitter, slight blur (on some), gaussian noise."""
    n = len(x)
    u = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    gain = 1 + (u(n, 1, 1, 1) - 0.5) * 0.2  # contrast +-10%
    shift = (u(n, 1, 1, 1) - 0.5) * 0.16 + (u(n, 3, 1, 1) - 0.5) * 0.08  # brightness and per-channel
    x = x * gain + shift
    sigma = 0.4 + 0.5 * u(n)
    k = torch.exp(-(torch.arange(-1.0, 2.0)[None] ** 2) / (2 * sigma[:, None] ** 2))
    k = k / k.sum(1, keepdim=True)
    blur = (k[:, :, None] * k[:, None, :])[:, None].repeat_interleave(3, 0)  # (3n, 1, 3, 3)
    blurred = F.conv2d(F.pad(x.reshape(1, 3 * n, *x.shape[2:]), (1, 1, 1, 1), mode="replicate"),
                       blur, groups=3 * n).reshape(x.shape)
    x = torch.where(u(n, 1, 1, 1) < 0.35, blurred, x)
    x = x + torch.randn(x.shape, generator=g) * (u(n, 1, 1, 1) * 0.08)
    return x.clamp(-1, 1)


# ---------------------------------------------------------------- training
def _loss(model: MiniEvaluator, x: torch.Tensor, y: dict[str, torch.Tensor]) -> torch.Tensor:
    obj, sty, cag = model(x)
    return (F.cross_entropy(obj, y["object"]) + F.cross_entropy(sty, y["style"])
            + F.binary_cross_entropy_with_logits(cag, y["caged"]))


@torch.no_grad()
def heldout_accuracy(model: MiniEvaluator, n: int, seed: int, mixture: str = "world",
                     cfg: EvaluatorTrainConfig | None = None, corrupt: bool = False) -> dict[str, float]:
    """Accuracy per head on a fresh batch drawn from seed [seed, 1] (object head on images with an object).

    mixture "world": the world's own caption families (`world.sample_batch`: scenes, objects in
    scenes, photos, styles, caged photos), the images the mini model learns and is evaluated on;
    "factorial": the training mixture, which also crosses styles with cages.
    """
    if mixture == "world":
        images, _, specs = world.sample_batch(n, [seed, 1])
        x, y = labelled(images, specs)
    elif mixture == "factorial":
        x, y = render_labelled(n, [seed, 1], cfg or EvaluatorTrainConfig())
    else:
        raise ValueError(f"unknown mixture {mixture!r}; known: world, factorial")
    if corrupt:
        x = augment(x, torch.Generator().manual_seed(seed))
    model.eval()
    obj, sty, cag = model(x)
    has_obj = y["object"] != OBJECT_LABELS.index("none")
    return {
        "object": float((obj.argmax(1) == y["object"])[has_obj].float().mean()),
        "object_none": float((obj.argmax(1) == y["object"])[~has_obj].float().mean()),
        "style": float((sty.argmax(1) == y["style"]).float().mean()),
        "attribute": float(((cag > 0).float() == y["caged"]).float().mean()),
    }


def train_evaluator(
    steps: int = EvaluatorTrainConfig.steps,
    batch_size: int = EvaluatorTrainConfig.batch_size,
    seed: int = EvaluatorTrainConfig.seed,
    lr: float = EvaluatorTrainConfig.lr,
    channels: tuple[int, int, int] = (16, 32, 64),
    heldout: int = EvaluatorTrainConfig.heldout,
    log: Callable[[str], None] = lambda s: None,
) -> tuple[MiniEvaluator, dict]:
    """Train from scratch on fresh renders (batch at step s drawn from seed (seed, 0, s)); returns model, record."""
    cfg = EvaluatorTrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed, heldout=heldout)
    torch.manual_seed(seed)
    model = MiniEvaluator(channels)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
    t0 = time.time()
    model.train()
    for step in range(steps):
        x, y = render_labelled(batch_size, [seed, 0, step], cfg)
        x = augment(x, torch.Generator().manual_seed(seed * 1_000_003 + step))
        loss = _loss(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 100 == 0 or step + 1 == steps:
            log(f"step {step + 1}/{steps} loss {loss.item():.4f} ({time.time() - t0:.0f}s)")
    seconds = time.time() - t0
    model.eval()
    _round_to_fp16(model)  # measure what is shipped
    record = {
        "architecture": {"class": "MiniEvaluator", "channels": list(channels), "input": "32x32 RGB in [-1, 1]",
                         "object_labels": list(OBJECT_LABELS), "style_labels": list(STYLE_LABELS),
                         "attribute": world.ATTRIBUTE, "parameters": sum(p.numel() for p in model.parameters())},
        "training": asdict(cfg),
        "seed": seed,
        "steps": steps,
        "heldout_accuracy": heldout_accuracy(model, heldout, seed, "world"),
        "heldout_accuracy_corrupted": heldout_accuracy(model, heldout, seed, "world", corrupt=True),
        "heldout_accuracy_factorial": heldout_accuracy(model, heldout, seed, "factorial", cfg),
        "heldout": {"n": heldout, "seed": [seed, 1], "note": "fresh renders; object accuracy over images with "
                    "an object; 'world' mixture = world.sample_batch, 'factorial' = the training mixture"},
        "wall_time_s": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    return model, record


@torch.no_grad()
def _round_to_fp16(model: nn.Module) -> None:
    """Round every float parameter and buffer to fp16 in place (the shipped precision)."""
    for v in model.state_dict().values():
        if v.is_floating_point():
            v.copy_(v.half())


def save_evaluator(model: MiniEvaluator, record: dict, path: str | Path = DEFAULT_PATH,
                   sidecar: str | Path | None = None) -> Path:
    """Write fp16 safetensors and the JSON sidecar (default: same stem, .json), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.half() for k, v in model.state_dict().items() if v.is_floating_point()}
    atomic_save_safetensors(tensors, path)
    atomic_write_json(record, Path(sidecar) if sidecar is not None else path.with_suffix(".json"))
    return path


# ---------------------------------------------------------------- use
def load_evaluator(path: str | Path = DEFAULT_PATH) -> MiniEvaluator:
    """The evaluator at `path` (fp16 safetensors + sidecar JSON), in float32 eval mode."""
    path = Path(path)
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        raise RevivalError(f"{path}: evaluator weights or their .json sidecar are missing "
                           "(run `revival train-evaluator`)")
    try:
        tensors = load_file(str(path))
        channels = tuple(json.loads(sidecar.read_text())["architecture"]["channels"])
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        raise RevivalError(f"{path}: not a readable evaluator: {e}") from None
    model = MiniEvaluator(channels)
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RevivalError(f"{path}: does not fit MiniEvaluator{channels} (e.g. {(missing + unexpected)[0]})")
    return model.eval()


@torch.no_grad()
def classify(model: MiniEvaluator, images: np.ndarray, batch_size: int = 512) -> dict[str, np.ndarray]:
    """Predicted labels and probabilities per head for uint8 images (N, 32, 32, 3).

    Keys: object (str labels, "none" for no object), object_probs (N, 11), style (str, "none" for
    a photo), style_probs (N, 5), caged (bool), caged_prob (N,).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (world.SIZE, world.SIZE, 3):
        raise ValueError(f"expected uint8 images (N, {world.SIZE}, {world.SIZE}, 3), got {images.shape}")
    model.eval()
    obj, sty, cag = [], [], []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i : i + batch_size].astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)
        o, s, c = model(x)
        obj.append(o.softmax(1))
        sty.append(s.softmax(1))
        cag.append(c.sigmoid())
    obj_p = torch.cat(obj).numpy() if obj else np.zeros((0, len(OBJECT_LABELS)), np.float32)
    sty_p = torch.cat(sty).numpy() if sty else np.zeros((0, len(STYLE_LABELS)), np.float32)
    cag_p = torch.cat(cag).numpy() if cag else np.zeros((0,), np.float32)
    return {
        "object": np.array(OBJECT_LABELS)[obj_p.argmax(1)],
        "object_probs": obj_p,
        "style": np.array(STYLE_LABELS)[sty_p.argmax(1)],
        "style_probs": sty_p,
        "caged": cag_p > 0.5,
        "caged_prob": cag_p,
    }
