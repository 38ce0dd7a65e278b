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

Join of two sides (:class:`BandIndex`)
    The pairs ``(q, i)`` of a query side and an indexed side equal on at least one
    band — exactly the keys ``MinHashLSH.query`` returns for each query, for a whole
    batch of signatures at once. Band ``k`` of a signature ``x`` is the ``r`` values
    ``x[k·r : (k+1)·r]``; its key is one 64-bit word (:func:`band_keys`)::

        h_0 = (k + 1) · φ,   h_{j+1} = mix64(h_j ⊕ x[k·r + j]),   key_k(x) = h_r   (mod 2**64)

    with ``φ`` the 64-bit golden ratio and ``mix64`` splitmix64's finaliser (a
    bijection of 64-bit words). The indexed side's ``(key, row, band)`` entries are
    sorted once; a query batch finds its keys there with ``np.searchsorted``. Why
    the set of pairs is datasketch's: ``MinHashLSH`` keeps one hash table per band
    keyed by the band's bytes, so ``i`` is returned for ``q`` iff some band of
    ``q`` equals the same band of ``i`` value for value. Equal bands give equal
    keys (the key is a function of ``k`` and the values), so the join finds every
    such pair; each joined entry is then checked on its ``r`` values and band, so a
    key collision (probability about ``2**-64`` per compared band) cannot add a
    pair. ``b`` and ``r`` are :func:`lsh_params`'s, datasketch's own choice.

    Memory: query signatures are never joined with each other, only with the
    indexed side, so a key shared by very many query rows (empty or boilerplate
    text) costs what its rows cost, never their square. The join's rows — every
    datasketch candidate once per band it matches on — are counted before they
    are made and produced in pieces of at most ``max_rows`` (a piece ends
    between query rows), each de-duplicated to distinct pairs at once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

MAX_BUCKET = 256
MAX_JOIN_ROWS = 1 << 20  # joined (query, indexed, band) rows made at once: about 100 bytes of work arrays each

_PHI = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


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


def _mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place on a uint64 array (a bijection of 64-bit words)."""
    h ^= h >> np.uint64(30)
    h *= _MIX1
    h ^= h >> np.uint64(27)
    h *= _MIX2
    h ^= h >> np.uint64(31)
    return h


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``(len(sigs), bands)`` uint64: the key of each band of each signature (see the module docstring).

    Equal bands (same ``k``, same ``r`` values) always have equal keys; unequal
    ones collide with probability about ``2**-64``, which :meth:`BandIndex.query`
    rules out by comparing the values.
    """
    h = np.empty((len(sigs), bands), dtype=np.uint64)
    h[:] = (np.arange(bands, dtype=np.uint64) + np.uint64(1)) * _PHI  # uint64 arithmetic wraps: mod 2**64
    for j in range(rows):
        h ^= sigs[:, j : bands * rows : rows].astype(np.uint64)  # value j of every band
        _mix64(h)
    return h


@dataclass(frozen=True)
class BandIndex:
    """The indexed side of a band join: its signatures and their band keys, sorted (see the module docstring)."""

    sigs: np.ndarray  # (rows, num_perm) uint32: the indexed signatures
    bands: int
    rows: int
    keys: np.ndarray  # uint64, sorted: every band key of every indexed signature
    entries: np.ndarray  # int64: ``row * bands + band`` of each key

    @classmethod
    def build(cls, sigs: np.ndarray, bands: int, rows: int) -> BandIndex:
        """Index ``sigs`` (``bands * rows <= num_perm``; only the first ``bands * rows`` values are banded)."""
        if bands * rows > sigs.shape[1]:
            raise ValueError(f"{bands} bands of {rows} rows need {bands * rows} values, not {sigs.shape[1]}")
        keys = band_keys(sigs, bands, rows).ravel()
        order = np.argsort(keys, kind="stable")
        return cls(np.ascontiguousarray(sigs), bands, rows, keys[order], order.astype(np.int64))

    def __len__(self) -> int:
        return len(self.sigs)

    def query(self, sigs: np.ndarray, max_rows: int = MAX_JOIN_ROWS) -> tuple[np.ndarray, np.ndarray]:
        """Distinct pairs ``(q, i)``, sorted, with ``sigs[q]`` and indexed row ``i`` equal on some band.

        The same pairs as ``MinHashLSH.query`` of each ``sigs[q]`` against an index
        holding the indexed rows with these ``(b, r)``; ``max_rows`` bounds the join
        rows made at once.
        """
        b, r = self.bands, self.rows
        empty = np.empty(0, dtype=np.int64)
        if len(sigs) == 0 or len(self.keys) == 0:
            return empty, empty.copy()
        wanted = band_keys(sigs, b, r).ravel()
        lo = np.searchsorted(self.keys, wanted, side="left")
        hit = lo < len(self.keys)
        hit[hit] = self.keys[lo[hit]] == wanted[hit]
        flat = np.flatnonzero(hit)  # q * b + band of every query band whose key is indexed
        if len(flat) == 0:
            return empty, empty.copy()
        first = lo[flat]
        count = np.searchsorted(self.keys, wanted[flat], side="right") - first
        qs, idx = [], []
        for start, stop in _pieces(flat // b, np.cumsum(count), max_rows):
            q, i = self._join(sigs, flat[start:stop], first[start:stop], count[start:stop])
            qs.append(q)
            idx.append(i)
        return np.concatenate(qs), np.concatenate(idx)

    def _join(self, sigs: np.ndarray, flat: np.ndarray, first: np.ndarray,
              count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distinct pairs of one piece: expand each query band over its equal keys, check the values, dedupe."""
        b, r = self.bands, self.rows
        total = int(count.sum())
        ends = np.cumsum(count)
        at = np.repeat(first - (ends - count), count) + np.arange(total)  # positions in self.keys
        entry = self.entries[at]
        q, band = np.repeat(flat // b, count), np.repeat(flat % b, count)
        i = entry // b
        cols = band[:, None] * r + np.arange(r)
        same = (entry % b == band) & np.all(sigs[q[:, None], cols] == self.sigs[i[:, None], cols], axis=1)
        pair = np.unique(q[same] * len(self.sigs) + i[same])
        return pair // len(self.sigs), pair % len(self.sigs)


def _pieces(owner: np.ndarray, cumulative: np.ndarray, budget: int) -> Iterator[tuple[int, int]]:
    """``[start, stop)`` runs of entries whose counts sum to at most ``budget``, never splitting an ``owner``
    (sorted); an owner over budget alone is one piece."""
    start, done, n = 0, 0, len(owner)
    while start < n:
        stop = max(int(np.searchsorted(cumulative, done + budget, side="right")), start + 1)
        if stop < n and owner[stop] == owner[stop - 1]:
            back = int(np.searchsorted(owner, owner[stop], side="left"))
            stop = back if back > start else int(np.searchsorted(owner, owner[stop], side="right"))
        yield start, stop
        done = int(cumulative[stop - 1])
        start = stop
