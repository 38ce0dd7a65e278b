"""Jobs: long work (a scan, an eval, a generation) run as a process that outlives the page that started it.

A job is a folder ``jobs/<job_id>/`` holding ``job.json`` (what to run: a kind and its
parameters, see :mod:`synthscope.tasks`), ``status.json`` (rewritten atomically as it progresses) and ``log.txt`` (its
output). The dashboard starts a job with :func:`start` and reads
:func:`status`; reloading the page or closing the browser does not touch the
process. A job whose process died without finishing (killed, even with SIGKILL)
is failed: the first reader to see it writes that to its ``status.json``. A job
starting removes what ended processes left in the workspace
(:func:`synthscope.core.workspace.collect_garbage`).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from synthscope.core.base import utc_now
from synthscope.core.workspace import Workspace, atomic_write_json, collect_garbage, is_name, process_alive

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
DIED = "the job's process ended without reporting a result (killed?); see log.txt"


@dataclass
class JobStatus:
    job_id: str
    kind: str
    state: str = RUNNING
    done: int = 0
    total: int = 0
    message: str = ""
    started_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)
    ended_at: str | None = None
    pid: int | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)  # per stage: name, unit, done, total, eta_s, ...

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 0.0


RUNNER = "synthscope.tasks"  # ``python -m RUNNER WORKSPACE JOB_ID`` runs a recorded job (see synthscope.tasks)
NICENESS = 10  # a job's runner yields the CPU to the dashboard (bench/load_bench.py); its workers inherit it


def start(ws: Workspace, kind: str, params: dict[str, Any]) -> str:
    """Record a job (``kind`` and its ``params``, as data) and start its runner in its own session; the job id.

    Callers pass a typed spec through :func:`synthscope.tasks.start`; the runner turns the
    recorded ``params`` back into that spec and calls the engine.
    """
    ws.check_writable()
    job_id = ws.new_id()
    folder = ws.artefact_dir("jobs", job_id)
    folder.mkdir(parents=True)
    atomic_write_json(folder / "job.json", {"job_id": job_id, "kind": kind, "params": params, "created_at": utc_now()})
    _write(ws, JobStatus(job_id, kind, message="starting"))
    log = open(folder / "log.txt", "ab")  # noqa: SIM115 - handed to the child process
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", RUNNER, str(ws.root), job_id],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    finally:
        log.close()
    # A file of its own, so the parent never races the child's status writes.
    (folder / "pid").write_text(str(proc.pid), encoding="ascii")
    return job_id


def spec(ws: Workspace, job_id: str) -> dict[str, Any]:
    """What a job was started to do: ``job.json`` (``kind`` and ``params``; older jobs recorded an ``argv``)."""
    return json.loads((ws.jobs_dir / job_id / "job.json").read_text(encoding="utf-8"))


class Reporter:
    """Used inside the job process to publish progress, at most every ``interval`` seconds."""

    def __init__(self, ws: Workspace, job_id: str, interval: float = 0.5) -> None:
        self.ws, self.interval = ws, interval
        self.current = status(ws, job_id)
        self.current.pid = os.getpid()
        self._last = 0.0
        _write(ws, self.current)
        collect_garbage(ws)

    def progress(self, done: int, total: int, message: str) -> None:
        self.current.done, self.current.total, self.current.message = done, total, message
        self._publish(force=done >= total)

    def _publish(self, force: bool) -> None:
        """Write the status at most every ``interval`` seconds, and always when ``force`` (something finished)."""
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            self.current.updated_at = utc_now()
            _write(self.ws, self.current)

    def stages(self, stages: list[dict[str, Any]]) -> None:
        """Publish each stage's own progress (:class:`synthscope.core.progress.Stages`), as often as progress."""
        self.current.stages = stages
        self._publish(force=all(s["done"] >= s["total"] for s in stages))

    def note(self, result: dict[str, Any]) -> None:
        """Publish part of the result while still running (e.g. where the rows go)."""
        self.current.result.update(result)
        _write(self.ws, self.current)

    def cancelled(self) -> bool:
        """Whether someone asked this job to stop (:func:`request_cancel`)."""
        return (self.ws.artefact_dir("jobs", self.current.job_id) / "cancel").exists()

    def succeed(self, result: dict[str, Any]) -> None:
        self.current.state, self.current.result, self.current.message = SUCCEEDED, result, "done"
        self.current.ended_at = self.current.updated_at = utc_now()
        _write(self.ws, self.current)

    def fail(self, error: str) -> None:
        self.current.state, self.current.error = FAILED, error
        self.current.ended_at = self.current.updated_at = utc_now()
        _write(self.ws, self.current)


def status(ws: Workspace, job_id: str) -> JobStatus:
    job = _read(ws, job_id)
    if job.state == RUNNING and job.pid is not None and not process_alive(job.pid):
        job = _read(ws, job_id)  # again: it may have reported just before it ended, and now never will
        if job.state == RUNNING:
            job.state, job.error = FAILED, DIED
            job.ended_at = job.updated_at = utc_now()
            with contextlib.suppress(OSError):  # a folder this reader may not write: the answer stands
                _write(ws, job)
    return job


def _read(ws: Workspace, job_id: str) -> JobStatus:
    folder = ws.artefact_dir("jobs", job_id)
    job = JobStatus(**json.loads((folder / "status.json").read_text(encoding="utf-8")))
    pid_file = folder / "pid"
    if job.pid is None and pid_file.exists():
        job.pid = int(pid_file.read_text(encoding="ascii"))
    return job


def wait(ws: Workspace, job_id: str, timeout: float = 600, poll: float = 0.2) -> JobStatus:
    """Block until the job is no longer running (for scripts and notebooks); its final status."""
    deadline = time.monotonic() + timeout
    while True:
        current = status(ws, job_id)
        if current.state != RUNNING:
            return current
        if time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} still running after {timeout:.0f}s; log:\n{log_tail(ws, job_id)}")
        time.sleep(poll)


def list_jobs(ws: Workspace, kind: str | None = None) -> list[JobStatus]:
    """All jobs, newest first."""
    out = []
    for folder in sorted(ws.jobs_dir.glob("*/status.json"), reverse=True):
        if not is_name(folder.parent.name):
            continue  # not a folder a job made
        job = status(ws, folder.parent.name)
        if kind is None or job.kind == kind:
            out.append(job)
    return out


def request_cancel(ws: Workspace, job_id: str) -> None:
    """Ask a running job to stop at its next checkpoint (a job that supports it checks :meth:`Reporter.cancelled`)."""
    (ws.artefact_dir("jobs", job_id) / "cancel").touch()


def log_tail(ws: Workspace, job_id: str, lines: int = 20) -> str:
    path = ws.artefact_dir("jobs", job_id) / "log.txt"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _write(ws: Workspace, job: JobStatus) -> None:
    atomic_write_json(ws.artefact_dir("jobs", job.job_id) / "status.json", asdict(job))

