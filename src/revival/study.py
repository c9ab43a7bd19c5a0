"""The whole story for one concept on one model, stage by stage, cached on disk so runs resume.

original -> unlearned (ConceptPrune) -> revived (the attack) -> defended (obfuscation) ->
revived after the defense (an adaptive locator). Each stage's weights differ from the original
only in the attacked layers, so a stage is stored as those layers alone (safetensors), and each
evaluation as JSON plus the target concept's images (the same prompts and seeds at every stage).
Used by `revival demo`, `revival experiment` and the benchmarks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import Tensor

from revival.attack import DEFAULT_METHOD, revive
from revival.checkpoints import atomic_save_safetensors, atomic_write_json, select_layers
from revival.defend.study import attack_trial, defend, informed_locator_params
from revival.evaluate.mini_eval import FAMILIES, concept_accuracy, evaluate_family
from revival.unlearn import concept_prune


@dataclass
class StudySettings:
    """Every hyper-parameter of a study (written into its JSON)."""

    n_eval: int = 32
    eval_steps: int = 20
    guidance: float = 4.0
    seed: int = 0
    skill_ratio: float = 0.02
    timesteps: int = 10
    select_ratio: float = 0.0
    hook: str = "ffn2"
    method: str = DEFAULT_METHOD
    top_ratio: float = 0.6
    magnitude: str = "nms"
    batch_size: int = 64
    precision: str = "bf16"  # denoiser autocast during evaluation: "bf16" (about 2x faster on CPU) or "fp32"
    locator_ratio: float | None = None  # adaptive attacker's budget (share of entries it calls pruned); None: 0.02
    extra: dict = field(default_factory=dict)


class Study:
    """Stages of the story on one pipeline, each computed once and cached under `root`."""

    def __init__(self, pipe, root: str | Path, settings: StudySettings | None = None,
                 log: Callable[[str], None] = lambda s: None):
        self.pipe = pipe
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.s = settings or StudySettings()
        self.log = log
        self.original = {k: v.detach().clone() for k, v in pipe.unet.state_dict().items()}
        self.layers = select_layers(self.original, self.s.hook).names

    # ------------------------------------------------------------------ weights
    def _load(self, state: dict[str, Tensor]) -> None:
        self.pipe.unet.load_state_dict(state)

    def _save_layers(self, state: dict[str, Tensor], path: Path, names: list[str] | None = None) -> None:
        names = names or self.layers
        atomic_save_safetensors({n: state[n] for n in names}, path)

    def _state_from(self, path: Path) -> dict[str, Tensor]:
        state = dict(self.original)
        state.update(load_file(str(path)))
        return state

    def _cached(self, path: Path, make: Callable[[], tuple[dict[str, Tensor], dict]]) -> tuple[dict[str, Tensor], dict]:
        info_path = path.with_suffix(".json")
        if path.exists() and info_path.exists():
            return self._state_from(path), json.loads(info_path.read_text())
        state, info = make()
        self._save_layers(state, path)
        atomic_write_json(info, info_path)
        return state, info

    # ------------------------------------------------------------------ stages
    def evaluate(self, key: str, state: dict[str, Tensor], family: str) -> dict:
        """{per_concept: accuracy, images: target images per concept (cached npz)} of one model stage."""
        path = self.root / "evals" / f"{key}.{family}.json"
        npz = path.with_suffix(".npz")
        if path.exists() and npz.exists():
            rec = json.loads(path.read_text())
            rec["images"] = dict(np.load(npz))
            return rec
        path.parent.mkdir(parents=True, exist_ok=True)
        self.log(f"evaluate {key} ({family})")
        self._load(state)
        ev = evaluate_family(self.pipe, family, self.s.n_eval, self.s.seed, self.s.eval_steps, self.s.guidance,
                             self.s.batch_size, autocast=torch.bfloat16 if self.s.precision == "bf16" else None)
        self._load(self.original)
        tmp = npz.with_name(npz.stem + ".tmp.npz")
        np.savez_compressed(tmp, **ev.images)
        tmp.replace(npz)
        rec = {"family": family, "per_concept": ev.per_concept, "prompts": ev.prompts, "seeds": ev.seeds}
        atomic_write_json(rec, path)
        rec["images"] = ev.images
        return rec

    def accuracy(self, key: str, state: dict[str, Tensor], concept: str, family: str) -> dict:
        """{target, preserved} of `concept` at one stage."""
        return concept_accuracy(self.evaluate(key, state, family)["per_concept"], concept)

    def unlearn(self, concept: str, family: str) -> tuple[dict[str, Tensor], dict[str, Tensor], dict]:
        """(unlearned state, true masks, prune info); masks are for evaluation only."""
        path = self.root / concept / "unlearned.safetensors"
        mask_path = self.root / concept / "masks.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)

        def make():
            self.log(f"prune {concept}")
            self._load(self.original)
            res = concept_prune(self.pipe, concept, family, skill_ratio=self.s.skill_ratio,
                                timesteps=self.s.timesteps, select_ratio=self.s.select_ratio, hook=self.s.hook,
                                seed=self.s.seed, apply=False)
            atomic_save_safetensors({k: v.to(torch.uint8) for k, v in res.masks.items()}, mask_path)
            state = dict(self.original)
            for n, m in res.masks.items():
                state[n] = self.original[n].masked_fill(m, 0)
            density = sum(v["pruned"] for v in res.per_layer.values()) / sum(
                int(np.prod(v["shape"])) for v in res.per_layer.values())
            return state, {"per_layer": res.per_layer, "density": density, "timings_s": res.timings_s,
                           "config": res.config}

        state, info = self._cached(path, make)
        masks = {k: v.bool() for k, v in load_file(str(mask_path)).items()}
        return state, masks, info

    def revive(self, concept: str, tag: str, state: dict[str, Tensor], **overrides) -> tuple[dict[str, Tensor], dict]:
        """The attack on `state` (data-free; the original weights serve only to score sign recovery)."""
        params = dict(method=self.s.method, top_ratio=self.s.top_ratio, magnitude=self.s.magnitude,
                      seed=self.s.seed) | overrides
        path = self.root / concept / f"revived-{tag}.safetensors"

        def make():
            self.log(f"revive {concept} [{tag}]")
            res = revive(state, layers=self.s.hook, reference=self.original, **params)
            return res.state_dict, {"config": res.config, "sign_recovery": res.sign_recovery,
                                    "per_layer": res.per_layer, "timings_s": res.timings}

        return self._cached(path, make)

    def defend_and_attack(self, concept: str, unlearned: dict[str, Tensor], masks: dict[str, Tensor],
                          defense: str, scale: float, locator: str, scope: str = "row",
                          defense_params: dict | None = None) -> tuple[dict, dict, dict]:
        """(defended state, revived-after-defense state, trial metrics) for one defense and locator."""
        dp = defense_params or {}
        tag = defense_tag(defense, scale, scope, dp)
        dpath = self.root / concept / f"defended-{tag}.safetensors"
        defended, _ = self._cached(dpath, lambda: (
            defend(unlearned, masks, defense, scope=scope, scale=scale, seed=self.s.seed, **dp),
            {"defense": defense, "scale": scale, "scope": scope, "params": dp}))
        rpath = self.root / concept / f"{self.attack_name(tag, locator)}.safetensors"

        def make():
            self.log(f"attack {concept} [{tag}] with locator {locator}{self.budget_tag()}")
            lp = informed_locator_params(locator, defense, scale, dp) | self.locator_budget(locator)
            trial = attack_trial(defended, masks, self.original, locator=locator, locator_params=lp,
                                 seed=self.s.seed, layers=self.s.hook, method=self.s.method,
                                 top_ratio=self.s.top_ratio, magnitude=self.s.magnitude)
            return (trial.revived if trial.revived is not None else defended), {"metrics": trial.metrics,
                                                                               "locator_params": lp}

        revived, info = self._cached(rpath, make)
        return defended, revived, info

    def locator_budget(self, locator: str) -> dict:
        """{"ratio": locator_ratio} for an adaptive locator when the settings fix its budget, else {}."""
        return {} if self.s.locator_ratio is None or locator == "zeros" else {"ratio": self.s.locator_ratio}

    def budget_tag(self) -> str:
        """Suffix that keeps cached attacks (and their evaluations) of different locator budgets apart."""
        return "" if self.s.locator_ratio is None else f"-r{self.s.locator_ratio:g}"

    def attack_name(self, tag: str, locator: str) -> str:
        """Cache name of the attack by `locator` on the defense `tag` (`defense_tag`): its file and its evaluations."""
        return f"attacked-{tag}-{locator}{self.budget_tag()}"

    def settings_dict(self) -> dict:
        """The settings as a plain dict."""
        return asdict(self.s)


def defense_tag(defense: str, scale: float, scope: str = "row", params: dict | None = None) -> str:
    """Name of a defense setting in cache keys, e.g. "gaussian-1", "decoy-1-filllowrank", "gaussian-2-layer"."""
    return (f"{defense}-{scale:g}" + "".join(f"-{k}{v}" for k, v in sorted((params or {}).items()))
            + ("" if scope == "row" else f"-{scope}"))


def family_of(concept: str) -> str:
    """The mini-world family of an erasable concept word."""
    for name in FAMILIES.names():
        if concept in FAMILIES.get(name).targets:
            return name
    raise KeyError(concept)
