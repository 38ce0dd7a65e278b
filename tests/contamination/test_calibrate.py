"""Calibration on hard negatives: sweeps agree with scikit-learn, rates are a scan's, recommendations are usable.

Small workspaces of generated text stand in for a benchmark: items come in
same-topic pairs (a shared 20-word passage, then 20 words of their own), the
known positives are light copies or heavy rewrites, so the exact and
near-duplicate stages (no model) show everything the calibration must get right.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_score, recall_score, roc_curve

from synthscope.cli import main
from synthscope.contamination import calibrate as cal
from synthscope.contamination import calibration_results
from synthscope.contamination.calibrate import (
    GRID_STEP,
    aligned_pairs,
    min_negative_items,
    read_truth,
    recommend,
    run_calibration,
    shuffled_negatives,
    sweep,
)
from synthscope.contamination.cascade import CascadeConfig
from synthscope.contamination.minhash import NearDuplicateConfig
from synthscope.contamination.scan import config_from
from synthscope.contamination.semantic import SemanticConfig
from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.datasets.ingest import ingest

EXACT_AND_NEAR = {"stages": ["exact", "near_duplicate"]}


def _words(rng: np.random.Generator, n: int) -> list[str]:
    return ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=int(rng.integers(4, 9)))) for _ in range(n)]


def _write(path: Path, texts: list[str], prefix: str) -> Path:
    path.write_text("".join(json.dumps({"id": f"{prefix}{k}", "question": t, "answer": ""}) + "\n"
                            for k, t in enumerate(texts)), encoding="utf-8")
    return path


def paired_topics(n: int, seed: int = 0) -> list[str]:
    """``n`` items; items 2k and 2k + 1 share a 20-word passage on topic k, then have 20 words of their own."""
    rng = np.random.default_rng(seed)
    topics = [_words(rng, 20) for _ in range((n + 1) // 2)]
    return [" ".join(topics[k // 2] + _words(rng, 20)) for k in range(n)]


def light_copy(text: str) -> str:
    """A copy with one word added at the end: Jaccard ~0.97, coverage 1."""
    return text + " please"


def heavy_rewrite(text: str, rng: np.random.Generator) -> str:
    """Every fifth word kept, the rest replaced: almost no shared shingle or n-gram."""
    words = text.split()
    return " ".join(w if k % 5 == 0 else _words(rng, 1)[0] for k, w in enumerate(words))


def workspace(tmp_path: Path, items: list[str], positives: list[str]) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    ingest(ws, _write(tmp_path / "bench.jsonl", items, "T/"), name="bench", kind="benchmark")
    ingest(ws, _write(tmp_path / "pos.jsonl", positives, "P/"), name="pos", kind="synthetic")
    return ws


def recommendations(ws: Workspace, calibration_id: str) -> pd.DataFrame:
    return calibration_results.recommendations(ws, calibration_id).set_index("stage")


# -- sweeps and recommendations ------------------------------------------------------------


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
    # One negative at 0.82 may be flagged (1 % of 100): every positive is found above the negatives at 0.3.
    assert rec.threshold == 0.35 and rec.recall == 1.0 and rec.fpr == 0.01 and rec.reason is None
    strict = recommend(sweep(scores, labels), target_fpr=0.0)
    assert strict.threshold == pytest.approx(0.835) and strict.recall == pytest.approx(3 / 8) and strict.fpr == 0
    # Every negative at 0 and positives from 0.3 up: the middle of the band, not the negatives' edge.
    lone = recommend(sweep(np.array([0.02, 0.3, 0.6, 0.9] + [0.0] * 200), np.array([0, 1, 1, 1] + [0] * 200,
                                                                                      dtype=bool)), 0.01)
    assert lone.threshold == 0.15 and lone.recall == 1.0 and lone.fpr == 0.0
    # A stage whose every threshold flags a negative first has nothing to recommend, and says so.
    none = recommend(sweep(np.array([0.9, 0.1]), np.array([0, 1], dtype=bool)), target_fpr=0.0)
    assert none.refused and none.threshold is None and "keeps the item-level FPR within 0" in none.reason


def test_a_recommendation_is_never_below_the_stage_floor() -> None:
    # Rephrasings share a few shingles (Jaccard 0.02-0.12), unrelated items none: without a floor the
    # midpoint lands at 0.01, a Jaccard LSH never proposes (the old behaviour, issue 14).
    scores = np.r_[np.linspace(0.02, 0.12, 40), np.zeros(400)]
    labels = np.r_[np.ones(40, bool), np.zeros(400, bool)]
    table = sweep(scores, labels)
    assert recommend(table, 0.01).threshold == 0.01  # what an unguarded rule picks
    floor = NearDuplicateConfig().lsh_threshold
    refused = recommend(table, 0.01, floor=floor, negatives=400)
    assert refused.refused and f"from the floor {floor:g}" in refused.reason and "recall 0" in refused.reason
    # Positives on both sides of the floor: the recommendation starts at the floor.
    both = np.r_[np.linspace(0.02, 0.9, 40), np.zeros(400)]
    rec = recommend(sweep(both, labels), 0.01, floor=floor, negatives=400)
    assert rec.threshold is not None and rec.threshold >= floor and 0 < rec.recall < 1


def test_recall_zero_is_never_recommended() -> None:
    # n-grams miss every rephrasing (coverage 0) and one other item shares a passage: the old rule recommended
    # 0.5 with recall 0 (FPR 0 is "in budget"); a threshold that catches nothing is no threshold.
    scores = np.r_[np.zeros(50), [0.5], np.zeros(399)]
    labels = np.r_[np.ones(50, bool), np.zeros(400, bool)]
    rec = recommend(sweep(scores, labels), 0.01, floor=0.0, strict_floor=True, negatives=400)
    assert rec.refused and "recall 0" in rec.reason


def test_refused_when_too_few_items_back_the_target() -> None:
    assert [min_negative_items(t) for t in (0.01, 0.05, 0.1, 0.003)] == [300, 60, 30, 1000]
    scores = np.r_[np.full(10, 0.9), np.zeros(100)]
    labels = np.r_[np.ones(10, bool), np.zeros(100, bool)]
    rec = recommend(sweep(scores, labels), 0.01, negatives=100)
    assert rec.refused and "only 100 items" in rec.reason and "at least 300" in rec.reason
    assert not recommend(sweep(scores, labels), 0.05, negatives=100).refused


def test_shuffled_negatives_never_pair_an_item_with_itself() -> None:
    pairs = shuffled_negatives(50, 5, seed=3)
    assert pairs.shape == (250, 2)
    assert (pairs[:, 0] != pairs[:, 1]).all()
    assert all(len(set(pairs[pairs[:, 0] == i, 1])) == 5 for i in range(50))
    assert (shuffled_negatives(50, 5, seed=3) == pairs).all()


# -- hard negatives --------------------------------------------------------------------------


def test_hard_negatives_are_every_other_item_and_every_other_items_positive(tmp_path: Path) -> None:
    items = paired_topics(6)
    positives = [light_copy(t) for t in items]
    positives[3] = ""  # an empty rephrasing is no evidence; item 3 is still compared with everything
    ws = workspace(tmp_path, items, positives)
    pairs = aligned_pairs(ws, DatasetRef("bench"), DatasetRef("pos"))
    assert "1 empty rows left out" in pairs.description
    assert list(pairs.candidates["kind"]) == ["benchmark item"] * 6 + ["aligned row"] * 5
    assert list(pairs.positives["item_id"]) == ["T/0", "T/1", "T/2", "T/4", "T/5"]
    assert pairs.negative_items() == 6
    assert pairs.negative_pairs() == 6 * 11 - 5 - 6  # all pairs, less the twins and each item against itself


@pytest.mark.parametrize("block_rows", [1, 4, None])
def test_stage_scores_match_brute_force_over_every_pair(tmp_path: Path, block_rows: int | None) -> None:
    items = paired_topics(10, seed=1)
    rng = np.random.default_rng(1)
    ws = workspace(tmp_path, items, [light_copy(t) if k % 2 else heavy_rewrite(t, rng) for k, t in enumerate(items)])
    pairs = aligned_pairs(ws, DatasetRef("bench"), DatasetRef("pos"))
    twin_i, twin_c, self_i, self_c = pairs.index()
    for stage, scorer in (("exact", cal.ExactScores(pairs, config_from(ws).ngram)),
                          ("near_duplicate", cal.NearScores(pairs, NearDuplicateConfig()))):
        full = scorer.block(0, len(pairs.items))
        every = np.argwhere(np.ones(full.shape, bool))
        np.testing.assert_allclose(scorer.pairs(every[:, 0], every[:, 1]), full.reshape(-1))  # one pair at a time
        negative = np.ones(full.shape, bool)
        negative[twin_i, twin_c] = negative[self_i, self_c] = False
        measured = cal.score_stage(scorer, pairs, stage, block_rows)
        np.testing.assert_allclose(measured.positive, full[twin_i, twin_c])
        np.testing.assert_allclose(measured.hardest, np.where(negative, full, -1).max(axis=1))
        assert measured.pairs == negative.sum() == pairs.negative_pairs()
        for t in (0.0, 0.25, 0.5, 0.999, 1.0):
            k = int(round(t / GRID_STEP))
            assert measured.pair_at_least[k] == (full[negative] >= t).sum()
            curve = measured.curve()
            assert curve.item_fpr(t) == pytest.approx((np.where(negative, full, -1).max(axis=1) >= t).mean())
            assert curve.expected_false_flags(t, 1000) == pytest.approx(1000 * (full[negative] >= t).mean())


def test_hard_negatives_give_a_higher_fpr_than_shuffled_pairs(tmp_path: Path) -> None:
    """Items in same-topic pairs: a scan flags each item through its neighbour; one shuffled partner rarely is it."""
    items = paired_topics(40, seed=2)
    ws = workspace(tmp_path, items, [light_copy(t) for t in items])
    pairs = aligned_pairs(ws, DatasetRef("bench"), DatasetRef("pos"))
    scorer = cal.NearScores(pairs, NearDuplicateConfig())
    twin_c = pairs.index()[1]
    shuffled = shuffled_negatives(len(items), 1, seed=0)  # item i against one other item's rephrasing
    shuffled_scores = scorer.pairs(shuffled[:, 0], twin_c[shuffled[:, 1]])
    measured = cal.score_stage(scorer, pairs, "near_duplicate")
    threshold = 0.25  # same-topic items share 16 of 36 shingles: Jaccard 0.29
    shuffled_fpr = float((shuffled_scores >= threshold).mean())
    item_fpr = float(measured.curve().item_fpr(threshold))
    assert shuffled_fpr <= 0.1 and item_fpr == 1.0
    # and so the calibration, on the same data, refuses to call 0.25 clean: it recommends above the neighbours
    calibration_id = run_calibration(ws, pairs, config_from(ws, EXACT_AND_NEAR), target_fpr=0.1)
    near = recommendations(ws, calibration_id).loc["near_duplicate"]
    assert near["status"] == "recommended" and near["threshold"] > 0.29 and near["recall"] == 1.0
    assert near["item_fpr"] == 0.0 and near["current_item_fpr"] == 0.0  # flag_at 0.5 is above the neighbours too


# -- a calibration run -----------------------------------------------------------------------


def test_a_calibration_stores_item_and_pair_rates_and_a_recommendation_or_a_reason(tmp_path: Path) -> None:
    items = paired_topics(40, seed=3)
    rng = np.random.default_rng(3)
    # Half light copies (every stage catches them), half heavy rewrites (n-grams and shingles miss them).
    ws = workspace(tmp_path, items, [light_copy(t) if k % 2 else heavy_rewrite(t, rng) for k, t in enumerate(items)])
    calibration_id = run_calibration(ws, aligned_pairs(ws, DatasetRef("bench"), DatasetRef("pos")),
                                     config_from(ws, EXACT_AND_NEAR), target_fpr=0.1)
    recs = recommendations(ws, calibration_id)
    meta = ws.query("SELECT * FROM calibrations WHERE calibration_id = ?", [calibration_id]).iloc[0]
    assert (meta["benchmark"], meta["positives"], meta["negatives"], meta["negative_pairs"]) == (
        "bench@v1", 40, 40, 40 * 80 - 40 - 40)
    for _, rec in recs.iterrows():
        assert rec["negative_items"] == 40 and rec["negative_pairs"] == 40 * 80 - 80 and rec["positives"] == 40
        assert (rec["status"] == "recommended") == isinstance(rec["toml"], str) == (not isinstance(rec["reason"], str))
    # Same-topic items share a 20-word passage: n-gram coverage 0.5 for every item, so the exact stage flags them
    # all at its default 0.2; above 0.5 only the light copies are caught.
    exact = recs.loc["exact"]
    assert exact["current_item_fpr"] == 1.0 and exact["current_recall"] == 0.5
    assert exact["status"] == "recommended" and 0.5 < exact["threshold"] <= 1.0 and exact["recall"] == 0.5
    near = recs.loc["near_duplicate"]
    assert near["status"] == "recommended" and near["threshold"] >= NearDuplicateConfig().lsh_threshold
    toml = tomllib.loads(calibration_results.toml_snippet(calibration_results.recommendations(ws, calibration_id)))
    assert toml["contamination"]["ngram"]["clean_below"] == pytest.approx(exact["threshold"])
    assert toml["contamination"]["near_duplicate"]["flag_at"] == pytest.approx(near["threshold"])

    # The FPR curves another module reads: per-pair FPR(t) per stage, item FPR and recall beside it.
    curve = calibration_results.fpr_curve(ws, calibration_id, "exact")
    assert curve.negative_pairs == 40 * 80 - 80 and curve.negative_items == 40 and curve.positives == 40
    assert curve.item_fpr(0.2) == 1.0 and curve.item_fpr(0.6) == 0.0 and curve.recall(0.6) == 0.5
    # each item shares the passage with its neighbour and the neighbour's copy (a heavy rewrite shares less)
    assert 0 < curve.pair_fpr(0.4) <= 2 / 78
    assert calibration_results.latest_calibration(ws, "exact", "bench@v1") == calibration_id
    assert calibration_results.latest_calibration(ws, "semantic") is None
    sweep_rows = ws.query("SELECT * FROM calibration_sweeps WHERE calibration_id = ? AND stage = 'exact'",
                          [calibration_id])
    assert sweep_rows["item_fpr"].max() == 1.0 and sweep_rows["fp"].max() == 40

    pairs = pd.read_parquet(ws.root / "calibrations" / calibration_id / "pairs.parquet")
    assert pairs["label"].sum() == 40
    hardest = pairs[~pairs["label"]]
    assert set(hardest["item_id"]) == {f"T/{k}" for k in range(40)}  # each item's hardest non-twin is kept
    assert (hardest.groupby("item_id")["exact_score"].max() >= 0.5).all()


def test_a_calibration_with_too_few_items_refuses_every_stage(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    items = paired_topics(12, seed=4)
    ws = workspace(tmp_path, items, [light_copy(t) for t in items])
    assert main(["calibrate", "-w", str(ws.root), "--benchmark", "bench", "--positives", "pos",
                 "--stages", "exact", "near_duplicate"]) == 0
    out = capsys.readouterr().out
    assert "12 known positives; hard negatives: 12 items" in out
    for stage in ("exact", "near_duplicate"):
        assert (f"{stage}: no threshold recommended: only 12 items have hard negatives; an item-level FPR of 0.01 "
                "needs at least 300") in out
    assert "to use the recommended thresholds" not in out and "clean_below =" not in out
    recs = ws.query("SELECT status, threshold, toml FROM calibration_recommendations")
    assert (recs["status"] == "refused").all() and recs["threshold"].isna().all() and recs["toml"].isna().all()


def test_the_cli_prints_per_stage_rates_and_the_toml_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = paired_topics(40, seed=5)
    rng = np.random.default_rng(5)
    ws = workspace(tmp_path, items, [heavy_rewrite(t, rng) for t in items])
    assert main(["calibrate", "-w", str(ws.root), "--benchmark", "bench", "--positives", "pos",
                 "--stages", "exact", "near_duplicate", "--target-fpr", "0.1"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("stage"))
    for column in ("threshold", "recall", "item FPR", "pair FPR", "negative items"):
        assert column in header
    # Heavy rewrites share almost nothing: neither stage can catch them from its floor, and says so.
    assert "exact: no threshold recommended: no known positive scores above 0" in out
    assert "near_duplicate: no threshold recommended: no known positive scores from the floor 0.3" in out
    assert "to use the recommended thresholds" not in out


def test_the_semantic_recommendation_sets_likely_at_and_keeps_the_file_valid() -> None:
    config = CascadeConfig(stages=("exact", "semantic"), semantic=SemanticConfig())
    assert cal.SETTING["semantic"] == "[contamination.semantic] likely_at"
    assert cal.current_threshold(config, "semantic") == SemanticConfig().likely_at
    assert cal.floor_of(config, "semantic") == (SemanticConfig().candidate_at, False)
    high = tomllib.loads(cal.toml_lines(config, "semantic", 0.812))["contamination"]["semantic"]
    assert high == {"likely_at": 0.812}
    low = tomllib.loads(cal.toml_lines(config, "semantic", 0.6))["contamination"]["semantic"]
    assert low == {"likely_at": 0.6, "flag_at": 0.6}  # below flag_at: both move, so the settings stay ordered
    SemanticConfig(**low)  # valid


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


def test_truth_pairs_twin_the_leaks_and_compare_every_planted_row(tmp_path: Path) -> None:
    items = paired_topics(6, seed=6)
    ws = workspace(tmp_path, items, [light_copy(items[0]), items[2] + " again", "an unrelated clean row of text"])
    truth = pd.DataFrame({"dataset": "pos", "version": "v1", "record_id": ["P/0", "P/1", "P/2"],
                          "task_id": ["T/0", "T/2", "T/4"], "must_flag": [True, True, False],
                          "kind": ["verbatim", "verbatim", "look-alike"]})
    pairs = cal.truth_pairs(ws, DatasetRef("bench"), truth)
    assert list(pairs.positives["candidate_id"]) == ["pos@v1/P/0", "pos@v1/P/1"]
    assert list(pairs.candidates["kind"])[-3:] == ["planted verbatim", "planted verbatim", "look-alike"]
    assert pairs.negative_pairs() == 6 * 9 - 2 - 6
    with pytest.raises(ValueError, match="names 1 item"):
        cal.truth_pairs(ws, DatasetRef("bench"), truth.assign(task_id=["T/0", "T/9", "T/4"]))


# -- the demo -------------------------------------------------------------------------------


def test_calibrate_on_the_demo_truth(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "-w", str(demo_ws), "--benchmark", "humaneval", "--truth",
                 str(demo_ws / "demo" / "planted_truth.parquet"), "--stages", "exact", "semantic",
                 "--target-fpr", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "[contamination.semantic]\n  likely_at = " in out
    ws = Workspace.open(demo_ws)
    (calibration_id,) = ws.query("SELECT calibration_id FROM calibrations WHERE stages = 'exact,semantic'")[
        "calibration_id"]
    pairs = pd.read_parquet(demo_ws / "calibrations" / calibration_id / "pairs.parquet")
    rephrased = pairs[pairs["source"] == "planted rephrased"]
    # What the demo plants rephrasings for: invisible to n-grams, found by meaning.
    assert len(rephrased) == 6
    assert (rephrased["exact_score"] < 0.2).sum() >= 5 and (rephrased["semantic_score"] >= 0.67).all()
    recs = recommendations(ws, calibration_id)
    semantic = recs.loc["semantic"]
    assert semantic["status"] == "recommended" and semantic["item_fpr"] <= 0.05
    assert semantic["threshold"] >= SemanticConfig().candidate_at and semantic["negative_items"] == 164
    # At the default 1 %, HumanEval's 164 items are too few (300 needed): nothing to paste, every stage says why.
    assert main(["calibrate", "-w", str(demo_ws), "--benchmark", "humaneval", "--truth",
                 str(demo_ws / "demo" / "planted_truth.parquet"), "--stages", "exact"]) == 0
    out = capsys.readouterr().out
    assert "exact: no threshold recommended: only 164 items" in out and "clean_below =" not in out


def test_calibrate_reports_what_is_wrong(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = str(demo_ws)
    assert main(["calibrate", "-w", ws, "--benchmark", "humaneval"]) == 2
    assert "--positives" in capsys.readouterr().err
    assert main(["calibrate", "-w", ws, "--benchmark", "humaneval", "--positives", "code-instruct@v1"]) == 2
    assert "so they must match" in capsys.readouterr().err
    before = sorted(p.name for p in (demo_ws / "calibrations").iterdir())
    assert main(["calibrate", "-w", ws, "--benchmark", "humaneval", "--truth", str(demo_ws / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["calibrate", "-w", ws, "--benchmark", "humaneval", "--truth",
                 str(demo_ws / "demo" / "planted_truth.parquet"), "--target-fpr", "1.5"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err
    assert sorted(p.name for p in (demo_ws / "calibrations").iterdir()) == before  # nothing half-written
