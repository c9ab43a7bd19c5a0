"""The common skeleton of every result.json: command, version, config, inputs (with sha256), checked on write."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import torch

from revival import __version__
from revival.checkpoints import atomic_write_json, sha256_file
from revival.errors import RevivalError

REQUIRED = ("command", "version", "config", "inputs")  # what every result.json starts with


def describe_input(path: str | Path) -> dict:
    """Path and sha256 of an input file, or of each weight file of an input folder."""
    p = Path(path)
    if p.is_file():
        return {"path": str(p), "sha256": sha256_file(p)}
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in {".safetensors", ".json", ".bin"})
        return {"path": str(p), "sha256": {str(f.relative_to(p)): sha256_file(f) for f in files}}
    return {"path": str(p)}


def base_result(command: str, config: dict, inputs: dict[str, str | Path | None]) -> dict:
    """Fields every artifact's JSON starts with."""
    return {
        "command": command,
        "version": __version__,
        "config": config,
        "inputs": {k: describe_input(v) for k, v in inputs.items() if v is not None},
        "environment": {"python": sys.version.split()[0], "torch": torch.__version__,
                        "platform": platform.platform(), "threads": torch.get_num_threads()},
    }


def write_result(result: dict, path: str | Path) -> None:
    """Check a result (an object with the common fields, strict JSON) and write it atomically to `path`."""
    missing = [k for k in REQUIRED if k not in result]
    if missing:
        raise RevivalError(f"{path}: the result lacks {', '.join(missing)}; not written")
    atomic_write_json(result, path)
