"""Weight sources for benchmarks/attack_real.py: matrices trained for real on real tasks, with WANDA masks.

Each source yields `Case`s: one original weight matrix and the positions a WANDA-style pruning
would zero in it. Everything is built once, seeded, and cached under `--cache` (default
~/.cache/revival-bench/attack_real), never in git:

- `minisd`: the bundled model (`revival.minisd`, a miniature Stable Diffusion; a plain
  `StableDiffusionPipeline` folder, `--minisd PATH`, default the bundled one): its 7 UNet `ff.net.2` layers (64x256,
  128x512) under ConceptPrune masks from the paper's templates on its own vocabulary
  (`revival.minisd.world.prune_prompt_pairs`), every concept (20 objects, 6 styles, 2 attributes),
  at skill_ratio 0.02 and 0.2 (attributes at half: 0.01 and 0.1, as the paper's 0.02 / 0.01);
  10 of 20 DDIM steps, guidance 5. Settings are named by the object/style ratio (`sr0.02`, `sr0.2`).
- `lm_stdlib`: a byte-level transformer language model (4 blocks, d 128, GELU MLP 128 -> 512 ->
  128) trained here on the source text of the Python standard library shipped with the
  interpreter (10% of files held out; pydoc_data excluded), masks from the input activations of each block's
  `fc2` (128 x 512) on held-out files: per row the top ratio of |W| x column L2 norm.
- `lm_docs`: the same LM with Stable Diffusion's GEGLU feed-forward net (`ff.net.0.proj` 128 ->
  2 x 512, `ff.net.2` 512 -> 128) trained on English prose: the reference texts of
  `pydoc_data.topics` shipped with CPython (10% of topics held out for the masks).

Masks (2% and 20% of each row) mirror ConceptPrune's skilled set: per output row the top entries
of |W| x input activation norm; the trained weights and masks are saved with their seed.
"""

from __future__ import annotations

import hashlib
import json
import math
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

DEFAULT_CACHE = Path.home() / ".cache" / "revival-bench" / "attack_real"
RATIOS = (0.02, 0.2)


@dataclass
class Case:
    """One matrix to attack: the original weights and the pruned positions."""

    source: str
    setting: str  # e.g. "sr0.02"
    group: str  # concept for minisd, "" otherwise
    layer: str
    weight: torch.Tensor
    mask: torch.Tensor


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wanda_top(weight: torch.Tensor, colnorm: torch.Tensor, ratio: float) -> torch.Tensor:
    """Per row the int(ratio * in_features) largest |W| x column norm (WANDA's score)."""
    k = max(1, int(ratio * weight.shape[1]))
    score = weight.abs().float() * colnorm.float()[None, :]
    return torch.zeros(weight.shape, dtype=torch.bool).scatter_(1, score.topk(k, dim=1).indices, True)


def _save_masks(masks: dict[str, torch.Tensor], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.to(torch.uint8).contiguous() for k, v in masks.items()}, str(tmp))
    tmp.replace(path)


def _load_masks(path: Path) -> dict[str, torch.Tensor]:
    return {k: v.bool() for k, v in load_file(str(path)).items()}


# -------------------------------------------------------------------------------------------- minisd

MINISD_PRUNE = {"timesteps": 10, "num_inference_steps": 20, "guidance_scale": 5.0}


def minisd_ratio(ratio: float, family: str) -> float:
    """The skill ratio of a concept at setting `ratio`: attributes at half (the paper's 0.02 objects / 0.01 nudity)."""
    return ratio / 2 if family == "attribute" else ratio


def minisd_key(model: str | Path) -> str:
    """Cache folder name of a minisd pipeline: its folder name and the first 12 hex of its UNet weights' sha256."""
    path = Path(model)
    files = sorted((path / "unet").glob("*.safetensors"))
    if not files:
        raise SystemExit(f"{path}: not a minisd pipeline folder (no unet/*.safetensors)")
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return f"{path.resolve().name}-{h.hexdigest()[:12]}"


def minisd_cases(cache: Path, model: str | Path, ratios=RATIOS, concepts: list[str] | None = None
                 ) -> Iterator[Case]:
    """ConceptPrune masks of every minisd concept on the UNet `ff.net.2` layers of the pipeline folder `model`."""
    from revival.minisd import world
    from revival.models import load_pipeline
    from revival.unlearn import concept_prune

    concepts = concepts or list(world.CONCEPTS)
    folder = cache / "minisd" / minisd_key(model)
    pipe = None
    weights = None
    for ratio in ratios:
        for concept in concepts:
            family = world.family_of(concept)
            r = minisd_ratio(ratio, family)
            path = folder / f"masks_sr{r}_{concept}.safetensors"
            if pipe is None:
                torch.manual_seed(0)
                pipe = load_pipeline(str(model))
                weights = {n: p.detach().float().clone() for n, p in pipe.unet.named_parameters()
                           if n.endswith("ff.net.2.weight")}
            if not path.exists():
                t0 = time.perf_counter()
                res = concept_prune(pipe, concept, prompts=world.prune_prompt_pairs(family, concept), skill_ratio=r,
                                    apply=False, **MINISD_PRUNE)
                _save_masks(res.masks, path)
                log(f"minisd: masks {concept} sr{r} in {time.perf_counter() - t0:.1f}s")
            masks = _load_masks(path)
            for name, w in weights.items():
                yield Case("minisd", f"sr{ratio}", concept, name, w, masks[name])


