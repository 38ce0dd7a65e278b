"""Where batch work runs: this machine's cores, or a Ray cluster.

Methods are written as functions of one *task* (a Parquet row group) returning a
small, picklable result, and hand them to an :class:`Engine`:

* :class:`LocalEngine` (the default) maps them over this machine's cores
  (``map``), or runs them in this process when they hold a model that already
  uses every core or the GPU (``map_model``);
* :class:`RayEngine` maps them over a Ray cluster with Ray Data: a dataset of
  row-group descriptors, ``map_batches`` with one row group per call, results
  streamed back as they finish. Workers read the row groups themselves: from
  the workspace's own files (one machine, or a shared file system), or, given
  ``inputs``, from where ``synthscope push`` published the workspace
  (``s3://...``), so the nodes of a cluster need no shared disk.

Methods never ask which engine runs them; both engines yield ``(task, result)``
pairs in no particular order, so a method must not depend on the order (the
exact stage sums per-item counts, the MinHash stage stores row positions, the
semantic stage sorts by task before building its index).
"""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from synthscope.core.base import WorkspaceError
from synthscope.core.storage import INDEX, SCHEME, Location, arrow_filesystem, clients, is_remote, read_index

R = TypeVar("R")
RAY_MISSING = "the Ray engine needs Ray: pip install 'synthscope[ray]' (or 'ray[data]' into this environment)"


@dataclass(frozen=True)
class RowGroup:
    """One unit of work: a row group of a Parquet file."""

    path: str
    index: int
    rows: int


def parquet_file(path: str | Path) -> pq.ParquetFile:
    """A Parquet file on this machine's disk, or an ``s3://`` URL read through :func:`storage.arrow_filesystem`."""
    if is_remote(path):
        return pq.ParquetFile(str(path).removeprefix(SCHEME), filesystem=arrow_filesystem())
    return pq.ParquetFile(path)


def row_groups(path: str | Path) -> list[RowGroup]:
    meta = parquet_file(path).metadata
    return [RowGroup(str(path), i, meta.row_group(i).num_rows) for i in range(meta.num_row_groups)]


def read_table(task: RowGroup, columns: list[str]) -> pa.Table:
    """The row group as an Arrow table (cheaper than Python lists when Arrow can do the work)."""
    return parquet_file(task.path).read_row_group(task.index, columns=columns)


def read_rows(tasks: list[RowGroup], rows: Any, columns: list[str]) -> list[pa.Table]:
    """The records at ``rows`` (sorted positions in the file that ``tasks`` cover, in order), one table per row
    group that holds any of them: a few records of a large file, without holding the rest."""
    import numpy as np

    rows = np.asarray(rows, dtype=np.int64)
    out, first = [], 0
    for task in tasks:
        here = rows[(rows >= first) & (rows < first + task.rows)] - first
        if len(here):
            out.append(read_table(task, columns).take(here))
        first += task.rows
    return out


def read_records(path: str | Path, record_ids: Iterable[str], columns: list[str]) -> pa.Table:
    """The records of ``path`` whose ``record_id`` is in ``record_ids``, in file order, read one row group at a
    time: memory follows the records kept, not the file (``pq.read_table(filters=...)`` pre-buffers every
    row group's columns first, so its peak grew with the corpus)."""
    import pyarrow.compute as pc

    wanted = pa.array(sorted(set(record_ids)), pa.string())
    file = parquet_file(path)
    read = list(dict.fromkeys(["record_id", *columns]))
    parts = []
    for group in range(file.num_row_groups):
        table = file.read_row_group(group, columns=read)
        kept = table.filter(pc.is_in(table.column("record_id"), value_set=wanted))
        if kept.num_rows:
            parts.append(kept.select(columns))
    if not parts:
        return file.schema_arrow.empty_table().select(columns)
    return pa.concat_tables(parts)


