"""Grouping rows: union-find over pairs, and k-means with a fixed seed.

Shared by the scorecard's duplicate clusters and diversity (:mod:`synthscope.scorecard.quality`)
and its topic shares (:mod:`synthscope.scorecard.bias`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

SEED = 0
KMEANS_SAMPLE = 20_000


def _find(parent: list[int], i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression
        parent[i], i = root, parent[i]
    return root


def duplicate_clusters(n: int, pairs: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Union-find over rows ``0..n-1``: the clusters of two or more rows ``pairs`` connect.

    Each cluster is sorted; clusters come in the order of their first row.
    """
    parent = list(range(n))
    for a, b in pairs:
        ra, rb = _find(parent, int(a)), _find(parent, int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(_find(parent, i), []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def kmeans(vectors: np.ndarray, k: int, seed: int = SEED, sample: int = KMEANS_SAMPLE) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, centres)`` of k-means (scikit-learn, k-means++, fixed ``seed``).

    Fitted on at most ``sample`` rows drawn with ``seed``, then every row is given
    its nearest centre. With fewer distinct rows than ``k`` some clusters stay empty.
    """
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    x = np.ascontiguousarray(vectors, dtype=np.float64)
    fit = x
    if len(x) > sample:
        fit = x[np.sort(np.random.default_rng(seed).choice(len(x), sample, replace=False))]
    model = KMeans(n_clusters=k, n_init=3, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(fit)
    return model.predict(x), model.cluster_centers_