def minisd_info(cache: Path, model: str | Path) -> dict:
    """Where the minisd source's model and masks come from."""
    from revival.minisd import world

    path = Path(model)
    record = path / "training.json"
    training = None
    if record.exists():
        t = json.loads(record.read_text())
        training = {k: t[k] for k in ("component", "steps", "lr", "ema_decay", "wall_s", "threads", "torch") if k in t}
        training["variant"] = t.get("config", {}).get("variant")
    return {"model": str(path.resolve()), "training": training, "masks_cache": f"minisd/{minisd_key(path)}",
            "layers": "every UNet ff.net.2 (7: 64x256, 128x512)",
            "masks": "revival.unlearn.concept_prune(pipe, concept, prompts=revival.minisd.world.prune_prompt_pairs("
                     "family, concept), skill_ratio=r, timesteps=10, num_inference_steps=20, guidance_scale=5.0), "
                     "pipeline loaded by revival.models.load_pipeline as float32, torch seed 0",
            "skill_ratios": {f: [minisd_ratio(r, f) for r in RATIOS] for f in world.FAMILIES},
            "settings": "sr0.02 / sr0.2 name the object and style ratio; attributes are pruned at half of it",
            "concepts": list(world.CONCEPTS)}


# ------------------------------------------------------------------------------------------- lm_stdlib


class Block(nn.Module):
    """Pre-LN transformer block with a GELU MLP (fc1 d -> 4d, fc2 4d -> d)."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(B, T, D))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class GegluBlock(nn.Module):
    """Pre-LN transformer block whose feed-forward net is Stable Diffusion's: GEGLU ff.net.0.proj (d -> 2 x 4d),
    ff.net.2 (4d -> d)."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff = nn.Module()
        self.ff.net = nn.ModuleList([nn.Module(), nn.Identity(), nn.Linear(4 * d, d)])
        self.ff.net[0].proj = nn.Linear(d, 8 * d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(B, T, D))
        h, gate = self.ff.net[0].proj(self.ln2(x)).chunk(2, dim=-1)
        return x + self.ff.net[2](h * F.gelu(gate))


def docs_text() -> tuple[bytes, bytes, dict]:
    """(train bytes, held-out bytes, description): the English help texts of `pydoc_data.topics`, 10% held out."""
    from pydoc_data.topics import topics

    keys = sorted(topics)
    train = [topics[k].encode() for k in keys if hashlib.sha256(k.encode()).digest()[0] >= 26]
    held = [topics[k].encode() for k in keys if hashlib.sha256(k.encode()).digest()[0] < 26]
    desc = {"source": "pydoc_data.topics (English reference texts shipped with CPython)", "topics": len(keys),
            "held_out_topics": len(held), "train_bytes": sum(map(len, train)), "held_out_bytes": sum(map(len, held))}
    return b"\n".join(train), b"\n".join(held), desc


