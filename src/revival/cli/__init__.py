"""The `revival` command line: one module per subcommand, each exposing `register(subparsers)`.

A command module's `register` adds its subparser and sets `func(args) -> int`; it imports nothing
heavy (torch, diffusers, transformers are imported by `func`), so `--help` and argument errors
answer at once. Every failure is one line on stderr: RevivalError and argument errors exit 2,
Ctrl-C exits 130, running out of memory exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import sys
import threading

from revival import __version__
from revival.errors import RevivalError
from revival.outputs import release_claims
from revival.validate import shorten

MESSAGE_LIMIT = 1000  # characters of an error line; longer ones are cut


class UsageError(Exception):
    """A bad command line, as the one line to show (raised by the parsers instead of exiting)."""


def usage_error(prog: str, message: str) -> UsageError:
    """The one line of a bad command line, pointing at `prog --help`."""
    return UsageError(f"{prog}: error: {message} (see `{prog} --help`)")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block) pointing at --help, returned as exit code 2."""

    def error(self, message: str) -> None:
        raise usage_error(self.prog, message)

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but an unknown option is reported by the subcommand it was given to."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            command = getattr(parsed, "command", None)
            raise usage_error(f"{self.prog} {command}" if command else self.prog,
                              f"unrecognized arguments: {' '.join(extra)}")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every discovered subcommand."""
    parser = Parser(
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


def _interrupt(signum: int, frame) -> None:
    """Ctrl-C as KeyboardInterrupt, but held back while a module is being imported and re-delivered 50 ms later.

    An interrupt raised inside a C++ extension's import (torch) aborts the process instead of unwinding.
    """
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            threading.Timer(0.05, os.kill, (os.getpid(), signum)).start()
            return
        frame = frame.f_back
    raise KeyboardInterrupt


def _say(prog: str, text: str) -> None:
    print(f"{prog}: {shorten(' '.join(text.split()), MESSAGE_LIMIT)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    prog = "revival"
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _interrupt) if on_main else None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        prog = f"revival {args.command}"
        return int(args.func(args) or 0)
    except UsageError as e:
        print(shorten(" ".join(str(e).split()), MESSAGE_LIMIT), file=sys.stderr)
        return 2
    except RevivalError as e:
        _say(prog, f"error: {e}")
        return 2
    except KeyboardInterrupt:
        _say(prog, "interrupted")
        return 130
    except MemoryError:
        _say(prog, "error: out of memory; ask for fewer or smaller images, or a smaller --batch-size")
        return 1
    finally:
        release_claims()
        if on_main:
            signal.signal(signal.SIGINT, previous)


def entry() -> None:
    """Console entry point: `main`, then Ctrl-C ignored while the interpreter shuts down (the work is done and
    published; an interrupt in torch's exit hooks would otherwise print a traceback or change the exit code)."""
    code = main()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise SystemExit(code)
