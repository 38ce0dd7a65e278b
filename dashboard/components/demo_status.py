"""While the demo's second half builds in the background, every page says so and what is still coming.

``make run`` opens the dashboard once the demo's datasets and their scan exist
(:mod:`synthscope.demo.build`); calibration, scorecards, the tiny models and their
evaluations follow as a job. This banner follows that job until it ends, then redraws
the page with the new data. A workspace that is not a demo, or a complete demo, shows
nothing.
"""

from __future__ import annotations

import streamlit as st

from synthscope.compute import jobs
from synthscope.core.workspace import Workspace
from synthscope.dashboard.components.jobs import list_jobs
from synthscope.dashboard.components.safe import md
from synthscope.demo.state import DemoState, read_state

POLL_SECONDS = 3.0
WAITING = {  # the pages each step of the second half fills
    "semantic": ("Contamination (rephrasings)",),
    "calibration": ("Calibration",),
    "scorecards": ("Quality & Bias", "Privacy", "Trends"),
    "models": ("Runs", "Compare"),
    "evaluations": ("Runs", "Compare"),
}


def _state(ws: Workspace) -> DemoState | None:
    if ws.read_only:
        return None
    try:
        return read_state(ws.root)
    except (OSError, ValueError, TypeError):
        return None


def _job(ws: Workspace, state: DemoState) -> jobs.JobStatus | None:
    return next((j for j in list_jobs(ws, "demo") if j.job_id == state.job), None)


def demo_banner(ws: Workspace) -> None:
    """A progress banner at the top of every page while the demo is incomplete; nothing otherwise."""
    state = _state(ws)
    if state is None or state.complete:
        return
    job = _job(ws, state)
    building = job is not None and job.state == jobs.RUNNING

    @st.fragment(run_every=POLL_SECONDS if building else None)
    def banner() -> None:
        now = _state(ws)
        if now is None or now.complete:
            st.rerun()  # the last step finished: draw the page with everything
        current = _job(ws, now)
        pages = sorted({p for step in now.pending for p in WAITING.get(step, ())})
        waiting = ", ".join(pages)
        if current is not None and current.state == jobs.RUNNING:
            st.info(f"The demo is still being built in the background: the Datasets page and the copies on the "
                    f"Contamination page are ready; {md(waiting)} fill in as their steps finish.")
            st.progress(current.fraction, text=md(current.message or "starting"))
        else:
            why = f" ({md(now.error)})" if now.error else ""
            st.warning(f"The demo's second half is not finished{why}: {md(waiting)} have no data yet. Finish it "
                       "with `make run`, or `synthscope demo <this workspace> --resume`.")

    banner()
