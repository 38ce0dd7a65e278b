"""A progress bar on stderr for a task run in the foreground: the task's progress reports move it."""

from __future__ import annotations

import sys
from typing import Any

from synthscope.tasks import Console


class ProgressBar(Console):
    """A :class:`synthscope.tasks.Context` that draws one tqdm bar (``unit``: what ``done`` counts)."""

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self._bar: Any = None

    def __enter__(self) -> ProgressBar:
        from tqdm import tqdm

        self._bar = tqdm(total=1, unit=self.unit, unit_scale=True, file=sys.stderr, dynamic_ncols=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()

    def progress(self, done: int, total: int, message: str) -> None:
        self._bar.total = total
        self._bar.set_description(message)
        self._bar.n = done
        self._bar.refresh()
