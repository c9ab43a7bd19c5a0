"""The evaluator of the 64x64 mini world: a small CNN that reads object, style, cage and stripes off an image.

It plays the paper's ResNet-50 (objects), style classifier (artists) and NudeNet (the `striped`
attribute) for the miniature Stable Diffusion. Trained on renders of a factorial mixture (objects
or none, any scene, styles, cages and stripes crossed) with mild corruptions, plus a share of junk
labelled "nothing", so a failed generation never counts as a hit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from revival.minisd import world
from revival.minisd.data import to_tensor

OBJECT_LABELS: tuple[str, ...] = (*world.OBJECTS, "none")
STYLE_LABELS: tuple[str, ...] = ("none", *world.STYLES)


@dataclass(frozen=True)
class EvaluatorConfig:
    """Every hyper-parameter of the evaluator and its training (all go into the sidecar JSON)."""

    channels: tuple[int, ...] = (16, 32, 64, 96)
    steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    pool: int = 24000
    seed: int = 0
    p_no_object: float = 0.15
    p_style: float = 0.5
    p_caged: float = 0.3
    p_striped: float = 0.3
    p_junk: float = 0.04


class Evaluator(nn.Module):
    """Conv stages at 64, 32, 16 and 8 px (two convs each, max-pooled), global pooling, one head per task."""

    def __init__(self, channels: tuple[int, ...] = EvaluatorConfig.channels):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in channels:
            for _ in range(2):
                layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                c_in = c
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.object_head = nn.Linear(c_in, len(OBJECT_LABELS))
        self.style_head = nn.Linear(c_in, len(STYLE_LABELS))
        self.attribute_head = nn.Linear(c_in, len(world.ATTRIBUTES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits (object, style, attributes) for images (N, 3, 64, 64) in [-1, 1]."""
        h = self.features(x).amax(dim=(2, 3))
        return self.object_head(h), self.style_head(h), self.attribute_head(h)


def random_eval_spec(rng: np.random.Generator, cfg: EvaluatorConfig) -> world.Spec:
    """A spec of the factorial mixture."""
    obj = None if rng.uniform() < cfg.p_no_object else world.OBJECTS[rng.integers(len(world.OBJECTS))]
    scene = world.SCENES[rng.integers(len(world.SCENES))]
    style = world.STYLES[rng.integers(len(world.STYLES))] if rng.uniform() < cfg.p_style else None
    caged = obj is not None and rng.uniform() < cfg.p_caged
    striped = obj is not None and rng.uniform() < cfg.p_striped
    return world.Spec(obj, scene, style, caged, striped)


