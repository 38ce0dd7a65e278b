"""Ranking statistics: the AUROC of a score at telling positives from negatives.

``AUROC = P(s⁺ > s⁻) + ½·P(s⁺ = s⁻)``, from the ranks of all scores (ties share their mean
rank): ``(R⁺ - n⁺(n⁺+1)/2) / (n⁺ n⁻)`` where ``R⁺`` is the rank sum of the positives
(Mann-Whitney U over ``n⁺ n⁻``). Shared by the evals (Min-K%++ at telling contaminated items)
and the scorecard (membership inference).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def boolean_mask(name: str, x: object, n: int | None = None) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1 or (n is not None and len(a) != n):
        raise ValueError(f"{name} must be 1-D{'' if n is None else f' of length {n}'}, got shape {a.shape}")
    if a.dtype != bool:
        if not np.isin(a, (0, 1)).all():
            raise ValueError(f"{name} must be boolean or 0/1")
        a = a.astype(bool)
    return a


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (True = positive); NaN when a class is empty."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or np.isnan(s).any():
        raise ValueError(f"scores must be 1-D without NaN, got shape {s.shape}")
    y = boolean_mask("labels", labels, len(s))
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = stats.rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
