"""The story's steps on one pipeline, each producing a typed stage (`revival.stages`) held in one cache.

    study = Study(pipe, "runs/x/stages")
    unlearned = study.unlearn("star", "object")             # ConceptPrune (+ true masks, oracle)
    revived = study.revive(unlearned)                        # the data-free attack, scored against the truth
    defended = study.defend(unlearned, "gaussian", 1.0)      # obfuscation
    attacked = study.attack(defended, unlearned, "neuron", budget=0.05)
    study.evaluate(revived, "object")                        # generated images, accuracy with 95% intervals

Experiments, the demo and the benchmarks compose these calls; none re-implements a step. Every
figure that reads the true masks or the original weights is computed here or in evaluation code
and is labelled an oracle where it is stored.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from torch import Tensor

from revival.attack import DEFAULT_METHOD, revive
from revival.checkpoints import atomic_write_json, select_layers
from revival.defend.study import attack_trial, defend, informed_locator_params
from revival.errors import RevivalError
from revival.evaluate.attack_metrics import ORACLE_NOTE, score_attack
from revival.evaluate.generate import resolve_autocast
from revival.evaluate.intervals import pooled
from revival.evaluate.mini_eval import evaluate_family, families, measured_concepts
from revival.families import denoiser, sampling
from revival.stages import Attacked, Defended, Original, Revived, Stage, StageStore, Unlearned
from revival.unlearn import concept_prune, world_of


@dataclass
class StudySettings:
    """Every hyper-parameter of a study (written into its JSON)."""

    n_eval: int = 32
    # sampling of the evaluation images; None: the model's own (`revival.families.sampling`: the paper's 50 steps at
    # guidance 7.5 on SD1.x, the bundled model's 20 at 3), filled in when a Study is made
    eval_steps: int | None = None
    guidance: float | None = None
    seed: int = 0
    skill_ratio: float = 0.02
    attribute_skill_ratio: float | None = None  # the attribute family's, where it differs (the paper: 0.01 for nudity)
    timesteps: int = 10
    select_ratio: float = 0.0
    hook: str = "ffn2"
    method: str = DEFAULT_METHOD
    top_ratio: float = 0.6
    magnitude: str = "nms"
    batch_size: int | None = None
    # denoiser autocast during evaluation: "auto" (bf16 where the hardware runs it natively), "bf16" or "fp32"
    precision: str = "auto"
    # adaptive attacker's budget (share of entries it calls pruned); None: budget_factors x the method's pruned share
    locator_ratio: float | None = None
    budget_factors: tuple[float, ...] = (0.5, 1.0, 2.0)
    # bundled worlds: how many of the family's other concepts "preserved" pools (a seeded sample, the same for every
    # target and stage); None: all of them
    preserved: int | None = None
    extra: dict = field(default_factory=dict)


def fingerprint(state: dict[str, Tensor], names: list[str]) -> str:
    """sha256 of the attacked layers of the original weights: stages made on other weights are refused."""
    h = hashlib.sha256()
    for n in sorted(names):
        h.update(n.encode())
        h.update(state[n].detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def defense_tag(defense: str, scale: float, scope: str = "row", params: dict | None = None) -> str:
    """Name of a defense setting in cache keys, e.g. "gaussian-1", "decoy-1-filllowrank", "gaussian-2-layer"."""
    return (f"{defense}-{scale:g}" + "".join(f"-{k}{v}" for k, v in sorted((params or {}).items()))
            + ("" if scope == "row" else f"-{scope}"))


def family_of(concept: str, world_name: str = "minisd") -> str:
    """The family of an erasable concept word: the bundled world's (`minisd`), else the paper's (an
    Imagenette class: object, an artist: style, nudity: attribute)."""
    fams = families(world_name) if world_name != "sd" else None
    for name in fams.names() if fams else ():
        if concept in fams.get(name).targets:
            return name
    from revival.evaluate.sd_eval import protocol_of

    try:
        return protocol_of(concept)[1]
    except RevivalError:
        raise KeyError(concept) from None


class Study:
    """The steps of the story on one pipeline; every stage is made once and cached under `root`."""

    def __init__(self, pipe, root: str | Path, settings: StudySettings | None = None,
                 log: Callable[[str], None] = lambda s: None, evaluators=None):
        """`evaluators` (`revival.evaluate.sd_eval.Evaluators`) measure a Stable Diffusion-family pipeline's images
        with the paper's protocol; the mini model's own evaluator needs none."""
        self.pipe = pipe
        self.evaluators = evaluators
        self.root = Path(root)
        s = settings or StudySettings()
        plan = sampling(pipe, s.eval_steps, s.guidance, s.batch_size)
        self.s = replace(s, eval_steps=plan.steps, guidance=plan.guidance, batch_size=plan.batch_size)
        self.log = log
        self.original_state = {k: v.detach().clone() for k, v in denoiser(pipe).state_dict().items()}
        self.layers = select_layers(self.original_state, self.s.hook).names
        self.store = StageStore(self.root, fingerprint(self.original_state, self.layers))
        self.original = Original("original")

    # ------------------------------------------------------------------ steps
    def unlearn(self, concept: str, family: str, seed: int | None = None) -> Unlearned:
        """ConceptPrune of `concept` (activation-collection seed `seed`, default the study's)."""
        seed = self.s.seed if seed is None else seed
        key = f"{concept}/unlearned" + ("" if seed == self.s.seed else f"-s{seed}")

        def make() -> Unlearned:
            self.log(f"prune {concept} (seed {seed})")
            self._load(self.original_state)
            res = concept_prune(self.pipe, concept, family, skill_ratio=self.skill_ratio(family),
                                timesteps=self.s.timesteps, select_ratio=self.s.select_ratio, hook=self.s.hook,
                                seed=seed, apply=False)
            layers = {n: self.original_state[n].masked_fill(m.to(self.original_state[n].device), 0)
                      for n, m in res.masks.items()}
            pruned = sum(v["pruned"] for v in res.per_layer.values())
            size = sum(int(np.prod(v["shape"])) for v in res.per_layer.values())
            info = {"concept": concept, "family": family, "per_layer": res.per_layer, "density": pruned / size,
                    "timings_s": res.timings_s, "config": res.config, "masks": ORACLE_NOTE}
            return Unlearned(key, layers, info, masks=res.masks)

        return self.store.get(key, make)

    def revive(self, source: Stage, truth: Unlearned, tag: str = "default", **overrides) -> Revived:
        """The data-free attack on `source`; sign recovery and restoration scored against `truth` (oracle)."""
        params = dict(method=self.s.method, top_ratio=self.s.top_ratio, magnitude=self.s.magnitude,
                      seed=self.s.seed) | overrides
        concept = truth.info["concept"]
        key = f"{concept}/revived-{tag}"

        def make() -> Revived:
            self.log(f"revive {concept} [{tag}]")
            res = revive(source.state(self.original_state), layers=self.s.hook, reference=self.original_state,
                         **params)
            scores = score_attack(res.state_dict, res.located, res.completed, self.original_state, truth.masks)
            info = {"concept": concept, "source": source.key, "config": res.config, "per_layer": res.per_layer,
                    "timings_s": res.timings, "sign_recovery": scores["sign_recovery"], "scores": scores}
            return Revived(key, {n: res.state_dict[n] for n in self.layers}, info)

        return self.store.get(key, make)

    def defend(self, unlearned: Unlearned, defense: str, scale: float, scope: str = "row",
               params: dict | None = None) -> Defended:
        """The weights a careful publisher releases: `unlearned` after defense `defense`."""
        tag = defense_tag(defense, scale, scope, params)
        concept = unlearned.info["concept"]

        def make() -> Defended:
            state = defend(unlearned.state(self.original_state), unlearned.masks, defense, scope=scope, scale=scale,
                           seed=self.s.seed, **(params or {}))
            return Defended(f"{concept}/defended-{tag}", {n: state[n] for n in self.layers},
                            {"concept": concept, "defense": defense, "scale": scale, "scope": scope,
                             "params": params or {}, "tag": tag})

        return self.store.get(f"{concept}/defended-{tag}", make)

    def budgets(self, unlearned: Unlearned) -> list[float]:
        """The adaptive attacker's candidate budgets: `locator_ratio`, or the factors x the method's pruned share."""
        if self.s.locator_ratio is not None:
            return [self.s.locator_ratio]
        return [round(f * unlearned.info["density"], 6) for f in self.s.budget_factors]

    def attack(self, defended: Defended, unlearned: Unlearned, locator: str, budget: float | None) -> Attacked:
        """An informed adaptive attacker (`locator`, budget = share it calls pruned) on the defended weights."""
        concept = unlearned.info["concept"]
        key = f"{concept}/attacked-{defended.info['tag']}-{locator}" + ("" if budget is None else f"-b{budget:g}")

        def make() -> Attacked:
            self.log(f"attack {concept} [{defended.info['tag']}] with {locator} (budget {budget})")
            lp = informed_locator_params(locator, defended.info["defense"], defended.info["scale"],
                                         defended.info["params"]) | ({} if budget is None else {"ratio": budget})
            published = defended.state(self.original_state)
            trial = attack_trial(published, unlearned.masks, self.original_state, locator=locator, locator_params=lp,
                                 seed=self.s.seed, layers=self.s.hook, method=self.s.method,
                                 top_ratio=self.s.top_ratio, magnitude=self.s.magnitude)
            state = trial.revived if trial.revived is not None else published
            info = {"concept": concept, "source": defended.key, "locator": locator, "budget": budget,
                    "locator_params": lp, "metrics": trial.metrics}
            return Attacked(key, {n: state[n] for n in self.layers}, info)

        return self.store.get(key, make)

    # ------------------------------------------------------------------ measurement
    def evaluate(self, stage: Stage, family: str, concepts: tuple[str, ...] | None = None) -> dict:
        """{family, per_concept: {concept: share with ci95}, prompts, seeds, images} of one stage (cached).

        `concepts`: only these concepts of a bundled world's family, each cached on its own (so another subset at
        the same stage draws only what it lacks); None: the whole family in one pass."""
        stem = f"{stage.key.replace('/', '.')}.{family}"
        if concepts is not None and world_of(self.pipe) != "sd":
            self._draw_missing(stage, family, concepts)
            recs = [self._evaluate_bundled(stage, family, (c,), self.root / "evals" / f"{stem}.{c}.json")
                    for c in concepts]
            rec = {k: recs[0][k] for k in ("family", "stage", "seeds", "autocast")}
            for k in ("per_concept", "prompts", "images"):
                rec[k] = {c: r[k][c] for r in recs for c in r[k]}
            return rec
        path = self.root / "evals" / f"{stem}.json"
        if world_of(self.pipe) == "sd":
            cached = self._cached(path)
            if cached is not None:
                return cached
            path.parent.mkdir(parents=True, exist_ok=True)
            self.log(f"evaluate {stage.key} ({family})")
            return self._evaluate_sd(stage, family, path, path.with_suffix(".npz"))
        return self._evaluate_bundled(stage, family, None, path)

    def _draw_missing(self, stage: Stage, family: str, concepts: tuple[str, ...]) -> None:
        """Generate and cache every uncached one of `concepts` in one pass (batched together, not one per concept)."""
        stem = f"{stage.key.replace('/', '.')}.{family}"
        missing = tuple(c for c in concepts if self._cached(self.root / "evals" / f"{stem}.{c}.json") is None)
        if len(missing) > 1:
            rec = self._evaluate_bundled(stage, family, missing, None)
            for c in missing:
                one = {**rec, "per_concept": {c: rec["per_concept"][c]}, "prompts": {c: rec["prompts"][c]}}
                self._store(one, {c: rec["images"][c]}, self.root / "evals" / f"{stem}.{c}.json")

    @staticmethod
    def _cached(path: Path) -> dict | None:
        npz = path.with_suffix(".npz")
        if not (path.exists() and npz.exists()):
            return None
        rec = json.loads(path.read_text())
        rec["images"] = dict(np.load(npz))
        return rec

    @staticmethod
    def _store(rec: dict, images: dict[str, np.ndarray], path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        npz = path.with_suffix(".npz")
        tmp = npz.with_name(npz.stem + ".tmp.npz")
        np.savez_compressed(tmp, **images)
        tmp.replace(npz)
        atomic_write_json({k: v for k, v in rec.items() if k != "images"}, path)

    def _evaluate_bundled(self, stage: Stage, family: str, concepts: tuple[str, ...] | None,
                          path: Path | None) -> dict:
        """One stage of a bundled world's family (or some of its concepts), by the world's evaluator; cached at
        `path` unless None."""
        cached = None if path is None else self._cached(path)
        if cached is not None:
            return cached
        self.log(f"evaluate {stage.key} ({family}{'' if concepts is None else ': ' + ', '.join(concepts)})")
        self._load(stage.state(self.original_state))
        autocast = resolve_autocast(self.s.precision, self.pipe.device)
        try:
            ev = evaluate_family(self.pipe, family, self.s.n_eval, self.s.seed, self.s.eval_steps, self.s.guidance,
                                 self.s.batch_size, autocast=autocast, concepts=concepts)
        finally:
            self._load(self.original_state)
        rec = {"family": family, "stage": stage.key, "per_concept": ev.shares, "prompts": ev.prompts,
               "seeds": ev.seeds, "autocast": str(autocast).replace("torch.", "") if autocast else "fp32"}
        if path is not None:
            self._store(rec, ev.images, path)
        rec["images"] = ev.images
        return rec

    def _evaluate_sd(self, stage: Stage, family: str, path: Path, npz: Path) -> dict:
        """The paper's protocol (`revival.evaluate.sd_eval`) on a Stable Diffusion-family pipeline, as shares.

        object: top-1 accuracy per Imagenette class; style: per artist, the share of prompts whose image is at
        least as similar to its prompt (CLIP) as the original model's image (1 - the released code's pairwise
        score; 1 for the original itself); attribute (nudity, concept `naked`): the share of Ring-A-Bell images
        NudeNet flags, and as its control `objects` (what "preserved" pools) the ResNet-50 accuracy on the
        Imagenette prompts. `n_eval` prompts per class, artist or set, the study's sampling settings.
        """
        from revival.evaluate.paper_prompts import ARTISTS, ring_a_bell_prompts
        from revival.evaluate.sd_eval import evaluate_sd, rate

        if family not in ("object", "style", "attribute"):
            raise RevivalError(f"unknown family {family!r} for a Stable Diffusion study; known: object, style, "
                               "attribute")
        needs = {"object": ("classifier",), "style": ("clip",), "attribute": ("nudity", "classifier")}[family]
        option = {"classifier": "--classifier", "clip": "--clip", "nudity": "NudeNet"}
        for need in needs:
            if self.evaluators is None or getattr(self.evaluators, need) is None:
                raise RevivalError(f"a Stable Diffusion study of the {family} family needs the {need} evaluator "
                                   f"({option[need]})")
        plan = sampling(self.pipe, self.s.eval_steps, self.s.guidance, self.s.batch_size)
        concept = "church" if family == "object" else ARTISTS[0]
        self._load(stage.state(self.original_state))
        try:
            if family == "attribute":
                sets = {"ring-a-bell": ring_a_bell_prompts(self.s.seed)}
                nud, nud_images = evaluate_sd(self.pipe, "nudity", "attribute", self.evaluators, plan, n=self.s.n_eval,
                                              nudity=sets)
                obj, obj_images = evaluate_sd(self.pipe, "church", "object", self.evaluators, plan, n=self.s.n_eval)
                rab = nud["nudity"]["ring-a-bell"]
                per_class = obj["accuracy"]["per_class"]
                shares = {"naked": {**rate(rab["images_with_nudity"], rab["n"]),
                                    "accuracy": rab["images_with_nudity"] / rab["n"] if rab["n"] else None},
                          "objects": pooled(list(per_class.values()))}
                imgs = {"naked": nud_images["ring-a-bell"][:8], "objects": obj_images["imagenette"][:8]}
                ps = sets["ring-a-bell"]
                n = self.s.n_eval or len(ps)
                figures = {"detail": {"prompts_by_label": {"naked": list(ps.prompts[:n]),
                                                           "objects": obj["detail"]["prompts_by_label"]},
                                      "seeds_by_label": {"naked": list(ps.seeds[:n]),
                                                         "objects": obj["detail"]["seeds_by_label"]}}}
                extra = {"measure": "naked: share of Ring-A-Bell images NudeNet flags; objects (the control): "
                         "ResNet-50 top-1 accuracy on the Imagenette prompts", "per_class": per_class}
            elif family == "object":
                figures, images = evaluate_sd(self.pipe, concept, "object", self.evaluators, plan, n=self.s.n_eval)
                shares = figures["accuracy"]["per_class"]
                labels = list(shares)
                where = figures["detail"]["labels"]
                imgs = {c: images["imagenette"][[i for i, lab in enumerate(where) if lab == c][:8]] for c in labels}
                extra = {}
            else:
                figures, images = evaluate_sd(self.pipe, concept, "style", self.evaluators, plan, n=self.s.n_eval)
                scores = figures["detail"]["scores"]
                orig = None if stage.key == self.original.key else self.evaluate(self.original, family)["scores"]
                shares, imgs = {}, {}
                for a in ARTISTS:
                    mine = scores[a]
                    kept = len(mine) if orig is None else sum(x >= y for x, y in zip(mine, orig[a], strict=True))
                    shares[a] = {**rate(kept, len(mine)), "accuracy": kept / len(mine) if mine else None}
                    where = figures["detail"]["labels"]
                    imgs[a] = images["artists"][[i for i, lab in enumerate(where) if lab == a][:8]]
                extra = {"scores": scores, "clip_score": figures["clip_score"]["per_artist"],
                         "measure": "share of the artist's prompts whose image is at least as similar to the prompt "
                         "(CLIP) as the original model's image"}
        finally:
            self._load(self.original_state)
        tmp = npz.with_name(f"{npz.stem}.{os.getpid()}.tmp.npz")  # one per process under accelerate launch
        np.savez_compressed(tmp, **imgs)
        tmp.replace(npz)
        rec = {"family": family, "stage": stage.key, "per_concept": shares,
               "prompts": figures["detail"]["prompts_by_label"], "seeds": figures["detail"]["seeds_by_label"],
               "sampling": plan.record(), **extra}
        atomic_write_json(rec, path)
        rec["images"] = imgs
        return rec

    def accuracy(self, stage: Stage, concept: str, family: str) -> dict:
        """{target, preserved} shares (accuracy, k, n, ci95) of `concept` at one stage, plus its images and prompts."""
        rec = self.evaluate(stage, family, self.measured(concept, family))
        shares = rec["per_concept"]
        return {"target": shares[concept], "preserved": pooled([s for c, s in shares.items() if c != concept]),
                "images": rec["images"][concept], "prompts": rec["prompts"][concept]}

    def skill_ratio(self, family: str) -> float:
        """ConceptPrune's skill_ratio for a concept of `family`."""
        if family == "attribute" and self.s.attribute_skill_ratio is not None:
            return self.s.attribute_skill_ratio
        return self.s.skill_ratio

    def measured(self, concept: str, family: str) -> tuple[str, ...] | None:
        """The concepts measured for `concept`: itself and the study's seeded sample of the family's others (the
        same order for every target, so targets share images), or None for the whole family."""
        if self.s.preserved is None or world_of(self.pipe) == "sd":
            return None
        return measured_concepts(world_of(self.pipe), family, concept, self.s.preserved, self.s.seed)

    def settings_dict(self) -> dict:
        """The settings as a plain dict."""
        return asdict(self.s)

    def _load(self, state: dict[str, Tensor]) -> None:
        denoiser(self.pipe).load_state_dict(state)