class ByteLM(nn.Module):
    """Byte-level causal LM with tied input/output embeddings."""

    def __init__(self, d: int = 128, layers: int = 4, heads: int = 4, ctx: int = 64, geglu: bool = False):
        super().__init__()
        self.emb = nn.Embedding(256, d)
        self.pos = nn.Parameter(torch.zeros(ctx, d))
        self.blocks = nn.ModuleList((GegluBlock if geglu else Block)(d, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        nn.init.normal_(self.emb.weight, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.emb(idx) + self.pos[: idx.shape[1]]
        for b in self.blocks:
            x = b(x)
        return self.ln(x) @ self.emb.weight.T


def stdlib_text() -> tuple[bytes, bytes, dict]:
    """(train bytes, held-out bytes, description): the stdlib's .py files, tests and site-packages left out.

    A file is held out when the first byte of the sha256 of its relative path is < 26 (~10%).
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "test", "tests", "idle_test", "pydoc_data"}  # pydoc_data is lm_docs's text
    files = sorted(p for p in root.rglob("*.py") if not skip & set(p.relative_to(root).parts))
    train, held = [], []
    for p in files:
        rel = str(p.relative_to(root))
        (held if hashlib.sha256(rel.encode()).digest()[0] < 26 else train).append(p.read_bytes())
    desc = {"root": str(root), "files": len(files), "held_out_files": len(held),
            "train_bytes": sum(map(len, train)), "held_out_bytes": sum(map(len, held))}
    return b"\n".join(train), b"\n".join(held), desc


def _batches(data: torch.Tensor, n: int, ctx: int, g: torch.Generator) -> torch.Tensor:
    start = torch.randint(0, data.numel() - ctx - 1, (n,), generator=g)
    return torch.stack([data[s: s + ctx + 1] for s in start.tolist()]).long()


LMS = {  # name: (text, GEGLU feed-forward?, pruned layers' name pattern, training steps)
    "lm_stdlib": (stdlib_text, False, "blocks.{i}.fc2", 1500),  # 10 MB of text: 0.3 epochs
    "lm_docs": (docs_text, True, "blocks.{i}.ff.net.2", 600),  # 0.44 MB: about 3 epochs
}


def train_lm(cache: Path, folder: str, seed: int = 0, batch: int = 32, lr: float = 3e-3) -> Path:
    """Train (once) the byte LM `folder` (a key of LMS); save weights, held-out FFN-output input norms and a log."""
    out = cache / folder
    if (out / "model.safetensors").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    text_fn, geglu, pattern, steps = LMS[folder]
    train, held, desc = text_fn()
    tr = torch.frombuffer(bytearray(train), dtype=torch.uint8)
    ho = torch.frombuffer(bytearray(held), dtype=torch.uint8)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = ByteLM(geglu=geglu)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 40) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    t0 = time.perf_counter()
    losses = []
    for step in range(steps):
        x = _batches(tr, batch, 64, g)
        loss = F.cross_entropy(model(x[:, :-1]).reshape(-1, 256), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 50 == 0:
            log(f"{folder} step {step} loss {loss:.3f}")
    model.eval()
    gh = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        xh = _batches(ho, 256, 64, gh)
        held_loss = float(F.cross_entropy(model(xh[:, :-1]).reshape(-1, 256), xh[:, 1:].reshape(-1)))
    norms = activation_norms(model, [pattern.format(i=i) for i in range(len(model.blocks))], xh[:, :-1])
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    save_file(norms, str(out / "norms.safetensors"))
    info = {"data": desc, "model": f"byte LM, 4 blocks, d 128, {'GEGLU' if geglu else 'GELU'} FFN 128 -> 512 -> 128",
            "seed": seed, "steps": steps, "batch": batch, "ctx": 64, "lr": lr,
            "train_loss_first": losses[0], "train_loss_last_50_mean": sum(losses[-50:]) / 50,
            "held_out_loss_nats_per_byte": held_loss, "held_out_tokens_for_norms": int(xh[:, :-1].numel()),
            "seconds": round(time.perf_counter() - t0, 1), "threads": torch.get_num_threads()}
    (out / "train.json").write_text(json.dumps(info, indent=2))
    log(f"{folder} trained: {info}")
    return out


def activation_norms(model: nn.Module, modules: list[str], *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Column L2 norm of the input of each named Linear over all tokens of one forward pass (WANDA)."""
    acc: dict[str, torch.Tensor] = {}
    hooks = []
    for name in modules:
        def hook(mod, args, name=name):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).float()
            acc[name] = acc.get(name, 0) + x.square().sum(0)
        hooks.append(model.get_submodule(name).register_forward_pre_hook(hook))
    with torch.no_grad():
        model(*inputs)
    for h in hooks:
        h.remove()
    return {f"{k}.weight": v.sqrt() for k, v in acc.items()}


def wanda_cases(source: str, folder: Path, ratios=RATIOS) -> Iterator[Case]:
    weights = load_file(str(folder / "model.safetensors"))
    norms = load_file(str(folder / "norms.safetensors"))
    for ratio in ratios:
        for name, nrm in norms.items():
            w = weights[name].float()
            yield Case(source, f"r{ratio}", "", name, w, wanda_top(w, nrm, ratio))


# -------------------------------------------------------------------------------------------- registry


def source_concepts(name: str) -> tuple[str, ...]:
    """The erasable concepts of a concept-masked source (empty for the LMs)."""
    if name == "minisd":
        from revival.minisd import world

        return world.CONCEPTS
    return ()


def source_cases(name: str, cache: Path, concepts: list[str] | None = None, minisd: str | None = None
                 ) -> Iterator[Case]:
    """Cases of one source: `minisd` (pipeline folder `minisd`) or a key of LMS.

    `concepts` (default every one) is narrowed to those of the source's world.
    """
    if concepts is not None and source_concepts(name):
        concepts = [c for c in concepts if c in source_concepts(name)]
        if not concepts:
            return
    if name == "minisd":
        if minisd is None:
            raise SystemExit("source minisd needs its pipeline folder: --minisd PATH")
        yield from minisd_cases(cache, minisd, concepts=concepts)
    elif name in LMS:
        yield from wanda_cases(name, train_lm(cache, name))
    else:
        raise SystemExit(f"unknown source {name!r}")


def source_info(name: str, cache: Path, minisd: str | None = None) -> dict:
    """The training log of a trained source; for the concept-masked source, where its model and masks come from."""
    if name in LMS:
        path = cache / name / "train.json"
        return json.loads(path.read_text()) if path.exists() else {}
    if name == "minisd":
        return minisd_info(cache, minisd) if minisd else {}
    return {}
