"""LSH banding of MinHash signatures: which pairs of texts are worth an exact comparison.

Banding
    ``datasketch.MinHashLSH`` cuts a signature into ``b`` bands of ``r`` values
    and makes two texts candidates when any band is equal, which happens with
    probability ``P(J) = 1 - (1 - J**r)**b``: an S-curve whose steep part sits
    near ``lsh_threshold`` (datasketch picks ``b``, ``r`` with ``b·r <= num_perm``
    minimising the integrated false-positive and false-negative probabilities).
    At the defaults (``lsh_threshold = 0.3``: ``b = 37``, ``r = 3``)
    ``P(0.2) = 0.26``, ``P(0.4) = 0.91``, ``P(0.5) = 0.993``, ``P(0.6) = 0.9999``.

    Every candidate is then **confirmed by its exact Jaccard**, computed on the
    full shingle sets (of 64-bit hashes; a collision among ``n`` shingles has
    probability about ``n**2 / 2**65``), and that exact value is what is
    reported. Confirmation removes LSH's false positives but cannot bring back
    a pair the bands missed, so the band curve must be near 1 at ``flag_at``:
    that is why ``lsh_threshold`` (0.3) sits well below ``flag_at`` (0.5), and
    why :meth:`NearDuplicateConfig.candidate_probability` is there to check a
    setting.

Self-join (:func:`candidate_pairs`)
    Within one set of signatures, every pair equal on at least one band. A bucket of
    more than ``max_bucket`` rows (boilerplate shared by many texts) contributes a star
    and a chain instead of all its pairs, so its members still end up connected
    without a quadratic blow-up.
"""

from __future__ import annotations

import functools

import numpy as np

MAX_BUCKET = 256


@functools.lru_cache(maxsize=16)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """``(b, r)``: the bands and rows per band datasketch chooses for ``threshold`` and ``num_perm``."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


def band_buckets(band: np.ndarray) -> list[np.ndarray]:
    """Positions of the rows of ``band`` (rows x r) that share their values with another row, per value."""
    order = np.lexsort(band.T[::-1])
    ordered = band[order]
    same = np.all(ordered[1:] == ordered[:-1], axis=1)
    starts = np.flatnonzero(np.r_[True, ~same])
    ends = np.r_[starts[1:], len(order)]
    return [order[s:e] for s, e in zip(starts, ends) if e - s > 1]


def candidate_pairs(sigs: np.ndarray, bands: int, rows: int, max_bucket: int | None = None) -> set[tuple[int, int]]:
    """Pairs of signature rows equal on at least one band (large buckets: star and chain, see the module docstring)."""
    max_bucket = MAX_BUCKET if max_bucket is None else max_bucket
    out: set[tuple[int, int]] = set()
    for band in range(bands):
        for members in band_buckets(sigs[:, band * rows:(band + 1) * rows]):
            members = np.sort(members)
            if len(members) <= max_bucket:
                out.update((int(a), int(b)) for k, a in enumerate(members) for b in members[k + 1:])
            else:
                out.update((int(members[0]), int(b)) for b in members[1:])
                out.update((int(a), int(b)) for a, b in zip(members[:-1], members[1:]))
    return out
