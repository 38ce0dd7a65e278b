"""Calibrations as the Calibration page reads them, and starting one as a job."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthscope import tasks
from synthscope.compute import jobs
from synthscope.contamination import calibration_results as cal
from synthscope.contamination.calibrate import min_negative_items
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


def test_the_demo_calibration_is_listed_with_what_backs_it(demo: Workspace) -> None:
    listed = cal.calibrations(demo)
    (row,) = listed.itertuples()
    meta = manifest(demo, row.calibration_id)
    assert (row.positives, row.negatives, row.target_fpr) == (meta["positives"], meta["negatives"],
                                                              meta["target_fpr"])
    truth = pd.read_parquet(demo.root / "demo" / "planted_truth.parquet")
    assert row.positives == int(truth["must_flag"].sum())
    # every HumanEval item against every other item and every planted row it is not the twin of
    assert row.negatives == meta["negative_items"] == 164 and row.benchmark == "humaneval@v1"
    assert row.negative_pairs == 164 * (164 + len(truth)) - 164 - row.positives
    assert row.min_negative_items == min_negative_items(row.target_fpr) == 60  # the demo calibrates for 5 %
    assert not row.coarse


def test_recommendations_in_cascade_order_with_where_to_set_them(demo: Workspace) -> None:
    calibration_id = only_calibration(demo)
    recs = cal.recommendations(demo, calibration_id)
    stages = manifest(demo, calibration_id)["stages"].split(",")
    assert list(recs["stage"]) == [s for s in STAGES if s in stages]
    assert (recs["item_fpr"].dropna() <= recs["target_fpr"]).all()
    assert (recs["status"] == "recommended").all()  # 164 items back 5 %
    assert recs.set_index("stage").loc["semantic", "setting"] == "[contamination.semantic] likely_at"
    snippet = tomllib.loads(cal.toml_snippet(recs))
    for rec in recs.dropna(subset=["threshold"]).itertuples():
        section, key = rec.setting.strip("[").split("] ")
        node = snippet
        for part in section.split("."):
            node = node[part]
        assert node[key] == pytest.approx(rec.threshold, abs=5e-4)
        assert rec.threshold >= rec.floor


def test_toml_snippet_skips_a_refused_stage() -> None:
    recs = pd.DataFrame({"stage": ["exact", "semantic"], "status": ["recommended", "refused"],
                         "toml": ["[contamination.ngram]\nclean_below = 0.250", None]})
    assert cal.toml_snippet(recs) == "[contamination.ngram]\nclean_below = 0.250"
    assert cal.toml_snippet(recs.iloc[1:]) == ""


def test_the_fpr_curve_is_what_another_module_reads(demo: Workspace) -> None:
    calibration_id = only_calibration(demo)
    curve = cal.fpr_curve(demo, calibration_id, "semantic")
    rec = cal.recommendations(demo, calibration_id).set_index("stage").loc["semantic"]
    assert curve.negative_pairs == rec["negative_pairs"] and curve.negative_items == rec["negative_items"] == 164
    assert curve.item_fpr(rec["threshold"]) >= rec["item_fpr"]  # the grid reads at or below: an upper bound
    assert curve.pair_fpr(rec["threshold"]) == pytest.approx(rec["pair_fpr"])
    assert curve.pair_fpr(rec["threshold"]) < curve.item_fpr(rec["threshold"])  # a scan compares many pairs
    t = np.array([0.5, 0.67, 0.8, 0.9])
    assert (np.diff(curve.pair_fpr(t)) <= 0).all() and (np.diff(curve.recall(t)) <= 0).all()
    assert curve.expected_false_flags(0.67, 3000) == pytest.approx(3000 * curve.pair_fpr(0.67))
    assert cal.latest_calibration(demo, "semantic", "humaneval@v1") == calibration_id
    with pytest.raises(ValueError, match="no FPR curve of the judged stage"):
        cal.fpr_curve(demo, calibration_id, "judged")


def test_sweep_curves_are_long_form_and_thinned_keeping_both_ends(demo: Workspace) -> None:
    calibration_id = only_calibration(demo)
    sweep = demo.query("SELECT * FROM calibration_sweeps WHERE calibration_id = ?", [calibration_id])
    full = cal.sweep_curves(demo, calibration_id, max_points=10_000)
    assert set(full["metric"]) == {"recall", "precision", "item_fpr", "pair_fpr"}
    assert (full["metric"] != "pair_fpr").sum() == 3 * len(sweep)
    semantic = sweep[sweep["stage"] == "semantic"].sort_values("threshold")
    assert len(semantic) > 60
    thin = cal.sweep_curves(demo, calibration_id, max_points=30)
    recall = thin[(thin["stage"] == "semantic") & (thin["metric"] == "recall")]
    assert 10 <= len(recall) <= 31
    assert recall["threshold"].iloc[0] == semantic["threshold"].iloc[0]
    assert recall["threshold"].iloc[-1] == semantic["threshold"].iloc[-1]
    exact = full[(full["stage"] == "exact") & (full["metric"] == "item_fpr")].merge(
        sweep[sweep["stage"] == "exact"], on="threshold")
    assert (exact["value"] == exact["item_fpr"]).all()
    pair = thin[(thin["stage"] == "semantic") & (thin["metric"] == "pair_fpr")]
    assert 10 <= len(pair) <= 31 and (pair["value"] < 1).all()


def test_score_distributions_hold_every_positive_and_each_items_hardest_negative(demo: Workspace) -> None:
    calibration_id = only_calibration(demo)
    meta = manifest(demo, calibration_id)
    hist = cal.score_distributions(demo, calibration_id, bins=10)
    pairs = pd.read_parquet(demo.root / "calibrations" / calibration_id / "pairs.parquet")
    assert list(dict.fromkeys(hist["stage"])) == meta["stages"].split(",")
    for (stage, label), group in hist.groupby(["stage", "label"]):
        assert len(group) == 10
        if label == "positive":
            assert group["pairs"].sum() == pairs.loc[pairs["label"], f"{stage}_score"].notna().sum()
        else:  # one score per item: its best over every non-twin candidate
            assert group["pairs"].sum() == 164
        assert group["share"].sum() == pytest.approx(1.0)
    sweep = demo.query("SELECT stage, max(fp) AS fp FROM calibration_sweeps WHERE calibration_id = ? "
                       "GROUP BY stage", [calibration_id]).set_index("stage")["fp"]
    assert (sweep == 164).all()  # at its lowest threshold every item's hardest negative is flagged
    semantic = hist[hist["stage"] == "semantic"]
    # positives score high, negatives lower: the mean bin of the positives lies above the hardest negatives'
    means = semantic.assign(mid=(semantic["bin_start"] + semantic["bin_end"]) / 2 * semantic["share"]) \
        .groupby("label")["mid"].sum()
    assert means["positive"] > means["negative"] + 0.1


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
                                       target_fpr=0.05, stages=["near_duplicate", "exact"])
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
    assert row["negatives"] == 164  # every item, against every other item and planted row
    assert row["negative_pairs"] == 164 * (164 + len(truth)) - 164 - truth["must_flag"].sum()
    assert list(cal.recommendations(ws, new_id)["stage"]) == ["exact", "near_duplicate"]
