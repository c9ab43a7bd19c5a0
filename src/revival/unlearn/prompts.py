"""ConceptPrune's base-vs-target prompt pairs: the paper's three families, or pairs from a file.

Filler worlds: `sd` uses the paper's lists shipped in revival/data/paper_prompts (12 scenes,
20 things, 18 person words); `minisd` (`revival.worlds`) uses its world's scenes and objects, and
its attribute templates ("a photo of a {object} in a {concept}", concept `cage`; `striped`: "a
photo of a striped {object}").
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from revival.catalog import FAMILY_NAMES
from revival.data import read_list
from revival.errors import RevivalError
from revival.minisd.tokenizer import UnknownWordError, check_prompt
from revival.worlds import WORLDS, world


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
    """Base template over `{filler}`; target template over `{filler}` and `{concept}` (or a concept's own)."""

    base: str
    target: str
    fillers: tuple[str, ...]
    by_concept: tuple[tuple[str, str], ...] = ()  # (concept, target template over {filler}) where it differs

    def target_of(self, concept: str) -> str:
        """The target template of `concept`."""
        return dict(self.by_concept).get(concept, self.target)


@cache
def families(world_name: str) -> dict[str, Family]:
    """The three families with the fillers of one world (`sd` or `minisd`)."""
    if world_name == "sd":
        return {
            "object": Family("a {filler}", "a {concept} in a {filler}", read_list("common_scenes.txt")),
            "style": Family("a photo of a {filler}", "a {filler} in the style of {concept}",
                            read_list("things.txt")),
            "attribute": Family("a photo of a {filler}", "a photo of a {concept} {filler}", read_list("humans.txt")),
        }
    if world_name in WORLDS:
        w = world(world_name)
        return {
            "object": Family("a {filler}", "a {concept} in a {filler}", w.scenes),
            "style": Family("a photo of a {filler}", "a {filler} in the style of {concept}", w.objects),
            "attribute": Family("a photo of a {filler}", "a photo of a {filler} in a {concept}", w.objects,
                                tuple(w.prune_attribute_templates.items())),
        }
    raise RevivalError(f"unknown prompt world {world_name!r}; known: sd, {', '.join(WORLDS.names())}")


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
        tuple(fam.target_of(concept).format(filler=f, concept=concept) for f in fam.fillers),
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
    """RevivalError naming unknown words and listing the vocabulary (the bundled world's word-level tokenizer)."""
    for p in prompts.base + prompts.target:
        try:
            check_prompt(tokenizer, p)
        except UnknownWordError as e:
            raise RevivalError(str(e)) from None
