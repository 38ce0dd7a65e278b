"""A progress bar on stderr for a task run in the foreground: the task's progress reports move it."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from synthscope.tasks import Console


class ProgressBar(Console):
    """A :class:`synthscope.tasks.Context` that draws one tqdm bar (``unit``: what ``done`` counts).

    A task that reports its stages apart (:meth:`stages`, a scan) gets one more bar per stage
    below it, each in the stage's own unit with its ETA; a finished stage's bar stays.

    On a terminal every report redraws. Elsewhere (a log file, a pipe) a bar is drawn when it
    appears, when it ends and at most once every ``interval`` seconds between: a scan's log
    stays a few kilobytes, where drawing every report wrote 14 KB per demo scan, enough for
    four scans to fill a 64 KB pipe that its reader only drains at the end.
    """

    def __init__(self, unit: str, interval: float | None = None) -> None:
        self.unit = unit
        self.interval = interval if interval is not None else (0.0 if sys.stderr.isatty() else 10.0)
        self._bar: Any = None
        self._stage_bars: dict[str, Any] = {}
        self._drawn: dict[str, float] = {}  # bar ("" for the overall one) -> when it was last drawn
        self._ended: set[str] = set()  # stages drawn as ended

    def __enter__(self) -> ProgressBar:
        from tqdm import tqdm

        self._bar = tqdm(total=1, unit=self.unit, unit_scale=True, file=sys.stderr, dynamic_ncols=True)
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in self._stage_bars.values():
            bar.close()
        self._bar.close()

    def _draw(self, key: str, bar: Any, ended: bool) -> None:
        now = time.monotonic()
        if ended or now - self._drawn.get(key, -math.inf) >= self.interval:
            bar.refresh()
            self._drawn[key] = now

    def stages(self, stages: list[dict[str, Any]]) -> None:
        from tqdm import tqdm

        for stage in stages:
            bar = self._stage_bars.get(stage["name"])
            if bar is None:
                bar = self._stage_bars[stage["name"]] = tqdm(
                    total=max(stage["total"], 1), unit=f" {stage['unit']}", unit_scale=False, file=sys.stderr,
                    dynamic_ncols=True, desc=f"  {stage['name']}",
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{unit} [{elapsed}<{remaining}]")
                self._drawn[stage["name"]] = time.monotonic()  # tqdm drew it as it made it
            ended = stage["done"] >= stage["total"]
            if ended and stage["name"] in self._ended:
                continue  # drawn as ended already: a finished stage keeps coming with the others
            bar.total = max(stage["total"], 1)
            bar.n = min(stage["done"], bar.total)
            self._draw(stage["name"], bar, ended)
            if ended:
                self._ended.add(stage["name"])

    def progress(self, done: int, total: int, message: str) -> None:
        self._bar.total = total
        self._bar.set_description(message, refresh=False)
        self._bar.n = done
        self._draw("", self._bar, done >= total)


class StepBars:
    """A multi-step build's report (:class:`synthscope.demo.build.Report`) on stderr: a line and a bar per step."""

    def __init__(self, disable: bool = False) -> None:
        self.disable = disable  # passed to tqdm, not left to it: TQDM_DISABLE may be set for the libraries only
        self._bar: Any = None
        self._started = 0.0

    def __enter__(self) -> StepBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _close(self) -> None:
        import time

        if self._bar is not None:
            self._bar.close()
            print(f"      done in {time.perf_counter() - self._started:.0f} s", file=sys.stderr, flush=True)
            self._bar = None

    def step(self, number: int, total: int, title: str) -> None:
        import time

        from tqdm import tqdm

        self._close()
        print(f"[{number}/{total}] {title}", file=sys.stderr, flush=True)
        self._started = time.perf_counter()
        self._bar = tqdm(total=1, file=sys.stderr, dynamic_ncols=True, leave=False, disable=self.disable,
                         bar_format="      {l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")

    def note(self, text: str) -> None:
        """A line of its own above the bar (a step run side by side started or ended)."""
        from tqdm import tqdm

        tqdm.write(f"      {text}", file=sys.stderr)

    def progress(self, done: int, total: int, message: str) -> None:
        if self._bar is None:
            return
        self._bar.total = max(total, 1)
        self._bar.n = min(done, self._bar.total)
        self._bar.set_description_str(message[:60], refresh=False)
        self._bar.refresh()
