"""LSH banding (synthscope.algorithms.lsh): datasketch's bands, and every pair equal on a band proposed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from synthscope.algorithms import lsh


def test_bands_are_datasketchs_and_fit_the_signature() -> None:
    b, r = lsh.lsh_params(0.3, 128)
    assert (b, r) == (37, 3) and b * r <= 128


@pytest.mark.parametrize("max_bucket", [2, 256])
def test_candidate_pairs_are_the_pairs_sharing_a_band(max_bucket: int) -> None:
    rng = np.random.default_rng(3)
    sigs = rng.integers(0, 3, size=(40, 8), dtype=np.uint32)  # few values: many shared bands
    bands, rows = 4, 2
    band = [sigs[:, k * rows:(k + 1) * rows] for k in range(bands)]
    shared = {(i, j) for i, j in itertools.combinations(range(len(sigs)), 2)
              if any((b[i] == b[j]).all() for b in band)}
    found = lsh.candidate_pairs(sigs, bands, rows, max_bucket)
    if max_bucket == 256:
        assert found == shared
    else:  # crowded buckets give a star and a chain: fewer pairs, the same connected rows
        assert found <= shared and len(found) < len(shared)
        assert _components(found, len(sigs)) == _components(shared, len(sigs))


def _components(pairs: set[tuple[int, int]], n: int) -> list[int]:
    label = list(range(n))
    changed = True
    while changed:
        changed = False
        for a, b in pairs:
            low = min(label[a], label[b])
            if label[a] != low or label[b] != low:
                label[a] = label[b] = low
                changed = True
    return label
