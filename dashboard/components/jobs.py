"""Job progress that survives a page reload: read from the workspace, polled while a job runs."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from analysis import jobs
from analysis.workspace import Workspace

POLL_SECONDS = 1.0


def _is_running(job: jobs.JobStatus) -> bool:
    return job.state == jobs.RUNNING


def running_jobs(ws: Workspace) -> None:
    """Sidebar panel: a progress bar per running job; refreshes the page when the last one ends."""
    was_running = any(map(_is_running, jobs.list_jobs(ws)))

    @st.fragment(run_every=POLL_SECONDS if was_running else None)
    def panel() -> None:
        running = [j for j in jobs.list_jobs(ws) if _is_running(j)]
        if was_running and not running:
            st.rerun()  # a job ended: show its results everywhere on the page
        st.caption("Running jobs")
        if not running:
            st.caption("none")
        for job in running:
            st.progress(job.fraction, text=f"{job.kind} {job.job_id}: {job.message}")

    panel()


def scan_jobs(ws: Workspace, open_scan: Callable[[str], None], limit: int = 3) -> None:
    """The newest scan jobs: progress while running, then a link to the results or the error and log."""
    was_running = any(map(_is_running, jobs.list_jobs(ws, "scan")[:limit]))

    @st.fragment(run_every=POLL_SECONDS if was_running else None)
    def panel() -> None:
        recent = jobs.list_jobs(ws, "scan")[:limit]
        if was_running and not any(map(_is_running, recent)):
            st.rerun()  # finished: redraw the grid and tables with the new scan
        if not recent:
            st.caption("No scan job started from here yet.")
        for job in recent:
            if _is_running(job):
                st.progress(job.fraction, text=f"Scan job {job.job_id}: {job.message}")
            elif job.state == jobs.SUCCEEDED:
                scan_ids = job.result.get("scan_ids", [])
                st.success(f"Scan job {job.job_id} finished at {job.ended_at}: scan {', '.join(scan_ids)}")
                if scan_ids and st.button("Show its results", key=f"open-{job.job_id}",
                                          on_click=open_scan, args=(scan_ids[-1],)):
                    st.rerun()
            else:
                st.error(f"Scan job {job.job_id} failed: {job.error}")
                st.code(jobs.log_tail(ws, job.job_id) or "(the log is empty)", language=None)

    panel()
