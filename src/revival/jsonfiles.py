"""JSON in and out: every file read gives a one-line error naming it; every file written is strict JSON.

Inputs (config.json, model_index.json, run files, result.json) are checked to parse and to hold
the expected kind of value. Outputs never contain NaN or Infinity (which `json` would write as
bare words no other parser reads): such a value is an error naming the file and the key.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from revival.errors import RevivalError


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def read_json(path: str | Path, expect: type = dict):
    """The parsed content of JSON file `path`, which must be of type `expect` (dict: a JSON object)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RevivalError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RevivalError(f"{path}: cannot be read ({getattr(e, 'strerror', None) or e})") from None
    if not text.strip():
        raise RevivalError(f"{path}: is empty (expected JSON)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RevivalError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise RevivalError(f"{path}: not readable JSON (nested too deeply)") from None
    if not isinstance(data, expect):
        raise RevivalError(f"{path}: expected {_kind(expect())} in JSON, got {_kind(data)}")
    return data


def _non_finite(value: object, where: str = "") -> str | None:
    """The key path of the first NaN or infinite number inside `value`, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "the value"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list | tuple) else ()
    for k, v in items:
        found = _non_finite(v, f"{where}.{k}" if where else str(k))
        if found:
            return found
    return None


def dumps_strict(obj: object, target: str | Path) -> str:
    """Pretty, strict JSON of `obj` for file `target` (paths and other objects as strings)."""
    try:
        return json.dumps(obj, indent=2, default=str, allow_nan=False) + "\n"
    except ValueError:
        raise RevivalError(f"{target}: {_non_finite(obj)} is not a finite number; results are written as strict "
                           "JSON (no NaN or Infinity)") from None
