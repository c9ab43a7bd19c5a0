"""`python -m revival` runs the command line (Ctrl-C while it loads is one line and exit code 130, too)."""

import sys

try:
    from revival.cli import entry
except KeyboardInterrupt:
    print("revival: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

entry()
