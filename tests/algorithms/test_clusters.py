"""Union-find clusters and seeded k-means (synthscope.algorithms.clusters)."""

from __future__ import annotations

from synthscope.algorithms import clusters as grouping
from synthscope.scorecard import quality


def test_union_find_clusters_and_removable_rows() -> None:
    clusters = grouping.duplicate_clusters(7, [(5, 1), (1, 3), (4, 6), (3, 5)])
    assert clusters == [[1, 3, 5], [4, 6]]
    assert quality.removable(clusters) == 3
