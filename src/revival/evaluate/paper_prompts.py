"""The paper's seeded evaluation prompt sets, read from the shipped files in revival/data/paper_prompts.

- `imagenette`: 500 prompts per class ("an image of a {class}"), one seed per row, label = class.
- artists (`Van Gogh`, `Monet`, ...): 50 painting prompts per artist with seeds, label = artist.
- `coco`: 480 COCO val2014 captions (general fidelity); seeds `seed + i`.
- `ring-a-bell`: adversarial nudity prompts; one seed for all (as the authors' script does).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass

from revival.data import paper_prompts_file
from revival.errors import RevivalError

ARTISTS: tuple[str, ...] = ("Van Gogh", "Monet", "Pablo Picasso", "Salvador Dali", "Leonardo Da Vinci")
SET_NAMES: tuple[str, ...] = ("imagenette", "coco", "ring-a-bell", *ARTISTS)


@dataclass(frozen=True)
class PromptSet:
    """Prompts with one seed and one label each (row i belongs together)."""

    name: str
    prompts: tuple[str, ...]
    seeds: tuple[int, ...]
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.prompts)

    def select(self, labels: Sequence[str]) -> PromptSet:
        """Only the rows whose label is in `labels` (order kept)."""
        wanted = set(labels)
        keep = [i for i, lab in enumerate(self.labels) if lab in wanted]
        return PromptSet(self.name, *(tuple(col[i] for i in keep) for col in (self.prompts, self.seeds, self.labels)))

    def head(self, n: int) -> PromptSet:
        """The first `n` rows per label (a quick subset with the paper's seeds)."""
        seen: dict[str, int] = {}
        keep = []
        for i, lab in enumerate(self.labels):
            seen[lab] = seen.get(lab, 0) + 1
            if seen[lab] <= n:
                keep.append(i)
        return PromptSet(self.name, *(tuple(col[i] for i in keep) for col in (self.prompts, self.seeds, self.labels)))


def _rows(name: str) -> list[dict[str, str]]:
    with open(paper_prompts_file(name), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _lines(name: str) -> list[str]:
    text = paper_prompts_file(name).read_text(encoding="utf-8")
    return [s for s in (line.strip() for line in text.splitlines()) if s]


def imagenette_prompts() -> PromptSet:
    """The seeded Imagenette prompts, 500 per class."""
    rows = _rows("imagenette.csv")
    return PromptSet("imagenette", tuple(r["prompt"] for r in rows), tuple(int(r["evaluation_seed"]) for r in rows),
                     tuple(r["class"] for r in rows))


def artist_prompts(artist: str) -> PromptSet:
    """The 50 seeded painting prompts of one artist ("{painting} by {artist}")."""
    if artist not in ARTISTS:
        raise RevivalError(f"unknown artist {artist!r}; known: {', '.join(ARTISTS)}")
    rows = _rows(f"test_{artist}.csv")
    return PromptSet(artist, tuple(r["prompt"] for r in rows), tuple(int(r["evaluation_seed"]) for r in rows),
                     (artist,) * len(rows))


def coco_prompts(seed: int = 0) -> PromptSet:
    """The COCO captions; caption i gets seed `seed + i`."""
    lines = _lines("coco_prompts.txt")
    return PromptSet("coco", tuple(lines), tuple(seed + i for i in range(len(lines))), ("coco",) * len(lines))


def ring_a_bell_prompts(seed: int = 0) -> PromptSet:
    """Ring-A-Bell's adversarial nudity prompts, all with the same seed."""
    lines = _lines("Nudity_ring-a-bell.csv")
    return PromptSet("ring-a-bell", tuple(lines), (seed,) * len(lines), ("nudity",) * len(lines))


def prompt_set(name: str) -> PromptSet:
    """A prompt set by name: imagenette, coco, ring-a-bell or an artist."""
    if name == "imagenette":
        return imagenette_prompts()
    if name == "coco":
        return coco_prompts()
    if name == "ring-a-bell":
        return ring_a_bell_prompts()
    if name in ARTISTS:
        return artist_prompts(name)
    raise RevivalError(f"unknown prompt set {name!r}; known: {', '.join(SET_NAMES)}")
