"""AUROC (synthscope.algorithms.ranking) against scikit-learn and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from synthscope.algorithms.ranking import auroc


def test_auroc_matches_sklearn() -> None:
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    rng = np.random.default_rng(2)
    for _ in range(20):
        labels = rng.random(200) < 0.3
        scores = np.round(rng.normal(labels * 0.7, 1.0), 1)  # rounded: many ties
        assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), rel=1e-12)
    assert auroc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0 and auroc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    assert auroc([5, 5, 5], [0, 1, 1]) == 0.5
    assert auroc([-np.inf, 0.0], [False, True]) == 1.0


def test_auroc_edge_cases() -> None:
    assert math.isnan(auroc([0.1, 0.2], [True, True])) and math.isnan(auroc([0.1, 0.2], [0, 0]))
    assert math.isnan(auroc([], []))
    with pytest.raises(ValueError, match="NaN"):
        auroc([0.1, np.nan], [0, 1])
    with pytest.raises(ValueError, match="length 2"):
        auroc([0.1, 0.2], [0, 1, 1])
