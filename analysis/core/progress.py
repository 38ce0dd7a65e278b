"""Progress by stage: what each stage of a long task has done, in its own unit, and when it should end.

A scan reads the synthetic records once per stage, and each stage counts its own thing:
rows for the exact and near-duplicate stages, records for the semantic stage (read by
its first pass, then embedded by the model). :class:`Stages` keeps one :class:`Stage`
per stage, in the order they began, and hands each a report function. A stage's
``done`` never goes back (a report below it is ignored); its ETA is the time it has
taken so far scaled by what is left,

    eta = elapsed x (total - done) / done,

so it has none until it has done something, and 0 once done. ``publish`` (a job's
status file, a console's bars) gets every stage as a plain dict after each report.

>>> now = iter([0.0, 10.0, 10.0, 30.0]).__next__
>>> stages = Stages(clock=now)
>>> exact = stages.begin("exact n-grams", "rows", 400)      # clock 0
>>> exact(100, 400)                                         # clock 10: 100 rows in 10 s
>>> stages.stages[0].eta()
30.0
>>> exact(50, 400)                                          # late and out of order: ignored
>>> semantic = stages.begin("semantic", "records", 1000)    # clock 10
>>> semantic(1000, 1000)                                    # clock 30
>>> [(s["name"], s["done"], s["unit"], s["eta_s"]) for s in stages.as_dicts()]
[('exact n-grams', 100, 'rows', 30.0), ('semantic', 1000, 'records', 0.0)]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

StagesPublisher = Callable[[list[dict[str, Any]]], None]  # gets every stage as a dict after each report


@dataclass
class Stage:
    """One stage: its name, what it counts (``unit``), how far it got, and when (seconds on the board's clock)."""

    name: str
    unit: str
    total: int
    done: int = 0
    started: float = 0.0
    updated: float = 0.0  # when ``done`` last moved

    def eta(self) -> float | None:
        """Seconds left at the pace so far; None before the first unit is done."""
        if self.done >= self.total:
            return 0.0
        if self.done <= 0:
            return None
        return (self.updated - self.started) * (self.total - self.done) / self.done

    def as_dict(self) -> dict[str, Any]:
        eta = self.eta()
        return {"name": self.name, "unit": self.unit, "done": self.done, "total": self.total,
                "elapsed_s": round(self.updated - self.started, 1), "eta_s": None if eta is None else round(eta, 1)}


class Stages:
    """The stages of one task, in the order they began; ``publish`` gets them all after every report."""

    def __init__(self, publish: StagesPublisher | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.publish, self.clock = publish, clock
        self.stages: list[Stage] = []

    def begin(self, name: str, unit: str, total: int) -> StageHandle:
        """Start a stage of ``total`` ``unit`` s; returns its handle: ``handle(done, total=None)``, ``finish()``."""
        now = self.clock()
        stage = Stage(name, unit, max(int(total), 0), started=now, updated=now)
        self.stages.append(stage)
        self._publish()
        return StageHandle(self, stage)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.stages]

    def _publish(self) -> None:
        if self.publish is not None:
            self.publish(self.as_dicts())


class StageHandle:
    """Reports one stage's progress: ``handle(done, total=None)`` in its unit (a new total replaces the old one
    unless it is below what is done), ``finish()`` when it is whole. Counts that would go back are ignored."""

    def __init__(self, board: Stages, stage: Stage) -> None:
        self.board, self.stage = board, stage

    def __call__(self, done: int, total: int | None = None) -> None:
        stage = self.stage
        if total is not None and total >= stage.done:
            stage.total = int(total)
        done = min(int(done), stage.total)
        if done > stage.done:
            stage.done, stage.updated = done, self.board.clock()
        self.board._publish()

    def finish(self) -> None:
        self(self.stage.total)


def format_eta(seconds: float | None) -> str:
    """``"ETA 1:05"``; ``"ETA —"`` while unknown.

    >>> format_eta(65.2), format_eta(3725), format_eta(None)
    ('ETA 1:05', 'ETA 1:02:05', 'ETA —')
    """
    if seconds is None or not math.isfinite(seconds):
        return "ETA —"
    s = int(round(seconds))
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    return f"ETA {hours}:{minutes:02d}:{secs:02d}" if hours else f"ETA {minutes}:{secs:02d}"
