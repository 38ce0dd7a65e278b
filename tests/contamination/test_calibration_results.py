"""Calibrations as the Calibration page reads them, and starting one as a job."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from synthscope import tasks
from synthscope.compute import jobs
from synthscope.contamination import calibration_results as cal
from synthscope.contamination.cascade import STAGES
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError


@pytest.fixture(scope="module")
def demo(demo_workspace_template: Path) -> Workspace:
    return Workspace.open(demo_workspace_template)


def manifest(ws: Workspace, calibration_id: str) -> dict:
    return json.loads((ws.root / "calibrations" / calibration_id / "manifest.json").read_text())


def only_calibration(ws: Workspace) -> str:
    (calibration_id,) = cal.calibrations(ws)["calibration_id"]
    return calibration_id


def test_min_negatives_for_a_usable_fpr_estimate() -> None:
    assert cal.min_negatives(0.01) == 1000
    assert cal.min_negatives(0.05) == 200
    assert cal.min_negatives(0.003) == 3334


def test_the_demo_calibration_is_listed_and_flagged_as_coarse(demo: Workspace) -> None:
    listed = cal.calibrations(demo)
    (row,) = listed.itertuples()
    meta = manifest(demo, row.calibration_id)
    assert (row.positives, row.negatives, row.target_fpr) == (meta["positives"], meta["negatives"],
                                                              meta["target_fpr"])
    truth = pd.read_parquet(demo.root / "demo" / "planted_truth.parquet")
    assert row.positives == int(truth["must_flag"].sum())
    assert row.min_negatives == cal.min_negatives(row.target_fpr)
    assert row.coarse == (row.negatives < row.min_negatives)
    assert row.coarse  # the demo's few hundred negatives cannot pin down an FPR of 1%


def test_recommendations_in_cascade_order_with_where_to_set_them(demo: Workspace) -> None:
    calibration_id = only_calibration(demo)
    recs = cal.recommendations(demo, calibration_id)
    stages = manifest(demo, calibration_id)["stages"].split(",")
    assert list(recs["stage"]) == [s for s in STAGES if s in stages]
    assert (recs["fpr"].dropna() <= recs["target_fpr"]).all()
    assert recs.set_index("stage").loc["semantic", "setting"] == "[contamination.semantic] flag_at"
    snippet = tomllib.loads(cal.toml_snippet(recs))
    for rec in recs.dropna(subset=["threshold"]).itertuples():
        section, key = rec.setting.strip("[").split("] ")
        node = snippet
        for part in section.split("."):
            node = node[part]
        assert node[key] == pytest.approx(rec.threshold, abs=5e-4)


def test_toml_snippet_skips_a_stage_without_a_recommendation() -> None:
    recs = pd.DataFrame({"stage": ["exact", "semantic"], "threshold": [0.25, float("nan")],
                         "setting": ["[contamination.ngram] clean_below", "[contamination.semantic] flag_at"]})
    assert cal.toml_snippet(recs) == "[contamination.ngram]\nclean_below = 0.250"
    assert cal.toml_snippet(recs.iloc[1:]) == ""


def test_sweep_curves_are_long_form_and_thinned_keeping_both_ends(demo: Workspace) -> None:
    calibration_id = only_calibration(demo)
    sweep = demo.query("SELECT * FROM calibration_sweeps WHERE calibration_id = ?", [calibration_id])
    full = cal.sweep_curves(demo, calibration_id)
    assert set(full["metric"]) == {"recall", "precision", "fpr"}
    assert len(full) == 3 * len(sweep)
    semantic = sweep[sweep["stage"] == "semantic"].sort_values("threshold")
    assert len(semantic) > 60
    thin = cal.sweep_curves(demo, calibration_id, max_points=30)
    recall = thin[(thin["stage"] == "semantic") & (thin["metric"] == "recall")]
    assert 10 <= len(recall) <= 31
    assert recall["threshold"].iloc[0] == semantic["threshold"].iloc[0]
    assert recall["threshold"].iloc[-1] == semantic["threshold"].iloc[-1]
    exact = full[(full["stage"] == "exact") & (full["metric"] == "fpr")].merge(
        sweep[sweep["stage"] == "exact"], on="threshold")
    assert (exact["value"] == exact["fpr"]).all()


def test_score_distributions_hold_every_scored_pair(demo: Workspace) -> None:
    calibration_id = only_calibration(demo)
    meta = manifest(demo, calibration_id)
    hist = cal.score_distributions(demo, calibration_id, bins=10)
    pairs = pd.read_parquet(demo.root / "calibrations" / calibration_id / "pairs.parquet")
    assert list(dict.fromkeys(hist["stage"])) == meta["stages"].split(",")
    for (stage, label), group in hist.groupby(["stage", "label"]):
        assert len(group) == 10
        scored = pairs[pairs[f"{stage}_score"].notna() & (pairs["label"] == (label == "positive"))]
        assert group["pairs"].sum() == len(scored)
        assert group["share"].sum() == pytest.approx(1.0)
    semantic = hist[hist["stage"] == "semantic"]
    # positives score high, negatives low: the mean bin of the positives lies above the negatives'
    means = semantic.assign(mid=(semantic["bin_start"] + semantic["bin_end"]) / 2 * semantic["share"]) \
        .groupby("label")["mid"].sum()
    assert means["positive"] > means["negative"] + 0.2


def test_pairs_of_an_unknown_calibration_are_refused(demo: Workspace) -> None:
    with pytest.raises(ValueError, match="no calibration"):
        cal.score_distributions(demo, "../scans")


# -- starting a calibration ------------------------------------------------------------------


def test_start_calibration_job_checks_its_inputs(demo_ws: Path, tmp_path: Path) -> None:
    ws = Workspace.open(demo_ws)
    truth = ws.root / "demo" / "planted_truth.parquet"
    bench = DatasetRef("humaneval")
    with pytest.raises(ValueError, match="exactly one"):
        tasks.start_calibration(ws, bench)
    with pytest.raises(ValueError, match="exactly one"):
        tasks.start_calibration(ws, bench, positives=DatasetRef("code-instruct"), truth=truth)
    with pytest.raises(ValueError, match="between 0 and 1"):
        tasks.start_calibration(ws, bench, truth=truth, target_fpr=0)
    with pytest.raises(ValueError, match="at least 1"):
        tasks.start_calibration(ws, bench, truth=truth, negatives_per_item=0)
    with pytest.raises(ValueError, match="must include 'exact'"):
        tasks.start_calibration(ws, bench, truth=truth, stages=["semantic"])
    with pytest.raises(ValueError, match="no such file"):
        tasks.start_calibration(ws, bench, truth=tmp_path / "missing.parquet")
    bad = tmp_path / "bad.csv"
    bad.write_text("task_id,record_id\nHumanEval/1,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lacks the column"):
        tasks.start_calibration(ws, bench, truth=bad)
    with pytest.raises(WorkspaceError, match="no dataset named 'nope'"):
        tasks.start_calibration(ws, DatasetRef("nope"), truth=truth)
    assert jobs.list_jobs(ws) == []


def test_a_calibration_job_adds_a_calibration(demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    before = set(cal.calibrations(ws)["calibration_id"])
    job_id = tasks.start_calibration(ws, DatasetRef("humaneval"), truth=ws.root / "demo" / "planted_truth.parquet",
                                       target_fpr=0.05, negatives_per_item=2, stages=["near_duplicate", "exact"])
    recorded = json.loads((ws.jobs_dir / job_id / "job.json").read_text())
    assert recorded["kind"] == "calibrate" and recorded["params"]["benchmark"] == "humaneval@v1"
    assert recorded["params"]["overrides"] == {"stages": ["exact", "near_duplicate"]}  # cascade order
    status = jobs.wait(ws, job_id, timeout=180)
    assert status.state == jobs.SUCCEEDED, jobs.log_tail(ws, job_id)
    new_id = status.result["calibration_id"]
    listed = cal.calibrations(ws)
    assert new_id not in before and listed["calibration_id"].iloc[0] == new_id  # newest first
    row = listed.iloc[0]
    truth = pd.read_parquet(ws.root / "demo" / "planted_truth.parquet")
    assert row["target_fpr"] == 0.05 and row["stages"] == "exact,near_duplicate"
    assert row["negatives"] == (~truth["must_flag"]).sum() + 2 * len(truth)  # look-alikes + 2 shuffled per row
    assert list(cal.recommendations(ws, new_id)["stage"]) == ["exact", "near_duplicate"]
