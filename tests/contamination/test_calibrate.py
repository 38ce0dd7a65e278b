"""Threshold sweeps agree with scikit-learn's ROC, and the recommendation respects the FPR budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_score, recall_score, roc_curve

from synthscope.cli import main
from synthscope.contamination.calibrate import read_truth, recommend, shuffled_negatives, sweep
from synthscope.core.workspace import Workspace


def test_sweep_matches_sklearn_roc_curve() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.3
    scores = np.round(np.where(labels, rng.normal(0.7, 0.15, 300), rng.normal(0.4, 0.15, 300)), 2)  # ties
    table = sweep(scores, labels)
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    ours = table.set_index("threshold")
    for f, t, th in zip(fpr[1:], tpr[1:], thresholds[1:]):
        assert ours.loc[th, "fpr"] == pytest.approx(f) and ours.loc[th, "recall"] == pytest.approx(t)
    for th in (0.3, 0.5, 0.62):
        row = table[table["threshold"] >= th].iloc[0]
        predicted = scores >= row["threshold"]
        assert row["precision"] == pytest.approx(precision_score(labels, predicted))
        assert row["recall"] == pytest.approx(recall_score(labels, predicted))


def test_missing_scores_count_as_never_flagged() -> None:
    table = sweep(np.array([0.9, np.nan, 0.1, 0.8]), np.array([1, 1, 0, 0]))
    assert table["recall"].max() == 0.5  # the unscored positive is never found


def test_recommendation_keeps_fpr_in_budget_with_most_recall() -> None:
    scores = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4] + [0.82] + [0.3] * 99)
    labels = np.array([1] * 8 + [0] * 100, dtype=bool)
    rec = recommend(sweep(scores, labels), target_fpr=0.01)
    # One negative at 0.82 may be flagged (1 % of 100): threshold can drop to 0.4, all positives found.
    assert rec is not None and rec.threshold == 0.4 and rec.recall == 1.0 and rec.fpr == 0.01
    strict = recommend(sweep(scores, labels), target_fpr=0.0)
    assert strict is not None and strict.threshold == 0.85 and strict.recall == pytest.approx(3 / 8)
    # Every negative at 0 and positives from 0.3 up: the middle of the band, not the negatives' edge.
    lone = recommend(sweep(np.array([0.02, 0.3, 0.6, 0.9] + [0.0] * 200), np.array([0, 1, 1, 1] + [0] * 200,
                                                                                      dtype=bool)), 0.01)
    assert lone is not None and lone.threshold == pytest.approx(0.16) and lone.recall == 1.0 and lone.fpr == 0.0
    # A stage whose every threshold flags a negative first has nothing to recommend.
    assert recommend(sweep(np.array([0.9, 0.1]), np.array([0, 1], dtype=bool)), target_fpr=0.0) is None


def test_sweep_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="positives and negatives"):
        sweep(np.array([0.5, 0.6]), np.array([1, 1]))


def test_shuffled_negatives_never_pair_an_item_with_itself() -> None:
    pairs = shuffled_negatives(50, 5, seed=3)
    assert pairs.shape == (250, 2)
    assert (pairs[:, 0] != pairs[:, 1]).all()
    assert all(len(set(pairs[pairs[:, 0] == i, 1])) == 5 for i in range(50))
    assert (shuffled_negatives(50, 5, seed=3) == pairs).all()


# -- planted-truth files ---------------------------------------------------------------------


def test_truth_files_are_read_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "truth.csv"
    good.write_text("dataset,version,record_id,task_id,must_flag\nsyn,v1,r1,T/1,true\nsyn,v1,r2,T/1,0\n")
    truth = read_truth(good)
    assert truth["must_flag"].tolist() == [True, False] and truth["kind"].tolist() == ["leak", "look-alike"]
    (tmp_path / "truth.jsonl").write_text(truth.to_json(orient="records", lines=True))
    assert read_truth(tmp_path / "truth.jsonl")["must_flag"].tolist() == [True, False]

    bad = tmp_path / "bad.csv"
    bad.write_text("dataset,version,record_id,task_id,must_flag\nsyn,v1,r1,T/1,true\nsyn,v1,r2,T/1,maybe\n")
    with pytest.raises(ValueError, match=r"bad.csv: row 2: must_flag must be true or false, got 'maybe'"):
        read_truth(bad)
    lacking = tmp_path / "lacking.csv"
    lacking.write_text("dataset,record_id,task_id\nsyn,r1,T/1\n")
    with pytest.raises(ValueError, match="lacks the column"):
        read_truth(lacking)
    with pytest.raises(ValueError, match="no such file"):
        read_truth(tmp_path / "missing.parquet")


# -- a calibration run, end to end -------------------------------------------------------


def test_calibrate_on_the_demo_truth(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "-w", str(demo_ws), "--benchmark", "humaneval", "--truth",
                 str(demo_ws / "demo" / "planted_truth.parquet"), "--stages", "exact", "semantic"]) == 0
    out = capsys.readouterr().out
    assert "[contamination.semantic] flag_at = " in out
    ws = Workspace.open(demo_ws)
    (calibration_id,) = ws.query("SELECT calibration_id FROM calibrations WHERE stages = 'exact,semantic'")[
        "calibration_id"]
    pairs = pd.read_parquet(demo_ws / "calibrations" / calibration_id / "pairs.parquet")
    rephrased = pairs[pairs["source"] == "planted rephrased"]
    # What the demo plants rephrasings for: invisible to n-grams, found by meaning.
    assert len(rephrased) == 6
    assert (rephrased["exact_score"] < 0.2).sum() >= 5 and (rephrased["semantic_score"] >= 0.67).all()
    recs = ws.query("SELECT * FROM calibration_recommendations WHERE calibration_id = ?", [calibration_id])
    semantic = recs.set_index("stage").loc["semantic"]
    assert semantic["fpr"] <= 0.01 and semantic["recall"] > recs.set_index("stage").loc["exact", "recall"]
    sweep_rows = ws.query("SELECT count(*) AS n FROM calibration_sweeps WHERE calibration_id = ?", [calibration_id])
    assert sweep_rows["n"][0] > 10


def test_calibrate_reports_what_is_wrong(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = str(demo_ws)
    assert main(["calibrate", "-w", ws, "--benchmark", "humaneval"]) == 2
    assert "--positives" in capsys.readouterr().err
    assert main(["calibrate", "-w", ws, "--benchmark", "humaneval", "--positives", "code-instruct@v1"]) == 2
    assert "so they must match" in capsys.readouterr().err
    before = sorted(p.name for p in (demo_ws / "calibrations").iterdir())
    assert main(["calibrate", "-w", ws, "--benchmark", "humaneval", "--truth", str(demo_ws / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert sorted(p.name for p in (demo_ws / "calibrations").iterdir()) == before  # nothing half-written
