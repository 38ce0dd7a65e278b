"""The demo's second half, two steps at a time: each step in a process of its own.

The steps of the second half are independent but for two (calibration reuses what the
semantic scan embedded; the evaluations need the trained models), and each keeps one
core busy (torch with half the cores: :func:`synthscope.compute.device.cpu_threads`).
Run one after the other they leave the second core of a 2-core machine idle: the whole
demo took 644 s that way on a quiet machine (``bench/reports/first_run.md``).

:func:`run_steps` starts ``lanes`` worker processes (``spawn``: nothing shared with the
parent; each imports torch and loads a model once, for all the steps it runs) and hands
each free worker the first step, in the order given, whose prerequisite is done (longest
first keeps both lanes busy). What the workers say comes back through one queue as
:class:`Event` values. A step that fails stops the others: the workers are ended and
:class:`StepFailed` names the step and its error. The steps
write into the workspace as they do in one process; the parent alone writes the
demo's state file, from the events.

:class:`Overall` folds the events of steps running side by side into one progress
figure for the whole second half, which never goes back.

>>> overall = Overall(["a", "b"])
>>> overall.update(Event("progress", "a", done=1, total=2, message="half"))
(500, 2000, 'a: half')
>>> overall.update(Event("progress", "b", done=1, total=4, message="a quarter"))
(750, 2000, 'a: half · b: a quarter')
>>> overall.update(Event("done", "a", seconds=3.0))
(1250, 2000, 'b: a quarter')
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import queue as queues
import signal
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Progress = Callable[[int, int, str], None]
# The function a step's process calls, as "module:function"; it takes (workspace path, step name, progress).
STEP_RUNNER = "synthscope.demo.build:run_step"
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends
PROGRESS_EVERY = 0.25  # seconds between progress messages a step sends (its last one always goes)
# Thread pools besides torch's (OpenMP for FAISS, BLAS for numpy, Rayon for tokenizers) start one thread per
# core; in two workers side by side they spin against each other. Each worker gets its share of the cores.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")


@dataclass(frozen=True)
class Event:
    """What a step's process said: it ``start``-ed, made ``progress``, is ``done`` (after ``seconds``)."""

    kind: str
    step: str
    done: int = 0
    total: int = 0
    message: str = ""
    seconds: float = 0.0


class StepFailed(RuntimeError):
    """A step of the second half failed in its process; ``str()`` is the step and its error in one line."""

    def __init__(self, step: str, error: str) -> None:
        super().__init__(f"{step}: {error}")
        self.step, self.error = step, error


