"""`python -m revival` runs the command line."""

from revival.cli import main

raise SystemExit(main())
