"""Jobs run as their own processes and report progress through the workspace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from synthscope import tasks
from synthscope.compute import jobs
from synthscope.core.workspace import DatasetRef, Workspace


def test_scan_job_runs_to_completion_and_records_its_result(demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    job_id = tasks.start(ws, tasks.ScanTask(["humaneval"], ["code-instruct@v1"]))
    status = jobs.wait(ws, job_id, timeout=120)
    assert status.state == jobs.SUCCEEDED, jobs.log_tail(ws, job_id)
    rows = ws.manifest(DatasetRef("code-instruct", "v1"))["rows"]
    # One pass over the records per stage: exact, near-duplicate, semantic.
    assert status.fraction == 1.0 and status.done == status.total == 3 * rows
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
