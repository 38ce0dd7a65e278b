"""Job progress that survives a page reload: read from the workspace, polled while a job runs.

Every session polls while a job runs, so the job list is read once per
``POLL_SECONDS`` for all of them (:func:`list_jobs`), not once per session: with
twenty sessions open, per-session reads every second kept the server too busy
to draw pages (``bench/load_bench.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from synthscope.compute import jobs
from synthscope.core.progress import format_eta
from synthscope.core.workspace import Workspace
from synthscope.dashboard.components.safe import md

POLL_SECONDS = 2.0


@st.cache_data(ttl=POLL_SECONDS / 2, show_spinner=False, max_entries=16)
def _list_jobs(root: str, folders_changed: int) -> list[jobs.JobStatus]:
    return jobs.list_jobs(Workspace(Path(root)))


def list_jobs(ws: Workspace, kind: str | None = None) -> list[jobs.JobStatus]:
    """The workspace's jobs, newest first, as read at most ``POLL_SECONDS / 2`` ago by any session.

    A job started since is seen at once: starting one adds a folder, which
    changes the jobs folder's modification time, part of the cache key.
    """
    if ws.read_only:
        return []  # a workspace on object storage publishes no jobs (synthscope.core.storage)
    changed = ws.jobs_dir.stat().st_mtime_ns if ws.jobs_dir.exists() else 0
    return [j for j in _list_jobs(str(ws.root), changed) if kind is None or j.kind == kind]


def _is_running(job: jobs.JobStatus) -> bool:
    return job.state == jobs.RUNNING


def running_jobs(ws: Workspace) -> None:
    """Sidebar panel: a progress bar per running job, as of this page run.

    It does not poll: a panel that reran itself every few seconds on every page
    of every session swamped the server with twenty sessions open while a scan
    ran (``bench/load_bench.py``). The page that started a job polls it
    (:func:`job_panel`); any other page shows its progress when next drawn.
    """
    running = [j for j in list_jobs(ws) if _is_running(j)]
    st.caption("Running jobs")
    if not running:
        st.caption("none")
    for job in running:
        st.progress(job.fraction, text=f"{md(job.kind)} {md(job.job_id)}: {md(job.message)}")


def job_panel(ws: Workspace, kind: str, title: str, finished: Callable[[jobs.JobStatus], str],
              open_result: Callable[[jobs.JobStatus], None] | None = None, open_label: str = "Show its results",
              limit: int = 3) -> None:
    """The newest jobs of ``kind``: progress while running, then ``finished(job)`` (and a button) or the error and log.

    ``title`` names the kind in messages ("Scan job ..."); ``finished`` says what a
    job made, as plain text (it is escaped here); ``open_result`` is the
    button's callback, given the finished job. The panel polls while a job runs
    and reruns the page when the last one ends, so the page shows its results.
    """
    was_running = any(map(_is_running, list_jobs(ws, kind)[:limit]))

    @st.fragment(run_every=POLL_SECONDS if was_running else None)
    def panel() -> None:
        recent = list_jobs(ws, kind)[:limit]
        if was_running and not any(map(_is_running, recent)):
            st.rerun()  # finished: redraw the page with the new results
        if not recent:
            st.caption(f"No {title.lower()} job started from here yet.")
        for job in recent:
            if _is_running(job):
                st.progress(job.fraction, text=f"{title} job {md(job.job_id)}: {md(job.message)}")
                stage_bars(job)
            elif job.state == jobs.SUCCEEDED:
                st.success(f"{title} job {md(job.job_id)} finished at {md(job.ended_at)}: {md(finished(job))}")
                if open_result is not None and job.result and st.button(
                        open_label, key=f"open-{job.job_id}", on_click=open_result, args=(job,)):
                    st.rerun()
            else:
                st.error(f"{title} job {md(job.job_id)} failed: {md(job.error)}")
                st.code(jobs.log_tail(ws, job.job_id) or "(the log is empty)", language=None)

    panel()


def stage_bars(job: jobs.JobStatus) -> None:
    """One bar per stage of a running job, in the stage's own unit, with its ETA (words, not only a bar).

    A status file is workspace data: a stage that is not what a job writes is left out, not drawn.
    """
    for stage in job.stages if isinstance(job.stages, list) else []:
        try:
            total = max(int(stage.get("total") or 0), 1)
            done = max(min(int(stage.get("done") or 0), total), 0)
            eta = None if stage.get("eta_s") is None else float(stage["eta_s"])
        except (AttributeError, TypeError, ValueError, OverflowError):
            continue
        state = "done" if done >= total else format_eta(eta)
        # the name holds dataset names (escaped); the counts, the unit and the ETA are this code's own words
        st.progress(done / total, text=f"{md(stage.get('name', ''))}: {done:,} / {total:,} "
                                       f"{md(stage.get('unit', ''))} · {state}")


def scan_jobs(ws: Workspace, open_scan: Callable[[str], None], limit: int = 3) -> None:
    """The newest scan jobs: progress while running, then a link to the results or the error and log."""
    def open_job(job: jobs.JobStatus) -> None:
        scan_ids = job.result.get("scan_ids", [])
        if scan_ids:
            open_scan(scan_ids[-1])

    job_panel(ws, "scan", "Scan", lambda job: f"scan {', '.join(job.result.get('scan_ids', []))}",
              open_job, "Show its results", limit)
