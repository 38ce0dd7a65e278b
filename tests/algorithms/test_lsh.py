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


# -- the join of two sides (BandIndex) against datasketch's MinHashLSH.query ---------------------


def _datasketch_pairs(indexed: np.ndarray, queries: np.ndarray, bands: int, rows: int) -> set[tuple[int, int]]:
    """The reference: one ``MinHashLSH.query`` per query signature, as the stage did before the join."""
    from datasketch import MinHash, MinHashLSH

    num_perm = indexed.shape[1]
    index = MinHashLSH(num_perm=num_perm, params=(bands, rows))
    for i, sig in enumerate(indexed):
        index.insert(i, MinHash(num_perm=num_perm, hashvalues=sig, scheme="affine32"), check_duplication=False)
    return {(q, int(i)) for q, sig in enumerate(queries)
            for i in index.query(MinHash(num_perm=num_perm, hashvalues=sig, scheme="affine32"))}


def _planted(rng: np.random.Generator, n: int, num_perm: int, values: int) -> np.ndarray:
    """``n`` signatures from ``values`` distinct uint32 values: the first half random, the rest near-duplicates of
    it (each coordinate kept with probability J, J uniform in [0.2, 1]), some exact copies among them."""
    pool = rng.integers(0, 2**32, size=values, dtype=np.uint64).astype(np.uint32)
    base = pool[rng.integers(0, values, size=(n // 2, num_perm))]
    near = base[rng.integers(0, len(base), size=n - len(base))].copy()
    keep = rng.random(near.shape) < rng.uniform(0.2, 1.0, size=(len(near), 1))
    keep[::7] = True  # exact copies
    near[~keep] = pool[rng.integers(0, values, size=int((~keep).sum()))]
    return np.vstack([base, near])


@pytest.mark.parametrize(("threshold", "values", "max_rows"), [
    (0.3, 2**20, lsh.MAX_JOIN_ROWS),  # the stage's bands: 37 x 3
    (0.5, 2**20, lsh.MAX_JOIN_ROWS),  # 25 x 5
    (0.3, 4, 50),  # four values only: crowded buckets, many bands per pair; small pieces
])
def test_band_join_returns_datasketchs_candidates(threshold: float, values: int, max_rows: int) -> None:
    rng = np.random.default_rng(17)
    bands, rows = lsh.lsh_params(threshold, 128)
    sigs = _planted(rng, 600, 128, values)
    indexed, queries = sigs[::3], np.delete(sigs, np.s_[::3], axis=0)
    expected = _datasketch_pairs(indexed, queries, bands, rows)
    q, i = lsh.BandIndex.build(indexed, bands, rows).query(queries, max_rows=max_rows)
    found = list(zip(q.tolist(), i.tolist()))
    assert len(found) == len(set(found)) and found == sorted(found)  # distinct, sorted
    assert set(found) == expected
    assert len(expected) > (5000 if values == 4 else 100)  # planted near-duplicates were proposed


def test_band_key_collisions_add_no_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a key that collides all the time (the band's first value only), the values check keeps the pairs exact."""
    rng = np.random.default_rng(4)
    sigs = rng.integers(0, 3, size=(120, 12), dtype=np.uint32)
    expected = _datasketch_pairs(sigs[:40], sigs[40:], 4, 3)
    monkeypatch.setattr(lsh, "band_keys", lambda s, b, r: s[:, : b * r : r].astype(np.uint64))
    q, i = lsh.BandIndex.build(sigs[:40], 4, 3).query(sigs[40:], max_rows=7)
    assert set(zip(q.tolist(), i.tolist())) == expected


def test_band_join_of_nothing() -> None:
    index = lsh.BandIndex.build(np.zeros((0, 8), dtype=np.uint32), 4, 2)
    q, i = index.query(np.ones((3, 8), dtype=np.uint32))
    assert len(q) == len(i) == 0
    with pytest.raises(ValueError):
        lsh.BandIndex.build(np.zeros((2, 8), dtype=np.uint32), 3, 3)
