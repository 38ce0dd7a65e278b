"""Jobs run as their own processes and report progress through the workspace."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from synthscope import tasks
from synthscope.compute import jobs
from synthscope.core.workspace import DatasetRef, Workspace


def test_scan_job_runs_to_completion_and_records_its_result(demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    job_id = tasks.start(ws, tasks.ScanTask(["humaneval"], ["code-instruct@v1"]))
    status = jobs.wait(ws, job_id, timeout=120)
    assert status.state == jobs.SUCCEEDED, jobs.log_tail(ws, job_id)
    rows = ws.manifest(DatasetRef("code-instruct", "v1"))["rows"]
    # One pass over the records per stage: exact, near-duplicate, semantic, and the chance scores' sample.
    assert status.fraction == 1.0 and status.done == status.total == 4 * rows
    (scan_id,) = status.result["scan_ids"]
    assert (ws.scans_dir / scan_id / "verdicts.parquet").exists()
    assert [j.job_id for j in jobs.list_jobs(ws, "scan")] == [job_id]
    assert "scan" in jobs.log_tail(ws, job_id)


def test_failing_job_reports_the_error(demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    job_id = tasks.start(ws, tasks.ScanTask(["humaneval"], ["no-such-set"]))
    status = jobs.wait(ws, job_id, timeout=120)
    assert status.state == jobs.FAILED
    assert "no dataset named 'no-such-set'" in (status.error or "")


def test_job_whose_process_died_is_reported_failed(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    job = jobs.JobStatus(job_id="dead", kind="scan", pid=proc.pid)
    (ws.jobs_dir / "dead").mkdir()
    jobs._write(ws, job)
    status = jobs.status(ws, "dead")
    assert status.state == jobs.FAILED and "ended without reporting" in (status.error or "")


def _job(ws: Workspace, job_id: str, pid: int) -> Path:
    (ws.jobs_dir / job_id).mkdir()
    jobs._write(ws, jobs.JobStatus(job_id=job_id, kind="scan", message="scanning", pid=pid))
    return ws.jobs_dir / job_id / "status.json"


def test_a_job_killed_with_sigkill_is_recorded_failed_in_its_status_file(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        path = _job(ws, "j1", proc.pid)
        assert jobs.status(ws, "j1").state == jobs.RUNNING  # alive: left as it is
        assert json.loads(path.read_text())["state"] == jobs.RUNNING
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    assert jobs.status(ws, "j1").state == jobs.FAILED
    written = json.loads(path.read_text())
    assert written["state"] == jobs.FAILED and "ended without reporting a result (killed?)" in written["error"]
    assert written["ended_at"] and written["message"] == "scanning"


def test_a_job_that_reported_just_before_it_ended_keeps_its_result(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.init(tmp_path / "ws")
    path = _job(ws, "j2", pid=123456)

    def ended_after_reporting(pid: int) -> bool:  # the job wrote its result between the read and this check
        jobs._write(ws, jobs.JobStatus(job_id="j2", kind="scan", state=jobs.SUCCEEDED, pid=pid))
        return False

    monkeypatch.setattr(jobs, "process_alive", ended_after_reporting)
    assert jobs.status(ws, "j2").state == jobs.SUCCEEDED
    assert json.loads(path.read_text())["state"] == jobs.SUCCEEDED