def read_row_group(task: RowGroup, columns: list[str]) -> dict[str, list[Any]]:
    table = read_table(task, columns)
    return {c: table.column(c).to_pylist() for c in columns}


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class Engine(Protocol):
    """Runs a function of one task over many tasks; yields ``(task, result)`` as they finish."""

    name: str

    def map(self, fn: Callable[[Any], R], tasks: Iterable[Any]) -> Iterator[tuple[Any, R]]:
        """CPU-bound work: spread over every core the engine has."""
        ...

    def map_model(self, fn: Callable[[Any], R], tasks: Iterable[Any]) -> Iterator[tuple[Any, R]]:
        """Work that holds a model (which loads once per process and uses several cores or a GPU)."""
        ...


_FN: Callable[[Any], Any] | None = None


class _PoolStart:
    """A process pool started from a thread, so that the caller can work meanwhile; ``ready`` gets it once up."""

    def __init__(self, processes: int, fn: Callable[[Any], Any], ready: Callable[[Any], None]) -> None:
        self._pool: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, args=(processes, fn, ready),
                                        name="synthscope-pool-start", daemon=True)
        self._thread.start()

    def _start(self, processes: int, fn: Callable[[Any], Any], ready: Callable[[Any], None]) -> None:
        try:
            self._pool = mp.get_context("forkserver").Pool(processes, initializer=_init, initargs=(fn,))
            ready(self._pool)
        except BaseException as exc:  # handed to the caller, which raises it
            self._error = exc

    def wait(self) -> None:
        """Wait until the pool has started; raise what stopped it from starting."""
        self._thread.join()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Stop the pool's processes (waiting for it to have started, so none is left behind)."""
        self._thread.join()
        if self._pool is not None:
            self._pool.terminate()


class _Feed:
    """The tasks of one map, shared by this process (from the front) and a pool's workers (from the back).

    Workers are handed tasks the moment their pool has started and again as each of their
    results comes back (from the pool's threads), up to ``ahead`` at a time, so a worker
    never waits for this process to finish a task of its own first.
    """

    def __init__(self, tasks: list[Any], ahead: int) -> None:
        self._pending = deque(tasks)
        self._ahead = ahead
        self._lock = threading.Lock()
        self._finished: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self._pool: Any = None
        self._handed = self._completed = self._received = 0
        self._stopped = False

    def attach(self, pool: Any) -> None:
        with self._lock:
            self._pool = pool
            self._hand_out()

    def _hand_out(self) -> None:  # with the lock held
        while (self._pool is not None and not self._stopped and self._pending
               and self._handed - self._completed < self._ahead):
            self._handed += 1
            self._pool.apply_async(_call, (self._pending.pop(),), callback=self._done, error_callback=self._failed)

    def _done(self, result: Any) -> None:
        with self._lock:
            self._completed += 1
            self._hand_out()  # before the result is seen: the caller never takes the feed for finished too soon
        self._finished.put((True, result))

    def _failed(self, error: BaseException) -> None:
        with self._lock:
            self._completed += 1
        self._finished.put((False, error))

    def take(self) -> Any:
        """The next task for this process, or None when every task is handed out."""
        with self._lock:
            return self._pending.popleft() if self._pending else None

    def results(self, wait: bool) -> Iterator[Any]:
        """The workers' results so far; with ``wait``, first wait for one (when any is still to come)."""
        while True:
            with self._lock:
                if self._received == self._handed:
                    return  # nothing out
            try:
                ok, result = self._finished.get(block=wait)
            except queue.Empty:
                return
            self._received += 1
            if not ok:
                raise result
            yield result
            wait = False

    def finished(self) -> bool:
        with self._lock:
            return not self._pending and self._received == self._handed

    def stop(self) -> None:
        """Hand out nothing more (the pool is about to stop)."""
        with self._lock:
            self._stopped = True


def _init(fn: Callable[[Any], Any]) -> None:
    global _FN
    _FN = fn


def _call(task: Any) -> tuple[Any, Any]:
    assert _FN is not None
    return task, _FN(task)


SCAN_MODULES = ("synthscope.contamination.scan", "synthscope.contamination.minhash")  # a scan's map functions


