"""Attacks on membership: the holdout-referenced DCR baseline and the distance-to-synthetic attack.

Holdout baseline (SDMetrics' ``DCROverfittingProtection``)
    With a holdout, each synthetic row has a DCR to the source ``d_s`` and to the
    holdout ``d_h``. A generator that learned the population and not the rows makes
    rows no closer to what it saw than to what it did not, so about half the rows
    have ``d_s < d_h``. ``closer_to_training = mean(1[d_s < d_h] + w·1[d_s = d_h])``
    and ``score = min(1, 2·(1 - closer_to_training))``: 1 = no sign of copying, 0 =
    every row is closer to a training row. Two departures from SDMetrics, both
    deliberate: ties count ``w = ½`` (SDMetrics counts them as closer to the holdout,
    ``w = 0``; templated text has exact ties, and half is neutral), and nothing is
    subsampled (SDMetrics optionally scores a random subsample of the synthetic rows
    over several iterations; here every row counts, so the score is deterministic).
    SDMetrics' distance is a per-column tabular distance; here it is one of the two
    above. Its advice holds: a holdout smaller than half the source makes ``d_h``
    larger by chance alone and the score pessimistic.

Membership inference (:func:`membership_inference`, :func:`distance_attack`)
    The distance-to-nearest-synthetic attack: an attacker holding the synthetic data
    and a real row guesses that the row was in the source (a *member*) when the row's
    distance to its nearest synthetic row is small. Source rows are the members,
    holdout rows the non-members. AUROC of the score ``-distance`` over all real rows
    (rank-based, ``P(s⁺ > s⁻) + ½·P(s⁺ = s⁻)``; :func:`synthscope.algorithms.ranking.auroc`);
    0.5 means the synthetic data tells the attacker nothing about who was in the
    source, 1 that every member is closer than every non-member. The accuracy is
    the balanced-attack framing: the larger group is subsampled (fixed seed) to the
    smaller one's size, so guessing gives 0.5, and the best accuracy over every
    threshold ``guess member when distance <= t`` is reported with that threshold's
    precision. Choosing the threshold on the same rows makes it an optimistic (upper)
    bound of what an attacker achieves.
"""

from __future__ import annotations

import math

import numpy as np

from synthscope.algorithms.ranking import auroc
from synthscope.scorecard.privacy.distances import nearest_embedding

# -- holdout baseline and membership inference ------------------------------------------------


def dcr_protection(to_training: np.ndarray, to_holdout: np.ndarray, tie_weight: float = 0.5) -> dict[str, float]:
    """SDMetrics' DCROverfittingProtection from each synthetic row's DCR to the training rows and to the holdout.

    Returns ``closer_to_training`` (share of rows with ``d_s < d_h``, ties counting
    ``tie_weight``; SDMetrics uses 0), ``closer_to_holdout`` (its complement),
    ``score = min(1, 2 * (1 - closer_to_training))`` (1 = no sign of copying), the
    medians of both DCRs and the number of rows; NaN values without rows.
    """
    d_s, d_h = np.asarray(to_training, dtype=np.float64), np.asarray(to_holdout, dtype=np.float64)
    if d_s.shape != d_h.shape:
        raise ValueError(f"one DCR per synthetic row on both sides, got {d_s.shape} and {d_h.shape}")
    if not len(d_s):
        return {"closer_to_training": math.nan, "closer_to_holdout": math.nan, "score": math.nan,
                "median_to_training": math.nan, "median_to_holdout": math.nan, "rows": 0}
    closer = float(np.mean((d_s < d_h) + tie_weight * (d_s == d_h)))
    return {"closer_to_training": closer, "closer_to_holdout": 1.0 - closer, "score": min(1.0, 2.0 * (1.0 - closer)),
            "median_to_training": float(np.median(d_s)), "median_to_holdout": float(np.median(d_h)),
            "rows": int(len(d_s))}


def distance_attack(member_distance: np.ndarray, non_member_distance: np.ndarray, seed: int = 0) -> dict[str, float]:
    """The distance-to-nearest-synthetic membership attack from each real row's distance (module docstring).

    ``auroc``: of ``-distance`` with members positive, over all rows. ``accuracy``:
    the best over thresholds ``distance <= t`` on a balanced sample (``pairs`` rows of
    each group, the larger group subsampled with ``seed``), at least 0.5 (guessing
    "no member" for everyone); ``precision`` and ``threshold`` at that accuracy (NaN
    and -inf when no threshold beats 0.5).
    """
    members = np.asarray(member_distance, dtype=np.float64)
    others = np.asarray(non_member_distance, dtype=np.float64)
    out = {"auroc": math.nan, "accuracy": math.nan, "precision": math.nan, "threshold": math.nan,
           "members": int(len(members)), "non_members": int(len(others)), "pairs": 0}
    if not len(members) or not len(others):
        return out
    labels = np.r_[np.ones(len(members), dtype=bool), np.zeros(len(others), dtype=bool)]
    out["auroc"] = auroc(-np.r_[members, others], labels)
    rng = np.random.default_rng(seed)
    n = min(len(members), len(others))
    m = np.sort(rng.choice(members, n, replace=False) if len(members) > n else members)
    h = np.sort(rng.choice(others, n, replace=False) if len(others) > n else others)
    thresholds = np.unique(np.r_[m, h])
    tp = np.searchsorted(m, thresholds, "right")  # members guessed members
    fp = np.searchsorted(h, thresholds, "right")  # non-members guessed members
    accuracy = (tp + n - fp) / (2 * n)
    best = int(np.argmax(accuracy))
    out["pairs"] = n
    if accuracy[best] > 0.5:
        out |= {"accuracy": float(accuracy[best]), "precision": float(tp[best] / (tp[best] + fp[best])),
                "threshold": float(thresholds[best])}
    else:
        out |= {"accuracy": 0.5, "threshold": -math.inf}
    return out


def membership_inference(source_vectors: np.ndarray, holdout_vectors: np.ndarray, synthetic_vectors: np.ndarray,
                         seed: int = 0) -> dict[str, float]:
    """The distance attack on embeddings: source rows are members, holdout rows non-members (module docstring).

    Each real row's distance is ``1 - cos`` to its nearest synthetic row; see
    :func:`distance_attack` for what is returned.
    """
    to_synthetic_s, _ = nearest_embedding(source_vectors, synthetic_vectors)
    to_synthetic_h, _ = nearest_embedding(holdout_vectors, synthetic_vectors)
    return distance_attack(to_synthetic_s, to_synthetic_h, seed)
