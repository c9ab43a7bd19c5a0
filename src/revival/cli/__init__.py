"""The `revival` command line: one module per subcommand, each exposing `register(subparsers)`.

A command module's `register` adds its subparser and sets `func(args) -> int`. Library errors
(RevivalError) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from revival import __version__
from revival.errors import RevivalError


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="revival",
        description="Audit pruning-based concept unlearning: prune (ConceptPrune), revive (the data-free "
        "attack), obfuscate (defenses), evaluate, and the whole story with `revival demo`.",
    )
    parser.add_argument("--version", action="version", version=f"revival {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "register"):
            mod.register(sub)
    return parser


def _quiet_libraries() -> None:
    """Hide diffusers/transformers loading bars and warnings: our own progress bars and errors speak."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    for log in (dlog, tlog):
        log.disable_progress_bar()
        log.set_verbosity_error()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    _quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RevivalError as e:
        print(f"revival {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"revival {args.command}: interrupted", file=sys.stderr)
        return 130