def start_fork_server(modules: Iterable[str] = SCAN_MODULES) -> None:
    """Start the fork server that :meth:`LocalEngine.map`'s workers come from, importing ``modules`` in it.

    Returns at once; the server imports in its own process while this one goes on. A map
    that begins once it is ready forks workers that already hold those modules, so they
    join within a few milliseconds instead of each importing pandas, pyarrow and the scan
    (about 0.6 s, most of the exact stage's start-up on two cores). ``synthscope scan``
    calls it before its own imports; :func:`~synthscope.contamination.scan.run_scan` on
    entry, when a dataset has more than one row group (one row group never reaches a worker),
    and it stops the server (:func:`stop_fork_server`) before the semantic stage. Only the
    first call in a process chooses the modules; later ones do nothing.
    """
    from multiprocessing import forkserver

    context = mp.get_context("forkserver")
    context.set_forkserver_preload(["__main__", *modules])  # __main__ is multiprocessing's own default
    forkserver.ensure_running()


def stop_fork_server() -> None:
    """Stop the fork server if one runs: past a scan's mapped stages its imports (about 140 MB) are dead weight.

    The next map starts it again, with the same modules. Uses multiprocessing's own ``_stop``
    (what its tests use); where a Python lacks it, the server stays up.
    """
    from multiprocessing import forkserver

    stop = getattr(forkserver._forkserver, "_stop", None)
    if stop is not None:
        stop()


@dataclass(frozen=True)
class LocalEngine:
    """This machine: ``workers`` processes (default: every core) for ``map``; this process for ``map_model``."""

    workers: int | None = None
    name: str = "local"

    def map(self, fn: Callable[[Any], R], tasks: Iterable[Any]) -> Iterator[tuple[Any, R]]:
        """``fn`` runs in this process and in ``workers - 1`` others, all taking tasks from one queue.

        This process starts on the first task at once, while the others start (from a fork
        server, so threads here do not leak into them; ``fn`` is sent to each once, and a
        ``functools.partial`` carrying an index is fine) and join in as they are ready: a
        pool's start-up no longer costs a short scan its second core. The pool is started
        from a thread because starting it blocks until each worker has read ``fn``, which
        means importing what ``fn`` needs (about 0.6 s for a scan: pandas, pyarrow, the
        engine; :func:`start_fork_server` does those imports ahead). That thread hands the
        workers their first tasks, and each result coming back hands out the next, keeping
        every worker two tasks ahead: no worker waits for this process to finish a task of
        its own before it gets one.
        """
        tasks = list(tasks)
        workers = min(self.workers or default_workers(), len(tasks))
        if workers <= 1:
            yield from self.map_model(fn, tasks)
            return
        feed = _Feed(tasks, ahead=2 * (workers - 1))
        starting = _PoolStart(workers - 1, fn, feed.attach)
        try:
            while (task := feed.take()) is not None:
                yield task, fn(task)
                yield from feed.results(wait=False)
            while not feed.finished():
                yield from feed.results(wait=True)
            starting.wait()  # a pool that could not start is an error even when this process did all the work
        finally:
            feed.stop()
            starting.close()

    def map_model(self, fn: Callable[[Any], R], tasks: Iterable[Any]) -> Iterator[tuple[Any, R]]:
        for task in tasks:
            yield task, fn(task)


class _RayCall:
    """``map_batches``' function: a batch of row-group descriptors in, their results out (as Python objects)."""

    def __init__(self, fn: Callable[[RowGroup], Any]) -> None:
        self.fn = fn

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        tasks = [RowGroup(str(p), int(i), int(r)) for p, i, r in zip(batch["path"], batch["index"], batch["rows"])]
        results = np.empty(len(tasks), dtype=object)
        results[:] = [self.fn(task) for task in tasks]
        return {"position": batch["position"], "result": results}