def run_steps(path: Path, steps: Sequence[str], on_event: Callable[[Event], None], *, lanes: int = 2,
              after: Mapping[str, str] | None = None, runner: str = STEP_RUNNER) -> None:
    """Run ``steps`` for the workspace at ``path`` in ``lanes`` worker processes, one step per worker at a time.

    ``after`` maps a step to the one it waits for (when that one is among ``steps``).
    ``on_event`` is called in this process for every start, progress and end.
    Raises :class:`StepFailed` for the first step that fails; the workers are stopped.
    """
    after = after or {}
    context = multiprocessing.get_context("spawn")
    tasks: Any = context.Queue()
    events: Any = context.Queue()
    count = max(1, min(lanes, len(steps)))
    threads = max(1, (os.cpu_count() or 1) // count)
    workers = [context.Process(target=_worker, args=(str(path), runner, tasks, events, threads),
                               name=f"synthscope-demo-{n}") for n in range(count)]
    with _bare_main():
        for worker in workers:  # a worker imports torch and loads a model once, for every step it runs
            worker.start()
    pending = list(steps)
    running: dict[str, int | None] = {}  # step -> the pid of the worker that took it (once it said so)
    finished = False
    try:
        while pending or running:
            for step in list(pending):
                if len(running) >= len(workers):
                    break
                if after.get(step) not in pending and after.get(step) not in running:
                    tasks.put(step)
                    running[step] = None
                    pending.remove(step)
                    on_event(Event("start", step))
            _relay(events, running, on_event, wait=0.2)
            for worker in workers:
                if worker.exitcode is not None:
                    _relay(events, running, on_event, wait=0)  # what it said before it ended
                    # the step it said it took; a worker killed at once may not have said (its queue is buffered)
                    lost = ([step for step, pid in running.items() if pid == worker.pid]
                            or [step for step, pid in running.items() if pid is None])
                    if lost or pending:
                        raise StepFailed(" or ".join(lost) or "a worker",
                                         f"its process ended with exit code {worker.exitcode}")
        finished = True
    finally:
        for _ in workers:
            tasks.put(None)  # idle workers leave; busy ones (after a failure) are ended below
        for worker in workers:
            if not finished:
                worker.terminate()
            worker.join(30 if finished else 10)
            if worker.exitcode is None:
                worker.kill()
                worker.join()
        for channel in (tasks, events):
            channel.close()
            channel.join_thread()


@contextmanager
def _bare_main() -> Iterator[None]:
    """Start workers with a bare ``__main__`` in place of this process's: they need nothing from it.

    A spawned process runs its parent's ``__main__`` script again unless it was run by module
    name: a script without a main guard, or a process where Streamlit's ``AppTest`` left the
    dashboard script as ``__main__``, would run again in every worker (and did, in the tests).
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _relay(events: Any, running: dict[str, int | None], on_event: Callable[[Event], None], wait: float) -> None:
    """Hand what the workers said to ``on_event``, waiting at most ``wait`` s for the first message."""
    try:
        message = events.get(timeout=wait) if wait > 0 else events.get_nowait()
        while True:
            kind, step, *rest = message
            if kind == "begin":
                running[step] = rest[0]
            elif kind == "progress":
                on_event(Event("progress", step, done=rest[0], total=rest[1], message=rest[2]))
            elif kind == "done":
                del running[step]
                on_event(Event("done", step, seconds=rest[0]))
            else:  # error
                failure = StepFailed(step, rest[0])
                failure.add_note(rest[1])
                raise failure
            message = events.get_nowait()
    except queues.Empty:
        pass


def _worker(path: str, runner: str, tasks: Any, events: Any, threads: int) -> None:
    """A worker process: run the steps it is handed until it gets None, relaying progress and the end of each.

    Before anything is imported, thread pools are limited to ``threads`` (where the user set none).
    """
    _end_with_parent()
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    module, _, function = runner.partition(":")
    run = getattr(importlib.import_module(module), function)
    try:
        while (step := tasks.get()) is not None:
            events.put(("begin", step, os.getpid()))
            started = time.perf_counter()
            try:
                run(Path(path), step, _progress(events, step))
            except Exception as exc:
                events.put(("error", step, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
                return
            events.put(("done", step, round(time.perf_counter() - started, 1)))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the parent says what stopped
        raise SystemExit(130) from None


def _end_with_parent() -> None:
    """On Linux, have the kernel end this worker when the process that started it ends, even by SIGKILL.

    Otherwise a killed job would leave its workers building steps that the next job builds again.
    (The kernel watches the thread that started the worker: :func:`run_steps` must not run in a
    thread that ends before it returns, which a call cannot do anyway.)
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = multiprocessing.parent_process()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent is not None and os.getppid() != parent.pid:  # it ended before the request was made
        os._exit(1)


def _progress(events: Any, step: str) -> Progress:
    """A step's progress report, sent at most every :data:`PROGRESS_EVERY` s (its last one always)."""
    last = 0.0

    def progress(done: int, total: int, message: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY or done >= total:
            last = now
            events.put(("progress", step, int(done), int(total), str(message)))

    return progress


class Overall:
    """The progress of steps run side by side as one figure: 1000 per step, each step's share never going back."""

    def __init__(self, steps: Sequence[str]) -> None:
        self.steps = list(steps)
        self.fraction: dict[str, float] = {}
        self.message: dict[str, str] = {}  # of the steps still running

    def update(self, event: Event) -> tuple[int, int, str]:
        """Fold ``event`` in; returns (done, total, message) for a progress report."""
        if event.kind == "progress" and event.total > 0:
            self.fraction[event.step] = max(self.fraction.get(event.step, 0.0), min(1.0, event.done / event.total))
            self.message[event.step] = event.message
        elif event.kind == "start":
            self.message[event.step] = "starting"
        elif event.kind == "done":
            self.fraction[event.step] = 1.0
            self.message.pop(event.step, None)
        done = int(1000 * sum(self.fraction.values()))
        return done, 1000 * len(self.steps), " · ".join(f"{s}: {m}" for s, m in self.message.items())