def junk_image(rng: np.random.Generator) -> np.ndarray:
    """A failed generation: pixel noise, smooth colour blobs, or a blend (no object, no style, no attribute)."""
    s = world.SIZE
    fine = rng.uniform(size=(s, s, 3))
    k = int(rng.choice([4, 8, 16]))
    coarse = torch.from_numpy(rng.uniform(size=(1, 3, s // k, s // k)))
    smooth = F.interpolate(coarse, size=s, mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    a = rng.uniform()
    return (a * fine + (1 - a) * smooth).astype(np.float32)


def labels_of(specs: list[world.Spec]) -> dict[str, torch.Tensor]:
    """Integer labels per head."""
    return {
        "object": torch.tensor([OBJECT_LABELS.index(s.object or "none") for s in specs]),
        "style": torch.tensor([STYLE_LABELS.index(s.style or "none") for s in specs]),
        "attributes": torch.tensor([[s.caged, s.striped] for s in specs], dtype=torch.float32),
    }


def render_factorial(n: int, seed, cfg: EvaluatorConfig) -> tuple[np.ndarray, list[world.Spec]]:
    """`n` uint8 images of the factorial mixture (a `p_junk` share junk) and their specs."""
    rng = np.random.default_rng(seed)
    specs, images = [], []
    for _ in range(n):
        if rng.uniform() < cfg.p_junk:
            specs.append(world.Spec(None, "any"))
            images.append(junk_image(rng))
        else:
            specs.append(random_eval_spec(rng, cfg))
            images.append(world.render(specs[-1], rng))
    return np.round(np.stack(images) * 255).astype(np.uint8), specs


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Mild corruptions of images in [-1, 1]: colour jitter, blur on some, gaussian noise."""
    n = len(x)
    u = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    x = x * (1 + (u(n, 1, 1, 1) - 0.5) * 0.2) + (u(n, 1, 1, 1) - 0.5) * 0.16 + (u(n, 3, 1, 1) - 0.5) * 0.08
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    x = torch.where(u(n, 1, 1, 1) < 0.3, 0.5 * x + 0.5 * blurred, x)
    x = x + torch.randn(x.shape, generator=g) * (u(n, 1, 1, 1) * 0.08)
    return x.clamp(-1, 1)


def loss_of(model: Evaluator, x: torch.Tensor, y: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of the three heads' losses."""
    obj, sty, att = model(x)
    return (F.cross_entropy(obj, y["object"]) + F.cross_entropy(sty, y["style"])
            + F.binary_cross_entropy_with_logits(att, y["attributes"]))


@torch.no_grad()
def accuracy(model: Evaluator, images: np.ndarray, specs: list[world.Spec]) -> dict[str, float]:
    """Accuracy per head (object over images with an object; each attribute over all images)."""
    pred = classify(model, images)
    y = labels_of(specs)
    has_obj = y["object"] != OBJECT_LABELS.index("none")
    obj_ok = torch.from_numpy(pred["object"] == np.array(OBJECT_LABELS)[y["object"].numpy()])
    out = {"object": float(obj_ok[has_obj].float().mean()), "object_none": float(obj_ok[~has_obj].float().mean()),
           "style": float(np.mean(pred["style"] == np.array(STYLE_LABELS)[y["style"].numpy()]))}
    for i, a in enumerate(world.ATTRIBUTES):
        out[a] = float(np.mean(pred[a] == y["attributes"][:, i].numpy().astype(bool)))
    return out


@torch.no_grad()
def classify(model: Evaluator, images: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Predicted labels per head for uint8 images (N, 64, 64, 3): object, style, and one bool per attribute."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (world.SIZE, world.SIZE, 3):
        raise ValueError(f"expected uint8 images (N, {world.SIZE}, {world.SIZE}, 3), got {images.shape}")
    model.eval()
    obj, sty, att = [], [], []
    for i in range(0, len(images), batch_size):
        o, s, a = model(to_tensor(images[i : i + batch_size]))
        obj.append(o.softmax(1))
        sty.append(s.softmax(1))
        att.append(a.sigmoid())
    obj_p, sty_p, att_p = torch.cat(obj).numpy(), torch.cat(sty).numpy(), torch.cat(att).numpy()
    out = {"object": np.array(OBJECT_LABELS)[obj_p.argmax(1)], "object_probs": obj_p,
           "style": np.array(STYLE_LABELS)[sty_p.argmax(1)], "style_probs": sty_p}
    for i, a in enumerate(world.ATTRIBUTES):
        out[a] = att_p[:, i] > 0.5
        out[f"{a}_prob"] = att_p[:, i]
    return out


def train_evaluator(cfg: EvaluatorConfig, workdir: Path, log=print, device: str = "cpu") -> tuple[Evaluator, dict]:
    """Train from scratch on a cached factorial pool (resumable) on `device`, batches drawn and augmented on the
    CPU; returns the model (on the CPU) and its record."""
    from revival.minisd.training import train_loop

    workdir.mkdir(parents=True, exist_ok=True)
    images, specs = _factorial_pool(workdir / "evaluator_pool.npz", cfg)
    x_all, y_all = images, labels_of(specs)
    torch.manual_seed(cfg.seed)
    model = Evaluator(cfg.channels)

    def loss_fn(step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        idx = torch.randint(0, len(x_all), (cfg.batch_size,), generator=g)
        x = augment(to_tensor(x_all[idx.numpy()]), g).to(device)
        return loss_of(model, x, {k: v[idx].to(device) for k, v in y_all.items()})

    record = train_loop("evaluator", workdir, {"evaluator": model}, loss_fn, cfg.steps, cfg.lr, warmup=100,
                        weight_decay=1e-4, config=asdict(cfg), log=log, device=device)
    _round_to_fp16(model)
    held_images, held_specs = render_factorial(3000, (cfg.seed, 99), cfg)
    w_images, _, w_specs = world.sample_batch(3000, (cfg.seed, 98))
    record["heldout_accuracy_factorial"] = accuracy(model, held_images, held_specs)
    record["heldout_accuracy_world"] = accuracy(model, np.round(w_images * 255).astype(np.uint8), w_specs)
    record["heldout"] = {"n": 3000, "note": "fresh renders from seeds never used in training"}
    record["architecture"] = {"class": "Evaluator", "channels": list(cfg.channels), "input": "64x64 RGB in [-1, 1]",
                              "object_labels": list(OBJECT_LABELS), "style_labels": list(STYLE_LABELS),
                              "attributes": list(world.ATTRIBUTES),
                              "parameters": sum(p.numel() for p in model.parameters())}
    return model, record


def _factorial_pool(path: Path, cfg: EvaluatorConfig) -> tuple[np.ndarray, list[world.Spec]]:
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists() and json.loads(meta.read_text())["n"] == cfg.pool:
        return np.load(path)["images"], [world.Spec(**s) for s in json.loads(meta.read_text())["specs"]]
    images, specs = render_factorial(cfg.pool, (cfg.seed, 0), cfg)
    np.savez(path, images=images)
    meta.write_text(json.dumps({"n": cfg.pool, "specs": [s.__dict__ for s in specs]}))
    return images, specs


@torch.no_grad()
def _round_to_fp16(model: nn.Module) -> None:
    for v in model.state_dict().values():
        if v.is_floating_point():
            v.copy_(v.half())


def save_evaluator(model: Evaluator, record: dict, path: Path) -> None:
    """fp16 safetensors plus a JSON sidecar of the same stem."""
    from revival.checkpoints import atomic_save_safetensors, atomic_write_json

    atomic_save_safetensors({k: v.half() for k, v in model.state_dict().items() if v.is_floating_point()}, path)
    atomic_write_json(record, path.with_suffix(".json"))


def load_evaluator(path: Path) -> Evaluator:
    """The evaluator at `path` (fp16 safetensors + sidecar), float32, eval mode."""
    from safetensors.torch import load_file

    channels = tuple(json.loads(path.with_suffix(".json").read_text())["architecture"]["channels"])
    model = Evaluator(channels)
    model.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()}, strict=False)
    return model.eval()