@dataclass(frozen=True)
class Inputs:
    """Where the workers read a workspace's record files: ``url``, a push of the workspace at ``root``."""

    root: str
    url: str

    def published(self, tasks: list[RowGroup]) -> list[RowGroup]:
        """``tasks`` as row groups of the published copies of their files.

        Raises :class:`WorkspaceError` for a file the latest push does not hold
        as it is here (never pushed, or changed since): the workers would read
        other records than this machine.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        loc = Location.parse(self.url)
        try:
            files = read_index(clients()[1], loc) or {}
        except (BotoCoreError, ClientError) as exc:
            raise WorkspaceError(f"cannot read {loc.url(INDEX)}: {exc}") from exc
        root, out, checked = Path(self.root).resolve(), [], set()
        for task in tasks:
            path = Path(task.path).resolve()
            try:
                relative = path.relative_to(root).as_posix()
            except ValueError:
                raise WorkspaceError(f"{task.path} is not in the workspace {root}, so it is not published at "
                                     f"{loc.url()}") from None
            if relative not in checked and files.get(relative) != path.stat().st_size:
                raise WorkspaceError(f"{loc.url()} does not hold {relative} as it is here; publish the workspace "
                                     f"first: synthscope push -w {root} {loc.url()}")
            checked.add(relative)
            out.append(RowGroup(loc.url(relative), task.index, task.rows))
        return out


@dataclass
class RayEngine:
    """A Ray cluster: ``address`` of a running one (``"auto"``, ``"ray://host:10001"``), or ``None`` to start
    a local one with ``num_cpus`` CPUs (default: every core). Tasks must be :class:`RowGroup` s.

    With ``inputs``, the workers read each row group from where ``synthscope
    push`` published the workspace, through the S3 configuration the driver
    has (the ``AWS_*`` variables travel to the workers with the job), instead
    of from the driver's disk. Everything else (indexes, verdicts) is still
    written by the driver, on its own workspace.

    Ray is imported and connected on first use, so a scan that never reaches a
    mapped stage costs nothing. Every worker needs synthscope importable (the
    same Python environment as the driver): true on one machine; on a cluster,
    install synthscope on every node.
    """

    address: str | None = None
    num_cpus: int | None = None
    inputs: Inputs | None = None
    name: str = "ray"

    def _connect(self) -> Any:
        # Offline by default: no usage statistics sent to Ray's servers, nor asked of a metrics server.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            import ray
        except ImportError as e:
            raise RuntimeError(RAY_MISSING) from e

        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "configure_logging": False}
            if self.inputs is not None:
                options["runtime_env"] = {"env_vars": {k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
            if self.address:
                ray.init(address=self.address, **options)
            else:
                ray.init(num_cpus=self.num_cpus, **options)
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
        return ray

    def map(self, fn: Callable[[RowGroup], R], tasks: Iterable[RowGroup]) -> Iterator[tuple[RowGroup, R]]:
        tasks = list(tasks)
        if not tasks:
            return
        shipped = self.inputs.published(tasks) if self.inputs is not None else tasks
        ray = self._connect()
        items = [{"position": n, "path": t.path, "index": t.index, "rows": t.rows} for n, t in enumerate(shipped)]
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            _RayCall(fn), batch_size=1, batch_format="numpy")
        for row in dataset.iter_rows():
            yield tasks[int(row["position"])], row["result"]

    def map_model(self, fn: Callable[[RowGroup], R], tasks: Iterable[RowGroup]) -> Iterator[tuple[RowGroup, R]]:
        return self.map(fn, tasks)  # each Ray worker process loads the model once and keeps it


def engine_from(name: str = "local", address: str | None = None, workers: int | None = None,
                inputs: str | None = None, root: Path | None = None) -> Engine:
    """The engine a user named (``synthscope scan --engine ray --address ADDR --workers N --inputs s3://...``);
    ``inputs`` is where the workspace at ``root`` was pushed."""
    if name == "local":
        if address or inputs:
            raise ValueError(f"{'--address' if address else '--inputs'} is for a Ray cluster; add --engine ray")
        return LocalEngine(workers)
    if name == "ray":
        if importlib.util.find_spec("ray") is None:
            raise ValueError(RAY_MISSING)
        mirror = None
        if inputs:
            if root is None or is_remote(root):
                raise ValueError("--inputs needs the local workspace that was pushed there")
            mirror = Inputs(str(root), Location.parse(inputs).url())
        return RayEngine(address, None if address else workers, mirror)
    raise ValueError(f"unknown engine {name!r}: choose local or ray")
