"""Progress by stage: counts that never go back, an ETA from the pace so far, and a scan that reports every stage."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

from synthscope.contamination.scan import config_from, run_scan
from synthscope.core import progress as progress_module
from synthscope.core.progress import Stages, format_eta
from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.datasets.ingest import ingest


def test_the_modules_examples_run() -> None:
    assert doctest.testmod(progress_module).failed == 0


def test_a_stage_never_goes_back_and_its_eta_follows_its_pace() -> None:
    ticks = iter(range(100)).__next__
    published: list[list[dict]] = []
    stages = Stages(published.append, clock=lambda: float(ticks()))
    stage = stages.begin("semantic", "records", 300)  # clock 0
    assert stages.stages[0].eta() is None  # nothing done: no pace yet
    stage(100)  # clock 1: 100 records a second
    assert stages.stages[0].eta() == 2.0
    stage(50)  # behind what is done: ignored, and the clock is not read
    stage(100, total=90)  # a total below what is done: ignored
    assert (stages.stages[0].done, stages.stages[0].total) == (100, 300)
    stage(150, total=200)  # a smaller, still possible total: the ETA follows
    stage.finish()
    assert [(p[0]["done"], p[0]["total"]) for p in published] == [
        (0, 300), (100, 300), (100, 300), (100, 300), (150, 200), (200, 200)]
    assert published[-1][0]["eta_s"] == 0.0
    assert format_eta(59.6) == "ETA 1:00"


def _small_workspace(tmp_path: Path) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    rows = {"bench": [{"prompt": f"What is the capital of country number {i} in the atlas?", "answer": f"City {i}"}
                      for i in range(5)],
            "syn": [{"prompt": f"Tell me a story about a dragon and a knight, part {i}.", "answer": "Once."}
                    for i in range(30)],
            "small": [{"prompt": f"Name a colour that starts with letter {i}.", "answer": "Red."} for i in range(7)]}
    for name, kind in (("bench", "benchmark"), ("syn", "synthetic"), ("small", "synthetic")):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in rows[name]), encoding="utf-8")
        ingest(ws, path, name=name, kind=kind)
    return ws


def test_a_scan_reports_each_stage_in_its_own_unit_until_done(tmp_path: Path) -> None:
    ws = _small_workspace(tmp_path)
    published: list[list[dict]] = []
    config = config_from(ws, {"stages": ["exact", "near_duplicate", "semantic"]})
    overall: list[float] = []
    run_scan(ws, DatasetRef("bench"), [DatasetRef("syn"), DatasetRef("small")], config, workers=1,
             stages=published.append, progress=lambda done, total, message: overall.append(done / total))
    # The whole scan's bar never goes back either, nor past its end, over two datasets of different sizes.
    assert overall == sorted(overall) and overall[-1] == 1.0
    final = published[-1]
    assert [(s["name"], s["unit"], s["total"]) for s in final] == [
        ("exact n-grams: syn@v1", "rows", 30), ("near-duplicates: syn@v1", "rows × 3 passes", 90),
        ("embeddings: syn@v1", "records", 30), ("chance scores: syn@v1", "sampled records", 30),
        ("exact n-grams: small@v1", "rows", 7), ("near-duplicates: small@v1", "rows × 3 passes", 21),
        ("embeddings: small@v1", "records", 7), ("chance scores: small@v1", "sampled records", 7)]
    assert all(s["done"] == s["total"] and s["eta_s"] == 0.0 for s in final)
    for number in range(8):  # every stage's count only ever rose
        counts = [p[number]["done"] for p in published if len(p) > number]
        assert counts == sorted(counts)


def test_a_scan_job_publishes_its_stages_in_its_status(tmp_path: Path) -> None:
    from synthscope import tasks
    from synthscope.compute import jobs

    ws = _small_workspace(tmp_path)
    job_id = tasks.start(ws, tasks.ScanTask(["bench"], ["syn"], {"stages": ["exact", "near_duplicate"]}, workers=1))
    done = jobs.wait(ws, job_id, timeout=300)
    assert done.state == jobs.SUCCEEDED, jobs.log_tail(ws, job_id)
    assert [(s["name"], s["unit"], s["done"], s["total"]) for s in done.stages] == [
        ("exact n-grams: syn@v1", "rows", 30, 30), ("near-duplicates: syn@v1", "rows × 3 passes", 90, 90)]
