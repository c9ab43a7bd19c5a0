"""The mini world, second generation: seeded procedural 64x64 images with captions in the paper's templates.

Twenty objects with distinct silhouettes in eight scenes, six whole-image styles (the artists)
and two attributes that attach to any object: `cage` (bars around it) and `striped` (stripes on
the object itself: the analogue of nudity, a property of the depicted thing). No data files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from revival.unlearn.prompts import PromptPairs

SIZE = 64
_SS = 2  # supersampling factor for anti-aliased silhouettes

OBJECTS: tuple[str, ...] = (
    "ball", "box", "pyramid", "star", "heart", "cross", "moon", "diamond", "ring", "house",
    "tree", "arrow", "bell", "cup", "fish", "key", "crown", "umbrella", "bolt", "flower",
)
SCENES: tuple[str, ...] = ("desert", "ocean", "forest", "night", "snow", "city", "meadow", "sunset")
STYLES: tuple[str, ...] = ("neon", "pastel", "mosaic", "sketch", "sepia", "stipple")
ATTRIBUTES: tuple[str, ...] = ("cage", "striped")

# The paper's prompt templates (SPEC section 1 and 4) on the mini vocabulary.
TEMPLATES = {
    "scene": "a {scene}",
    "object_in_scene": "a {object} in a {scene}",
    "photo": "a photo of a {object}",
    "image": "an image of a {object}",
    "style": "a {object} in the style of {style}",
    "cage": "a photo of a {object} in a cage",
    "striped": "a photo of a striped {object}",
}
# Mixture of caption families the diffusion model and the text encoder are trained on.
TRAIN_MIX = {"scene": 0.08, "object_in_scene": 0.27, "photo": 0.12, "image": 0.05, "style": 0.24,
             "cage": 0.12, "striped": 0.12}

FAMILIES: tuple[str, ...] = ("object", "style", "attribute")
CONCEPTS: tuple[str, ...] = (*OBJECTS, *STYLES, *ATTRIBUTES)  # every erasable concept


def family_of(concept: str) -> str:
    """The family of an erasable concept: `object`, `style` or `attribute`."""
    if concept in OBJECTS:
        return "object"
    if concept in STYLES:
        return "style"
    if concept in ATTRIBUTES:
        return "attribute"
    raise KeyError(f"unknown concept {concept!r}; known: {', '.join(CONCEPTS)}")


def prune_prompt_pairs(family: str, concept: str) -> PromptPairs:
    """ConceptPrune's base and target prompts in the paper's templates, on this world's vocabulary.

    Objects: "a {scene}" vs "a {concept} in a {scene}" over the scenes; styles: "a photo of a {object}" vs
    "a {object} in the style of {concept}" over the objects; attributes: "a photo of a {object}" vs the
    attribute's own template ("a photo of a {object} in a cage", "a photo of a striped {object}").
    """
    from revival.unlearn.prompts import PromptPairs

    if family not in FAMILIES:
        raise KeyError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    if family_of(concept) != family:
        raise ValueError(f"{concept!r} is of family {family_of(concept)!r}, not {family!r}")
    if family == "object":
        return PromptPairs(tuple(TEMPLATES["scene"].format(scene=s) for s in SCENES),
                           tuple(TEMPLATES["object_in_scene"].format(object=concept, scene=s) for s in SCENES))
    base = tuple(TEMPLATES["photo"].format(object=o) for o in OBJECTS)
    if family == "style":
        return PromptPairs(base, tuple(TEMPLATES["style"].format(object=o, style=concept) for o in OBJECTS))
    return PromptPairs(base, tuple(TEMPLATES[concept].format(object=o) for o in OBJECTS))


@dataclass(frozen=True)
class Spec:
    """What one image shows: object (or None), scene, style (or None), caged, striped."""

    object: str | None
    scene: str
    style: str | None = None
    caged: bool = False
    striped: bool = False


def vocabulary() -> list[str]:
    """Every word a caption can contain, in a fixed order."""
    words: list[str] = []
    for t in TEMPLATES.values():
        words += [w for w in t.split() if not w.startswith("{")]
    words += list(OBJECTS) + list(SCENES) + list(STYLES) + list(ATTRIBUTES)
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
    return Spec(obj, scene, style, "cage" in words, "striped" in words)


# ---------------------------------------------------------------- silhouettes
def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(n) + 0.5) / n * 2 - 1
    return np.meshgrid(c, c)  # x (cols), y (rows, down positive)


def _segment(u, v, x0, y0, x1, y1, w):
    """Points within distance w of the segment (x0, y0)-(x1, y1)."""
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((u - x0) * dx + (v - y0) * dy) / (dx * dx + dy * dy), 0, 1)
    return np.hypot(u - x0 - t * dx, v - y0 - t * dy) < w


def _polygon(u, v, pts) -> np.ndarray:
    """Even-odd point-in-polygon test for vertices `pts` [(x, y), ...]."""
    inside = np.zeros(u.shape, bool)
    n = len(pts)
    for i in range(n):
        (xa, ya), (xb, yb) = pts[i], pts[(i + 1) % n]
        crosses = ((ya > v) != (yb > v)) & (u < (xb - xa) * (v - ya) / (yb - ya + 1e-12) + xa)
        inside ^= crosses
    return inside


def _shape_mask(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r = np.hypot(u, v)
    au, av = np.abs(u), np.abs(v)
    if name == "ball":
        return r < 0.95
    if name == "box":
        return np.maximum(au, av) < 0.78
    if name == "pyramid":
        return (v < 0.8) & (v > -0.95) & (au < (v + 0.95) * 0.55)
    if name == "star":
        th = np.arctan2(u, -v)
        k = np.mod(th * 5 / (2 * np.pi), 1.0)
        return r < 0.4 + 0.6 * np.abs(2 * k - 1) ** 1.5
    if name == "heart":
        x, y = u * 1.25, -(v * 1.25) + 0.25
        return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 < 0
    if name == "cross":
        return ((au < 0.3) & (av < 0.92)) | ((av < 0.3) & (au < 0.92))
    if name == "moon":
        return (r < 0.95) & (np.hypot(u - 0.45, v + 0.15) > 0.72)
    if name == "diamond":
        return au / 0.62 + av / 0.98 < 1
    if name == "ring":
        return (r < 0.95) & (r > 0.55)
    if name == "house":
        body = (au < 0.68) & (v > -0.05) & (v < 0.9)
        roof = (v <= -0.05) & (v > -0.95) & (au < (v + 0.95) * 0.95)
        return body | roof
    if name == "tree":
        crown = np.hypot(u / 0.8, (v + 0.3) / 0.62) < 1
        trunk = (au < 0.15) & (v > 0.2) & (v < 0.95)
        return crown | trunk
    if name == "arrow":
        shaft = (av < 0.16) & (u > -0.95) & (u < 0.25)
        head = (u >= 0.2) & (u < 0.95) & (av < (0.95 - u) * 0.85)
        return shaft | head
    if name == "bell":
        body = (v > -0.6) & (v < 0.6) & (au < 0.35 + 0.45 * np.clip((v + 0.6) / 1.2, 0, 1) ** 1.5)
        top = np.hypot(u, v + 0.6) < 0.35
        clapper = np.hypot(u, v - 0.78) < 0.17
        return body | top | clapper
    if name == "cup":
        body = (v > -0.55) & (v < 0.75) & (au < 0.55 - 0.12 * (v + 0.55))
        handle = (np.hypot(u - 0.58, v - 0.05) < 0.36) & (np.hypot(u - 0.58, v - 0.05) > 0.18) & (u > 0.45)
        return body | handle
    if name == "fish":
        body = np.hypot((u + 0.15) / 0.7, v / 0.42) < 1
        tail = (u > 0.45) & (u < 0.95) & (av < (u - 0.45) * 1.2)
        return (body | tail) & ~(np.hypot(u + 0.5, v + 0.1) < 0.08)
    if name == "key":
        bow = (np.hypot(u + 0.55, v) < 0.4) & (np.hypot(u + 0.55, v) > 0.17)
        blade = (av < 0.1) & (u > -0.2) & (u < 0.95)
        teeth = ((np.abs(u - 0.55) < 0.07) | (np.abs(u - 0.8) < 0.07)) & (v > 0) & (v < 0.32)
        return bow | blade | teeth
    if name == "crown":
        base = (v > 0.25) & (v < 0.7) & (au < 0.8)
        spikes = (v <= 0.25) & (v > -0.8) & (np.min(np.abs(u[..., None] - np.array([-0.58, 0.0, 0.58])), -1)
                                              < (v + 0.8) * 0.24)
        return base | spikes
    if name == "umbrella":
        canopy = (np.hypot(u, v + 0.05) < 0.9) & (v < -0.05)
        handle = (au < 0.08) & (v >= -0.05) & (v < 0.8)
        hook = (np.hypot(u + 0.18, v - 0.8) < 0.26) & (np.hypot(u + 0.18, v - 0.8) > 0.1) & (v > 0.8)
        return canopy | handle | hook
    if name == "bolt":
        return _polygon(u, v, [(0.25, -0.95), (-0.55, 0.1), (-0.05, 0.1), (-0.3, 0.95), (0.55, -0.15),
                               (0.05, -0.15), (0.4, -0.95)])
    if name == "flower":
        th = np.arctan2(v, u)
        petals = r < 0.55 + 0.4 * np.abs(np.cos(th * 2.5))
        return petals & ~((r > 0.22) & (r < 0.3))
    raise KeyError(f"unknown object {name!r}; known: {', '.join(OBJECTS)}")


def _object_layer(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Anti-aliased coverage (SIZE x SIZE) of one object at a random place and scale, and its bbox."""
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
        sea = np.array([0.05, 0.25, 0.6]) + 0.12 * (np.sin(rows * 80 + cols * 6 + rng.uniform(0, 6)) > 0.6)
        img[:] = np.where(rows < rng.uniform(0.2, 0.35), sky, sea)
    elif name == "forest":
        img[:] = np.array([0.12, 0.45, 0.15]) + 0.1 * rows
        for x0 in rng.choice(SIZE - 4, size=6, replace=False):
            img[:, x0 : x0 + 3] = np.array([0.35, 0.22, 0.1])
    elif name == "night":
        img[:] = np.array([0.02, 0.03, 0.15]) + 0.15 * rows * np.array([0.3, 0.3, 1.0])
        pts = rng.integers(0, SIZE, size=(40, 2))
        img[pts[:, 0], pts[:, 1]] = 0.95
    elif name == "snow":
        img[:] = np.array([0.86, 0.9, 0.95]) + 0.08 * rows
        pts = rng.integers(0, SIZE, size=(70, 2))
        img[pts[:, 0], pts[:, 1]] = np.array([0.6, 0.7, 0.85])
    elif name == "city":
        img[:] = np.array([0.95, 0.6, 0.4]) - 0.3 * rows
        x = 0
        while x < SIZE:
            w = int(rng.integers(7, 14))
            h = int(rng.integers(20, 48))
            img[SIZE - h :, x : x + w] = np.array([0.3, 0.3, 0.35]) + rng.uniform(-0.05, 0.05)
            img[SIZE - h + 3 :: 5, x + 2 : x + w - 2 : 3] = np.array([0.95, 0.9, 0.5])
            x += w + 2
    elif name == "meadow":
        horizon = rng.uniform(0.35, 0.5)
        sky = np.array([0.6, 0.8, 1.0]) - 0.2 * rows
        grass = np.array([0.45, 0.75, 0.25]) - 0.2 * rows
        img[:] = np.where(rows < horizon, sky, grass)
        pts = rng.integers(int(horizon * SIZE), SIZE, size=(30, 1))
        img[pts[:, 0], rng.integers(0, SIZE, size=30)] = np.array([0.95, 0.95, 0.3])
    elif name == "sunset":
        img[:] = np.array([0.98, 0.45, 0.2]) * (1 - rows) + np.array([0.45, 0.1, 0.35]) * rows
        sun = np.hypot(cols - rng.uniform(0.3, 0.7), rows - 0.62)[..., 0] < 0.12
        img[sun] = np.array([1.0, 0.85, 0.4])
        img[int(0.7 * SIZE) :] *= 0.45
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
        e = _edges(img)
        e = np.maximum(e, 0.6 * np.pad(e, 1)[2:, 1:-1])  # two-pixel glow
        return np.clip(0.04 + e[..., None] * colour * 1.2, 0, 1)
    if name == "pastel":
        grey = _lum(img)[..., None]
        return np.clip(0.5 * (0.6 * img + 0.4 * grey) + 0.5 * np.array([1.0, 0.92, 0.95]), 0, 1)
    if name == "mosaic":
        q = np.round(img * 2) / 2
        q[::6] *= 0.35
        q[:, ::6] *= 0.35
        return q
    if name == "sketch":
        e = _edges(img)
        dark = _lum(img) < 0.45
        ii, jj = np.indices(dark.shape)
        hatch = dark & ((ii + jj) % 4 == 0)
        g = np.clip(0.95 - 0.9 * e - 0.45 * hatch, 0, 1)
        return np.repeat(g[..., None], 3, axis=2) * np.array([1.0, 0.97, 0.9])
    if name == "sepia":
        lum = _lum(img)[..., None]
        tone = lum * np.array([1.0, 0.8, 0.55]) + np.array([0.12, 0.06, 0.0])
        vignette = 1 - 0.5 * np.hypot(*np.meshgrid(np.linspace(-1, 1, SIZE), np.linspace(-1, 1, SIZE))) ** 2
        return np.clip(tone * vignette[..., None], 0, 1)
    if name == "stipple":
        ii, jj = np.indices((SIZE, SIZE))
        cell = (ii % 4 - 1.5) ** 2 + (jj % 4 - 1.5) ** 2
        dot = cell < (1 - _lum(img)) * 5.0
        base = np.array([0.97, 0.95, 0.9])
        ink = np.clip(img * 0.6, 0, 1)
        return np.where(dot[..., None], ink, base)
    raise KeyError(f"unknown style {name!r}; known: {', '.join(STYLES)}")


