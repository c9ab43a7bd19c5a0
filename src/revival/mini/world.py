"""The mini world: a seeded procedural generator of 32x32 RGB images with captions.

It mirrors the paper's three concept families with no data files: objects in scenes (the
Imagenette objects), whole-image rendering styles (the artists) and an attribute that attaches
to any object (nudity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 32
_SS = 2  # supersampling factor for anti-aliased silhouettes

OBJECTS: tuple[str, ...] = (
    "ball", "box", "pyramid", "star", "heart", "cross", "moon", "diamond", "ring", "house",
)
SCENES: tuple[str, ...] = ("desert", "ocean", "forest", "night", "snow", "city")
STYLES: tuple[str, ...] = ("neon", "pastel", "mosaic", "sketch")
ATTRIBUTE = "in a cage"
ATTRIBUTE_WORD = "cage"

# Paper prompt templates (SPEC section 1), instantiated on the mini vocabulary.
TEMPLATES = {
    "scene": "a {scene}",
    "object_in_scene": "a {object} in a {scene}",
    "photo": "a photo of a {object}",
    "style": "a {object} in the style of {style}",
    "attribute": "a photo of a {object} " + ATTRIBUTE,
}
# Mixture used for training the diffusion model.
TRAIN_MIX = {"scene": 0.12, "object_in_scene": 0.30, "photo": 0.18, "style": 0.25, "attribute": 0.15}


@dataclass(frozen=True)
class Spec:
    """What one image shows: object (or None), scene, style (or None), caged."""

    object: str | None
    scene: str
    style: str | None = None
    caged: bool = False


def vocabulary() -> list[str]:
    """Every word a mini-world caption can contain, in a fixed order."""
    words: list[str] = []
    for t in TEMPLATES.values():
        words += [w for w in t.split() if not w.startswith("{")]
    words += list(OBJECTS) + list(SCENES) + list(STYLES)
    return list(dict.fromkeys(words))


def caption(family: str, spec: Spec) -> str:
    """Caption of `spec` under one template family."""
    return TEMPLATES[family].format(object=spec.object, scene=spec.scene, style=spec.style)


def parse_caption(text: str) -> Spec:
    """Inverse of `caption`: the spec a caption asks for (scene 'any' when unspecified)."""
    words = text.split()
    obj = next((w for w in words if w in OBJECTS), None)
    scene = next((w for w in words if w in SCENES), "any")
    style = next((w for w in words if w in STYLES), None)
    return Spec(obj, scene, style, ATTRIBUTE_WORD in words)


# ---------------------------------------------------------------- silhouettes
def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(n) + 0.5) / n * 2 - 1
    return np.meshgrid(c, c)  # x (cols), y (rows, down positive)


def _shape_mask(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r = np.hypot(u, v)
    if name == "ball":
        return r < 0.95
    if name == "box":
        return np.maximum(np.abs(u), np.abs(v)) < 0.78
    if name == "pyramid":
        return (v < 0.8) & (v > -0.95) & (np.abs(u) < (v + 0.95) * 0.55)
    if name == "star":
        th = np.arctan2(u, -v)
        k = np.mod(th * 5 / (2 * np.pi), 1.0)
        return r < 0.4 + 0.6 * np.abs(2 * k - 1) ** 1.5
    if name == "heart":
        x, y = u * 1.25, -(v * 1.25) + 0.25
        return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 < 0
    if name == "cross":
        return ((np.abs(u) < 0.3) & (np.abs(v) < 0.92)) | ((np.abs(v) < 0.3) & (np.abs(u) < 0.92))
    if name == "moon":
        return (r < 0.95) & (np.hypot(u - 0.45, v + 0.15) > 0.72)
    if name == "diamond":
        return np.abs(u) / 0.62 + np.abs(v) / 0.98 < 1
    if name == "ring":
        return (r < 0.95) & (r > 0.55)
    if name == "house":
        body = (np.abs(u) < 0.68) & (v > -0.05) & (v < 0.9)
        roof = (v <= -0.05) & (v > -0.95) & (np.abs(u) < (v + 0.95) * 0.95)
        return body | roof
    raise KeyError(f"unknown object {name!r}; known: {', '.join(OBJECTS)}")


def _object_layer(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Anti-aliased coverage (32x32) of one object at a random place and scale, and its bbox."""
    n = SIZE * _SS
    x, y = _grid(n)
    scale = rng.uniform(0.42, 0.6)
    cx, cy = rng.uniform(-0.15, 0.15, size=2)
    m = _shape_mask(name, (x - cx) / scale, (y - cy) / scale).astype(np.float32)
    cov = m.reshape(SIZE, _SS, SIZE, _SS).mean(axis=(1, 3))
    lo = ((np.array([cx, cy]) - scale + 1) / 2 * SIZE).astype(int)
    hi = ((np.array([cx, cy]) + scale + 1) / 2 * SIZE).astype(int)
    return cov, _outline(cov), (max(lo[0], 0), max(lo[1], 0), min(hi[0], SIZE), min(hi[1], SIZE))


