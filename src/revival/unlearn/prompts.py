"""ConceptPrune's base-vs-target prompt pairs: the paper's three families, or pairs from a file.

Two filler worlds: `sd` uses the paper's lists shipped in revival/data/paper_prompts (12 scenes,
20 things, 18 person words); `mini` uses the mini world's scenes and objects, and its attribute
template ("a photo of a {object} in a {concept}", concept `cage`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from revival.catalog import FAMILY_NAMES
from revival.data import read_list
from revival.errors import RevivalError
from revival.mini import world
from revival.mini.pipeline import MiniPipeline
from revival.mini.tokenizer import UnknownWordError, check_prompt

WORLDS = ("sd", "mini")


@dataclass(frozen=True)
class PromptPairs:
    """Prompts without the concept (base) and with it (target); row i of each is a pair."""

    base: tuple[str, ...]
    target: tuple[str, ...]

    def as_dict(self) -> dict[str, list[str]]:
        """JSON-ready form."""
        return {"base": list(self.base), "target": list(self.target)}


@dataclass(frozen=True)
class Family:
    """Base template over `{filler}`; target template over `{filler}` and `{concept}`."""

    base: str
    target: str
    fillers: tuple[str, ...]


@cache
def families(world_name: str) -> dict[str, Family]:
    """The three families with the fillers of one world (`sd` or `mini`)."""
    if world_name == "sd":
        return {
            "object": Family("a {filler}", "a {concept} in a {filler}", read_list("common_scenes.txt")),
            "style": Family("a photo of a {filler}", "a {filler} in the style of {concept}",
                            read_list("things.txt")),
            "attribute": Family("a photo of a {filler}", "a photo of a {concept} {filler}", read_list("humans.txt")),
        }
    if world_name == "mini":
        return {
            "object": Family("a {filler}", "a {concept} in a {filler}", world.SCENES),
            "style": Family("a photo of a {filler}", "a {filler} in the style of {concept}", world.OBJECTS),
            "attribute": Family("a photo of a {filler}", "a photo of a {filler} in a {concept}", world.OBJECTS),
        }
    raise RevivalError(f"unknown prompt world {world_name!r}; known: {', '.join(WORLDS)}")


def world_of(pipe) -> str:
    """`mini` for the bundled mini pipeline (word-level vocabulary), `sd` for any other pipeline."""
    return "mini" if isinstance(pipe, MiniPipeline) else "sd"


def family_prompts(concept: str, family: str, world_name: str = "sd") -> PromptPairs:
    """Base and target prompts of `concept` under one family, e.g. object: "a road" vs "a church in a road"."""
    concept = " ".join(concept.split())
    if not concept:
        raise RevivalError("empty concept word")
    fams = families(world_name)
    if family not in fams:
        raise RevivalError(f"unknown prompt family {family!r}; known: {', '.join(FAMILY_NAMES)}")
    fam = fams[family]
    return PromptPairs(
        tuple(fam.base.format(filler=f) for f in fam.fillers),
        tuple(fam.target.format(filler=f, concept=concept) for f in fam.fillers),
    )


def read_prompt_pairs(path: str | Path) -> PromptPairs:
    """Pairs from a CSV or TSV file with a header naming `base` and `target` columns."""
    path = Path(path)
    if not path.is_file():
        raise RevivalError(f"{path}: no such prompt file")
    text = path.read_text(encoding="utf-8-sig")
    header = text.splitlines()[0] if text.strip() else ""
    delimiter = "\t" if path.suffix.lower() == ".tsv" or "\t" in header else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
    if "base" not in columns or "target" not in columns:
        raise RevivalError(f"{path}: needs a header with `base` and `target` columns, got {reader.fieldnames}")
    base, target = [], []
    for line, row in enumerate(reader, start=2):
        b = (row.get(columns["base"]) or "").strip()
        t = (row.get(columns["target"]) or "").strip()
        if not b or not t:
            raise RevivalError(f"{path}: line {line}: empty base or target prompt")
        base.append(b)
        target.append(t)
    if not base:
        raise RevivalError(f"{path}: no prompt pairs")
    return PromptPairs(tuple(base), tuple(target))


def check_vocabulary(tokenizer, prompts: PromptPairs) -> None:
    """RevivalError naming unknown words and listing the vocabulary (word-level mini tokenizer)."""
    for p in prompts.base + prompts.target:
        try:
            check_prompt(tokenizer, p)
        except UnknownWordError as e:
            raise RevivalError(str(e)) from None
