"""Shipped data: the paper's prompt lists (paper_prompts/, MIT, attribution in its README)."""

from __future__ import annotations

from pathlib import Path

PAPER_PROMPTS = Path(__file__).parent / "paper_prompts"


def paper_prompts_file(name: str) -> Path:
    """Path of one shipped prompt file, e.g. `things.txt` or `imagenette.csv`."""
    path = PAPER_PROMPTS / name
    if not path.is_file():
        known = sorted(p.name for p in PAPER_PROMPTS.iterdir() if p.suffix in {".txt", ".csv"})
        raise FileNotFoundError(f"{name}: no such shipped prompt file; known: {', '.join(known)}")
    return path


def read_list(name: str) -> tuple[str, ...]:
    """Non-empty stripped lines of a shipped list file (things.txt, humans.txt, common_scenes.txt)."""
    lines = paper_prompts_file(name).read_text(encoding="utf-8").splitlines()
    return tuple(s for s in (line.strip() for line in lines) if s)
