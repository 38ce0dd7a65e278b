"""Threshold sweeps agree with scikit-learn's ROC, and the recommendation respects the FPR budget."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score, roc_curve

from analysis.contamination.calibrate import recommend, shuffled_negatives, sweep


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
