"""Option values checked where they are parsed: finite numbers in range, bounded text, device names, parameters.

The `argparse` types here raise `ArgumentTypeError`, which the parser turns into one line naming
the option; they import nothing heavy, so a bad value is refused before torch is loaded.
`check_kwargs` checks KEY=VALUE parameters against the signature of the function they go to.
"""

from __future__ import annotations

import argparse
import inspect
import math
import re
import types
from collections.abc import Callable, Iterable, Mapping

from revival.errors import RevivalError

SEED_LIMIT = 2**63  # torch generators take any non-negative seed below 2**64; numpy's below 2**128
DEVICE_PATTERN = re.compile(r"(cpu|cuda|mps|xpu)(:\d+)?")


def shorten(text: str, limit: int = 80) -> str:
    """`text` cut to at most `limit` characters, with the length of the cut part shown."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 30]}... ({len(text)} characters)"


def _parse(text: str, kind: type) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {shorten(text)!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {shorten(text)!r}")
    return value


def _bounds(lo, hi, lo_open: bool, hi_open: bool) -> str:
    if hi is None:
        return f"{'>' if lo_open else '>='} {lo}"
    if lo is None:
        return f"{'<' if hi_open else '<='} {hi}"
    return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def _ranged(kind: type, lo, hi, lo_open: bool, hi_open: bool, name: str | None) -> Callable[[str], int | float]:
    what = "an integer" if kind is int else "a number"
    subject = f"{name} " if name else ""

    def check(text: str) -> int | float:
        value = _parse(text, kind)
        below = lo is not None and (value <= lo if lo_open else value < lo)
        above = hi is not None and (value >= hi if hi_open else value > hi)
        if below or above:
            raise argparse.ArgumentTypeError(f"{subject}must be {what} {_bounds(lo, hi, lo_open, hi_open)}, got {text}")
        return value

    check.__name__ = kind.__name__
    return check


def integer(lo: int | None = 1, hi: int | None = None, name: str | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [lo, hi]; `name` is the setting it becomes, for the message."""
    return _ranged(int, lo, hi, False, False, name)


def number(lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False,
           name: str | None = None) -> Callable[[str], float]:
    """An argparse type: a finite number between lo and hi (bounds open or closed); `name` as for `integer`."""
    return _ranged(float, lo, hi, lo_open, hi_open, name)


def seed(text: str) -> int:
    """An argparse type: a seed, an integer in [0, 2**63)."""
    value = _parse(text, int)
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0 and below 2**63, got {shorten(text)}")
    return value


positive_int = integer(1)
ratio = number(0, 1, lo_open=True, hi_open=True)


def text(limit: int) -> Callable[[str], str]:
    """An argparse type: non-empty text of at most `limit` characters."""

    def check(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError("must not be empty")
        if len(value) > limit:
            raise argparse.ArgumentTypeError(f"too long ({len(value)} characters; at most {limit})")
        return value

    check.__name__ = "text"
    return check


def device_name(value: str) -> str:
    """An argparse type: a torch device name (cpu, cuda, cuda:N, mps, xpu); availability is checked later."""
    if not DEVICE_PATTERN.fullmatch(value):
        raise argparse.ArgumentTypeError(f"unknown device {shorten(value)!r}; use cpu, cuda, cuda:N, mps or xpu")
    return value


def resolve_device(name: str | None) -> str:
    """The device to run on (`None`: cuda when available, else cpu); a one-line error when it is not available."""
    import torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RevivalError(f"--device {name}: CUDA is not available here (torch {torch.__version__}, "
                               f"{'no GPU found' if torch.version.cuda else 'a build without CUDA'}); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RevivalError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RevivalError(f"--device {name}: MPS is not available here; use --device cpu")
    if dev.type == "xpu" and not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        raise RevivalError(f"--device {name}: XPU is not available here; use --device cpu")
    return name


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "None": (type(None),)}
_TYPE_WORDS = {int: "an integer", float: "a number", str: "text", bool: "true or false", type(None): "null"}


def _accepted_types(param: inspect.Parameter) -> tuple[type, ...] | None:
    """Python types a parameter takes, from its annotation (e.g. 'float | None') or else its default."""
    ann = param.annotation
    if isinstance(ann, type | types.UnionType) or ann is None:
        ann = " | ".join("None" if t in (None, type(None)) else getattr(t, "__name__", "?")
                         for t in (ann.__args__ if isinstance(ann, types.UnionType) else (ann,)))
    if isinstance(ann, str):
        parts = [p.strip() for p in ann.split("|")]
        if all(p in _TYPES for p in parts):
            return tuple(t for p in parts for t in _TYPES[p])
        return None
    if param.default is not inspect.Parameter.empty and param.default is not None:
        return (int, float) if type(param.default) is float else (type(param.default),)
    return None


def _fits(value: object, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, types)


def check_kwargs(fn: Callable, params: Mapping[str, object], what: str, skip: Iterable[str] = ()) -> None:
    """One-line error when `params` name a keyword `fn` does not take, or give a value of the wrong type.

    The keywords offered are those with a default (and not in `skip`); types come from the
    annotations (int, float, str, bool, None and unions of them) or the default's type. When `fn`
    takes **kwargs, unknown names are left to it.
    """
    sig = inspect.signature(fn).parameters
    skip = set(skip)
    offered = {n: p for n, p in sig.items() if p.default is not p.empty and n not in skip
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    open_ended = any(p.kind is p.VAR_KEYWORD for p in sig.values())
    unknown = sorted(k for k in params if k not in offered)
    if unknown and not open_ended:
        raise RevivalError(f"{what} takes no parameter {', '.join(map(shorten, unknown))}; "
                           f"its parameters: {', '.join(offered) or 'none'}")
    for key, value in params.items():
        types = _accepted_types(offered[key]) if key in offered else None
        if types is not None and not _fits(value, types):
            words = " or ".join(dict.fromkeys(_TYPE_WORDS[t] for t in types if not (t is int and float in types)))
            raise RevivalError(f"{what}: {key} must be {words}, got {shorten(repr(value))}")
