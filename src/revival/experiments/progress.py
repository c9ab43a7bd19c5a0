"""Counting and timing the units of work of a run, for progress bars and `timings_s`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Progress = Callable[[int, int, str], None]  # (steps done, steps planned, label of the step starting)


class StepClock:
    """Counts and times the units of work of a run; `progress(done, planned, label)` hears each start."""

    def __init__(self, progress: Progress | None = None):
        self.progress = progress or (lambda done, total, label: None)
        self.planned = 0
        self.done = 0
        self.timings_s: dict[str, float] = {}

    def plan(self, steps: int) -> None:
        """Add `steps` units of work to the plan."""
        self.planned += steps

    @contextmanager
    def step(self, label: str, stage: str) -> Iterator[None]:
        """One unit of work; its wall time is added to `timings_s[stage]`."""
        self.progress(self.done, max(self.planned, self.done + 1), label)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings_s[stage] = round(self.timings_s.get(stage, 0.0) + time.perf_counter() - t0, 3)
            self.done += 1

    def finish(self) -> None:
        """Tell the progress callback that everything is done."""
        self.progress(self.done, self.done, "done")
