"""The banner every page shows while the demo's second half builds in the background."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path

from synthscope.compute import jobs
from synthscope.core.workspace import Workspace
from synthscope.demo.state import DemoState, write_state


def _running_demo_job(ws: Workspace) -> str:
    job = jobs.JobStatus(job_id="20261203-000000-000-demo", kind="demo", done=2500, total=6000,
                         message="step 3/6: training two tiny language models", pid=os.getpid())  # alive
    folder = ws.artefact_dir("jobs", job.job_id)
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps(dataclasses.asdict(job)), encoding="utf-8")
    return job.job_id


def test_every_page_says_what_is_ready_while_the_demo_job_runs(tmp_path: Path, open_app: Callable) -> None:
    ws = Workspace.init(tmp_path / "ws")
    job_id = _running_demo_job(ws)
    write_state(ws.root, DemoState(steps=["calibration", "scorecards", "models", "evaluations"],
                                   done=["calibration"], job=job_id))
    for page in (None, "app_pages/compare.py"):
        at = open_app(ws.root, page)
        assert not at.exception
        info = " ".join(i.value for i in at.info)
        assert "The demo is still being built in the background" in info
        assert r"Compare, Privacy, Quality \& Bias, Runs, Trends fill in as their steps finish" in info  # Markdown


def test_an_unfinished_demo_without_a_job_says_how_to_finish_it(tmp_path: Path, open_app: Callable) -> None:
    ws = Workspace.init(tmp_path / "ws")
    write_state(ws.root, DemoState(steps=["calibration", "scorecards"], done=["calibration"],
                                   error="scoring four versions of synthetic support tickets: KeyboardInterrupt: "))
    at = open_app(ws.root)
    warning = " ".join(w.value for w in at.warning)
    assert "The demo's second half is not finished" in warning and "KeyboardInterrupt" in warning
    assert "synthscope demo <this workspace> --resume" in warning


def test_a_complete_demo_or_another_workspace_shows_no_banner(tmp_path: Path, open_app: Callable) -> None:
    ws = Workspace.init(tmp_path / "ws")
    at = open_app(ws.root)
    assert not any("demo" in i.value for i in [*at.info, *at.warning])
    write_state(ws.root, DemoState(steps=["calibration"], done=["calibration"]))
    at = open_app(ws.root)
    assert not any("The demo" in i.value for i in [*at.info, *at.warning])