def _cage(img: np.ndarray, bbox: tuple) -> np.ndarray:
    x0, y0, x1, y1 = bbox
    x0, y0, x1, y1 = max(x0 - 3, 0), max(y0 - 3, 0), min(x1 + 3, SIZE), min(y1 + 3, SIZE)
    out = img.copy()
    bar = np.array([0.55, 0.55, 0.6], np.float32)
    out[y0:y1, x0:x1:5] = bar
    out[y0:y1, x0 + 1 : x1 : 5] = bar
    out[y0 : y0 + 2, x0:x1] = bar
    out[y1 - 2 : y1, x0:x1] = bar
    return out


def _stripes(cov: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Diagonal stripe pattern (0/1) with a random phase, drawn only where the object is."""
    ii, jj = np.indices(cov.shape)
    return ((((ii + jj + int(rng.integers(0, 8))) // 4) % 2) == 0).astype(np.float32) * cov


# ---------------------------------------------------------------- public API
def render(spec: Spec, rng: np.random.Generator) -> np.ndarray:
    """Render one spec as a float32 (SIZE, SIZE, 3) image in [0, 1]."""
    scene = spec.scene if spec.scene in SCENES else SCENES[rng.integers(len(SCENES))]
    img = _scene(scene, rng)
    if spec.object is not None:
        cov, edge, bbox = _object_layer(spec.object, rng)
        colour = _hsv(rng.uniform(), rng.uniform(0.65, 1.0), rng.uniform(0.75, 1.0))
        img = img * (1 - cov[..., None]) + colour * cov[..., None]
        if spec.striped:
            s = _stripes(cov, rng)[..., None]
            img = img * (1 - s) + 0.1 * s
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
    if family in ("object_in_scene", "photo", "image"):
        return Spec(obj, scene)
    if family == "style":
        return Spec(obj, scene, STYLES[rng.integers(len(STYLES))])
    if family == "cage":
        return Spec(obj, scene, caged=True)
    if family == "striped":
        return Spec(obj, scene, striped=True)
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
