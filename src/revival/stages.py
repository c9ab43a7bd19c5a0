"""The stages of the story as typed artifacts that save and load themselves, and the one cache that holds them.

original -> unlearned (+ its true masks, an oracle for evaluation only) -> revived (the attack) ->
defended (obfuscation) -> attacked (an adaptive attacker on the defended weights). A stage keeps
only the attacked layers (every other weight is the original's) and the JSON record of the step
that made it. `save_pretrained(folder)` / `Stage.from_pretrained(folder)` round-trip it, as
diffusers models do; a folder from another format version, or made on other original weights, is
refused with one line.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from revival.errors import RevivalError
from revival.jsonfiles import read_json
from revival.registry import Registry

FORMAT = 2  # version of the stage folder layout; older folders are refused, not misread
STAGE_KINDS: Registry[type] = Registry("stage kind")


def _kind(name: str):
    def deco(cls):
        cls.kind = name
        STAGE_KINDS.register(name, oracle=bool(getattr(cls, "oracle_fields", ())))(cls)
        return cls
    return deco


@dataclass
class Stage:
    """One model stage: its cache key, the attacked layers' weights, and the record of the step that made it."""

    kind: ClassVar[str] = "stage"
    oracle_fields: ClassVar[tuple[str, ...]] = ()
    key: str
    layers: dict[str, Tensor] = field(default_factory=dict, repr=False)
    info: dict = field(default_factory=dict)

    def state(self, original: dict[str, Tensor]) -> dict[str, Tensor]:
        """The full state dict: the original's weights with this stage's layers in place (on their device)."""
        return {**original, **{k: v.to(original[k].device) if k in original else v for k, v in self.layers.items()}}

    def save_pretrained(self, folder: str | Path, fingerprint: str = "") -> Path:
        """Write layers.safetensors, any oracle tensors and stage.json into `folder`, atomically."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.with_name(f".{folder.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.mkdir()
        try:
            save_file({k: v.detach().contiguous().cpu() for k, v in self.layers.items()},
                      str(tmp / "layers.safetensors"))
            for name in self.oracle_fields:
                save_file({k: v.to(torch.uint8).contiguous().cpu() for k, v in getattr(self, name).items()},
                          str(tmp / f"{name}.safetensors"))
            meta = {"format": FORMAT, "kind": self.kind, "key": self.key, "fingerprint": fingerprint,
                    "oracle_files": [f"{n}.safetensors" for n in self.oracle_fields], "info": self.info}
            (tmp / "stage.json").write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder

    @staticmethod
    def from_pretrained(folder: str | Path, fingerprint: str | None = None) -> Stage:
        """The stage saved in `folder`, as its own kind; one-line errors for foreign or stale folders."""
        folder = Path(folder)
        meta_path = folder / "stage.json"
        if not meta_path.is_file():
            raise RevivalError(f"{folder}: not a stage folder (stage.json is missing)")
        meta = read_json(meta_path)
        if meta.get("format") != FORMAT:
            got = meta.get("format", "none")
            raise RevivalError(f"{folder}: stage written by another version of revival (format {got}, this one "
                               f"reads {FORMAT}); start a new run")
        if fingerprint is not None and meta.get("fingerprint") != fingerprint:
            raise RevivalError(f"{folder}: stage made from other original weights than the model given now")
        cls = STAGE_KINDS.get(meta["kind"])
        try:
            layers = load_file(str(folder / "layers.safetensors"))
            extra = {n: {k: v.bool() for k, v in load_file(str(folder / f"{n}.safetensors")).items()}
                     for n in cls.oracle_fields}
        except (SafetensorError, OSError) as e:
            raise RevivalError(f"{folder}: unreadable stage tensors ({e})") from None
        return cls(key=meta["key"], layers=layers, info=meta["info"], **extra)


@_kind("original")
@dataclass
class Original(Stage):
    """The model as published before unlearning (no layers of its own)."""


@_kind("unlearned")
@dataclass
class Unlearned(Stage):
    """ConceptPrune's output; `masks` (True = pruned) are the truth, for evaluation code only (oracle)."""

    oracle_fields: ClassVar[tuple[str, ...]] = ("masks",)
    masks: dict[str, Tensor] = field(default_factory=dict, repr=False)


@_kind("revived")
@dataclass
class Revived(Stage):
    """The data-free attack's output on an unlearned (or any published) stage."""


@_kind("defended")
@dataclass
class Defended(Stage):
    """An unlearned stage after an obfuscation defense: what a careful publisher releases."""


@_kind("attacked")
@dataclass
class Attacked(Stage):
    """A defended stage after an adaptive attacker's locate -> complete -> signs -> scale."""


class StageStore:
    """The one cache of a run: `root/<key>/` per stage, each made once and reloaded after."""

    def __init__(self, root: str | Path, fingerprint: str = ""):
        self.root = Path(root)
        self.fingerprint = fingerprint

    def folder(self, key: str) -> Path:
        """Where stage `key` lives."""
        return self.root / key

    def get(self, key: str, make: Callable[[], Stage]) -> Stage:
        """The cached stage `key`, or `make()` saved under it."""
        folder = self.folder(key)
        if (folder / "stage.json").exists():
            return Stage.from_pretrained(folder, self.fingerprint)
        stage = make()
        if stage.key != key:
            raise ValueError(f"made stage {stage.key!r} for key {key!r}")
        stage.save_pretrained(folder, self.fingerprint)
        return stage
