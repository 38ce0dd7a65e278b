"""Where batch work runs.

Methods are written as functions of one *task* (a Parquet row group) returning a
small, picklable result. The local engine maps them over every core of this
machine; a cluster engine (Ray Data ``map_batches``) can take over at this seam
without the methods knowing.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

R = TypeVar("R")


@dataclass(frozen=True)
class RowGroup:
    """One unit of work: a row group of a Parquet file."""

    path: str
    index: int
    rows: int


def row_groups(path: Path) -> list[RowGroup]:
    meta = pq.ParquetFile(path).metadata
    return [RowGroup(str(path), i, meta.row_group(i).num_rows) for i in range(meta.num_row_groups)]


def read_table(task: RowGroup, columns: list[str]) -> pa.Table:
    """The row group as an Arrow table (cheaper than Python lists when Arrow can do the work)."""
    return pq.ParquetFile(task.path).read_row_group(task.index, columns=columns)


def read_row_group(task: RowGroup, columns: list[str]) -> dict[str, list[Any]]:
    table = read_table(task, columns)
    return {c: table.column(c).to_pylist() for c in columns}


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


_FN: Callable[[Any], Any] | None = None


def _init(fn: Callable[[Any], Any]) -> None:
    global _FN
    _FN = fn


def _call(task: Any) -> tuple[Any, Any]:
    assert _FN is not None
    return task, _FN(task)


def map_local(fn: Callable[[Any], R], tasks: Iterable[Any], workers: int | None = None) -> Iterable[tuple[Any, R]]:
    """Yield ``(task, fn(task))`` as tasks finish, on ``workers`` processes (default: every core).

    ``fn`` is sent to each worker once (a ``functools.partial`` carrying an index
    is fine); workers start from a fork server, so threads in this process do not
    leak into them.
    """
    tasks = list(tasks)
    workers = min(workers or default_workers(), len(tasks))
    if workers <= 1:
        for task in tasks:
            yield task, fn(task)
        return
    ctx = mp.get_context("forkserver")
    with ctx.Pool(workers, initializer=_init, initargs=(fn,)) as pool:
        yield from pool.imap_unordered(_call, tasks)