def _outline(cov: np.ndarray) -> np.ndarray:
    m = cov > 0.5
    d = m.copy()
    d[1:] |= m[:-1]
    d[:-1] |= m[1:]
    d[:, 1:] |= m[:, :-1]
    d[:, :-1] |= m[:, 1:]
    return (d & ~m).astype(np.float32)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], np.float32)


# ---------------------------------------------------------------- scenes
def _scene(name: str, rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((SIZE, SIZE, 3), np.float32)
    rows = np.arange(SIZE)[:, None, None] / SIZE
    cols = np.arange(SIZE)[None, :, None] / SIZE
    j = rng.uniform(-0.05, 0.05, size=3).astype(np.float32)
    if name == "desert":
        horizon = rng.uniform(0.3, 0.45) + 0.05 * np.sin(cols[..., 0] * 6 + rng.uniform(0, 6))
        sky = np.array([0.55, 0.75, 0.95]) + 0.2 * rows
        sand = np.array([0.93, 0.78, 0.48]) - 0.15 * rows
        img[:] = np.where(rows < horizon[..., None], sky, sand)
    elif name == "ocean":
        sky = np.array([0.8, 0.9, 1.0]) - 0.1 * rows
        sea = np.array([0.05, 0.25, 0.6]) + 0.12 * (np.sin(rows * 40 + cols * 3 + rng.uniform(0, 6)) > 0.6)
        img[:] = np.where(rows < rng.uniform(0.2, 0.35), sky, sea)
    elif name == "forest":
        img[:] = np.array([0.12, 0.45, 0.15]) + 0.1 * rows
        for x0 in rng.choice(SIZE - 2, size=5, replace=False):
            img[:, x0 : x0 + 2] = np.array([0.35, 0.22, 0.1])
    elif name == "night":
        img[:] = np.array([0.02, 0.03, 0.15]) + 0.15 * rows * np.array([0.3, 0.3, 1.0])
        pts = rng.integers(0, SIZE, size=(18, 2))
        img[pts[:, 0], pts[:, 1]] = 0.95
    elif name == "snow":
        img[:] = np.array([0.86, 0.9, 0.95]) + 0.08 * rows
        pts = rng.integers(0, SIZE, size=(30, 2))
        img[pts[:, 0], pts[:, 1]] = np.array([0.6, 0.7, 0.85])
    elif name == "city":
        img[:] = np.array([0.95, 0.6, 0.4]) - 0.3 * rows
        x = 0
        while x < SIZE:
            w = int(rng.integers(4, 8))
            h = int(rng.integers(10, 24))
            img[SIZE - h :, x : x + w] = np.array([0.3, 0.3, 0.35]) + rng.uniform(-0.05, 0.05)
            img[SIZE - h + 2 :: 3, x + 1 : x + w - 1 : 2] = np.array([0.95, 0.9, 0.5])
            x += w + 1
    else:
        raise KeyError(f"unknown scene {name!r}; known: {', '.join(SCENES)}")
    return np.clip(img + j, 0, 1)


# ---------------------------------------------------------------- styles
def _lum(img: np.ndarray) -> np.ndarray:
    return img @ np.array([0.299, 0.587, 0.114], np.float32)


def _edges(img: np.ndarray) -> np.ndarray:
    lum = np.pad(_lum(img), 1, mode="edge")
    gx = lum[1:-1, 2:] - lum[1:-1, :-2]
    gy = lum[2:, 1:-1] - lum[:-2, 1:-1]
    return np.clip(np.hypot(gx, gy) * 2.5, 0, 1)


def _style(name: str, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if name == "neon":
        colour = _hsv(rng.choice([0.5, 0.83, 0.33]), 1.0, 1.0)
        return np.clip(0.04 + _edges(img)[..., None] * colour * 1.2, 0, 1)
    if name == "pastel":
        grey = _lum(img)[..., None]
        return np.clip(0.5 * (0.6 * img + 0.4 * grey) + 0.5 * np.array([1.0, 0.92, 0.95]), 0, 1)
    if name == "mosaic":
        q = np.round(img * 2) / 2
        q[::4] *= 0.35
        q[:, ::4] *= 0.35
        return q
    if name == "sketch":
        e = _edges(img)
        dark = _lum(img) < 0.45
        ii, jj = np.indices(dark.shape)
        hatch = dark & ((ii + jj) % 3 == 0)
        g = np.clip(0.95 - 0.9 * e - 0.45 * hatch, 0, 1)
        return np.repeat(g[..., None], 3, axis=2) * np.array([1.0, 0.97, 0.9])
    raise KeyError(f"unknown style {name!r}; known: {', '.join(STYLES)}")


def _cage(img: np.ndarray, bbox: tuple) -> np.ndarray:
    x0, y0, x1, y1 = bbox
    x0, y0, x1, y1 = max(x0 - 2, 0), max(y0 - 2, 0), min(x1 + 2, SIZE), min(y1 + 2, SIZE)
    out = img.copy()
    bar = np.array([0.55, 0.55, 0.6], np.float32)
    out[y0:y1, x0:x1:3] = bar
    out[y0, x0:x1] = bar
    out[y1 - 1, x0:x1] = bar
    return out


# ---------------------------------------------------------------- public API
def render(spec: Spec, rng: np.random.Generator) -> np.ndarray:
    """Render one spec as a float32 (32, 32, 3) image in [0, 1]."""
    scene = spec.scene if spec.scene in SCENES else SCENES[rng.integers(len(SCENES))]
    img = _scene(scene, rng)
    if spec.object is not None:
        cov, edge, bbox = _object_layer(spec.object, rng)
        colour = _hsv(rng.uniform(), rng.uniform(0.65, 1.0), rng.uniform(0.75, 1.0))
        img = img * (1 - cov[..., None]) + colour * cov[..., None]
        img = img * (1 - edge[..., None]) + 0.08 * edge[..., None]
        if spec.caged:
            img = _cage(img, bbox)
    if spec.style is not None:
        img = _style(spec.style, img, rng)
    return img.astype(np.float32)


def random_spec(family: str, rng: np.random.Generator) -> Spec:
    """A random spec of one template family."""
    obj = OBJECTS[rng.integers(len(OBJECTS))]
    scene = SCENES[rng.integers(len(SCENES))]
    if family == "scene":
        return Spec(None, scene)
    if family == "object_in_scene" or family == "photo":
        return Spec(obj, scene)
    if family == "style":
        return Spec(obj, scene, STYLES[rng.integers(len(STYLES))])
    if family == "attribute":
        return Spec(obj, scene, None, True)
    raise KeyError(f"unknown family {family!r}; known: {', '.join(TEMPLATES)}")


def sample_batch(n: int, seed: int | tuple, mix: dict[str, float] | None = None):
    """`n` (image, caption, spec) triples drawn from the training mixture, fully determined by `seed`."""
    rng = np.random.default_rng(seed)
    mix = mix or TRAIN_MIX
    fams = list(mix)
    p = np.array([mix[f] for f in fams])
    images, captions, specs = [], [], []
    for fam in rng.choice(fams, size=n, p=p / p.sum()):
        spec = random_spec(str(fam), rng)
        images.append(render(spec, rng))
        captions.append(caption(str(fam), spec))
        specs.append(spec)
    return np.stack(images), captions, specs
