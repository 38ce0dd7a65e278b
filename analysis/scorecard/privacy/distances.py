"""Distances between synthetic and real rows: nearest embedding, character-5-gram Jaccard, verbatim spans.

Distance to the closest record (DCR)
    *Embedding*: ``d(x, y) = 1 - cos(x, y) = 1 - x·y`` for unit vectors, 0 for the
    same direction, 2 for opposite ones; the nearest row is found exactly by blocked
    matrix products (:data:`BLOCK` x :data:`BLOCK` similarities at a time, so memory
    stays bounded whatever the sizes). *Characters*: each text, normalised
    (:func:`synthscope.core.text.normalize`, white space collapsed to one space), becomes its
    set ``G`` of character 5-grams (a shorter text is one gram); ``d(a, b) = 1 -
    |G_a ∩ G_b| / |G_a ∪ G_b|``, the Jaccard distance. It is exact, not MinHash: the
    intersections come from a sparse product of text x gram incidence matrices, i.e.
    an inverted index, and only rows sharing at least one gram are candidates; a text
    that shares no gram with any row has distance 1.0 and no nearest row (-1).

    A synthetic row is a *near-copy* when its embedding DCR to the source is at most
    :data:`NEAR_COPY_EMBEDDING` (cosine >= 0.95) or its character DCR at most
    :data:`NEAR_COPY_CHARS` (5-gram Jaccard >= 0.8).

Longest verbatim span (:func:`longest_spans`)
    For each synthetic row, the longest run of consecutive words (tokens of
    :func:`synthscope.core.text.tokenize`) it shares with one source row. Every window of
    ``seed`` (8) tokens is hashed (:func:`synthscope.core.text.ngram_hashes`); a synthetic
    window equal to a source window at positions ``(i, j)`` lies on the diagonal
    ``j - i``, and ``k`` matched windows at consecutive ``i`` on one diagonal of one
    source row make a shared run of ``k + seed - 1`` words. The longest run is exact
    (64-bit hash collisions aside) for spans of at least ``seed`` words; shorter
    spans are reported as 0. The section reports the maximum and the share of rows
    with a span of at least :data:`LONG_SPAN_WORDS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from synthscope.core.text import TokenBatch, char_chunks, hash_tokens, ngram_hashes, normalize, tokenize

SPAN_SEED = 8  # word n-gram that seeds verbatim spans: shorter spans are not measured
CHAR_N = 5
BLOCK = 4096  # rows per side of one block of similarities
PAIR_BUDGET = 1 << 22  # candidate pairs held at once (character DCR, verbatim spans)


# -- distances --------------------------------------------------------------------------------


def nearest_embedding(queries: np.ndarray, rows: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Per query vector, ``1 - cos`` to its nearest row and that row's index (unit vectors; ties: lowest index).

    Exact, in blocks of ``block`` x ``block`` similarities (float32), so memory does
    not grow with ``len(queries) * len(rows)``. With no rows every distance is 1.0
    and every index -1.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    r = np.ascontiguousarray(rows, dtype=np.float32)
    best = np.full(len(q), -np.inf, dtype=np.float32)
    index = np.full(len(q), -1, dtype=np.int64)
    for a in range(0, len(q), block):
        qa = q[a:a + block]
        top, arg = best[a:a + block], index[a:a + block]  # views: updated in place
        for c in range(0, len(r), block):
            sims = qa @ r[c:c + block].T
            j = sims.argmax(axis=1)
            s = sims[np.arange(len(qa)), j]
            better = s > top
            top[better], arg[better] = s[better], j[better] + c
    dist = np.where(index >= 0, np.clip(1.0 - best.astype(np.float64), 0.0, 2.0), 1.0)
    return dist, index


def char_grams(text: str, n: int = CHAR_N) -> set[str]:
    """The set of character ``n``-grams of the normalised text (white space collapsed); a shorter text is one gram."""
    t = " ".join(normalize(text or "").split())
    if len(t) < n:
        return {t} if t else set()
    return {t[i:i + n] for i in range(len(t) - n + 1)}


def jaccard_distance(a: set[str], b: set[str]) -> float:
    """``1 - |a ∩ b| / |a ∪ b|``; 1.0 when both are empty."""
    union = len(a | b)
    return 1.0 - len(a & b) / union if union else 1.0


def _incidence(sets: Sequence[set[str]], vocab: dict[str, int], grow: bool) -> sparse.csr_matrix:
    """Binary texts x grams matrix; grams outside ``vocab`` are added when ``grow``, else left out."""
    indices: list[int] = []
    indptr = [0]
    for grams in sets:
        for g in grams:
            j = vocab.get(g)
            if j is None and grow:
                j = vocab[g] = len(vocab)
            if j is not None:
                indices.append(j)
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.int32)
    return sparse.csr_matrix((data, np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
                             shape=(len(sets), max(len(vocab), 1)))


def nearest_gram_sets(queries: Sequence[set[str]], rows: Sequence[set[str]]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_chars` on precomputed gram sets."""
    dist = np.ones(len(queries))
    index = np.full(len(queries), -1, dtype=np.int64)
    if not len(queries) or not len(rows):
        return dist, index
    vocab: dict[str, int] = {}
    r = _incidence(rows, vocab, grow=True)
    q = _incidence(queries, vocab, grow=False)
    q_size = np.array([len(s) for s in queries], dtype=np.float64)
    r_size = np.array([len(s) for s in rows], dtype=np.float64)
    rt = r.T.tocsr()
    step = max(1, PAIR_BUDGET // len(rows))
    for a in range(0, len(queries), step):
        shared = (q[a:a + step] @ rt).tocsr()  # intersections of the pairs sharing at least one gram
        if not shared.nnz:
            continue
        counts = np.diff(shared.indptr)
        qi = np.repeat(np.arange(shared.shape[0]), counts)
        ri, common = shared.indices.astype(np.int64), shared.data.astype(np.float64)
        jac = common / (q_size[a + qi] + r_size[ri] - common)
        has = np.flatnonzero(counts)
        top = np.maximum.reduceat(jac, shared.indptr[has])  # per query with candidates: the best Jaccard
        best = np.full(shared.shape[0], -1.0)
        best[has] = top
        col = np.where(jac == best[qi], ri, len(rows))  # ties: the lowest row
        index[a + has] = np.minimum.reduceat(col, shared.indptr[has])
        dist[a + has] = 1.0 - top
    return dist, index


def nearest_chars(queries: Sequence[str], rows: Sequence[str], n: int = CHAR_N) -> tuple[np.ndarray, np.ndarray]:
    """Per query text, the character ``n``-gram Jaccard distance to its nearest row and that row's index.

    Exact over the rows sharing at least one gram with the query (found through an
    inverted index: a sparse product, :data:`PAIR_BUDGET` pairs at a time); a query
    sharing none gets distance 1.0 and index -1. Ties: the lowest row index.
    """
    return nearest_gram_sets([char_grams(t, n) for t in queries], [char_grams(t, n) for t in rows])


# -- verbatim spans ---------------------------------------------------------------------------


def _token_batch(texts: Sequence[str]) -> TokenBatch:
    """:func:`synthscope.core.text.hash_tokens` of ``texts``, hashed in chunks of a few hundred kilobytes."""
    hashes = [np.empty(0, dtype=np.uint64)]
    offsets = [np.zeros(1, dtype=np.int64)]
    for a, b in char_chunks(texts, 1 << 18):
        batch = hash_tokens(texts[a:b])
        offsets.append(batch.offsets[1:] + sum(len(h) for h in hashes))
        hashes.append(batch.hashes)
    return TokenBatch(np.concatenate(hashes), np.concatenate(offsets))


@dataclass(frozen=True)
class _Windows:
    """Hashes of every ``n``-token window of a token batch, by the global index of its first token."""

    hashes: np.ndarray  # uint64, one per window start (len(tokens) - n + 1)
    owner: np.ndarray  # int64: the text of the window's first token
    first: np.ndarray  # int64: the first window start of that text
    last: np.ndarray  # int64: the last window start of that text whose window ends inside it

    @classmethod
    def of(cls, batch: TokenBatch, n: int) -> _Windows:
        hashes = ngram_hashes(batch.hashes, n)
        owner = batch.text_of_token()[:len(hashes)]
        return cls(hashes, owner, batch.offsets[owner], batch.offsets[owner + 1] - n)

    @property
    def inside(self) -> np.ndarray:
        return np.arange(len(self.hashes)) <= self.last


def longest_spans(queries: Sequence[str], rows: Sequence[str], seed: int = SPAN_SEED) -> pd.DataFrame:
    """Per query text, the longest run of consecutive words it shares with one row (module docstring).

    Columns: ``words`` (0 when no run of ``seed`` words is shared), ``row`` (the row,
    -1 when none; ties: the lowest row, then the earliest position), ``start`` (the
    run's first token in the query) and ``span`` (its words, normalised, joined by
    spaces).

    Windows are addressed by the global index of their first token. A matched pair
    of windows ``(u, g)`` (query, row) *starts* a run unless ``(u - 1, g - 1)`` also
    match inside the same texts; each start is then extended one window at a time,
    all starts at once, while ``(u + k, g + k)`` match. Every matched pair belongs
    to exactly one run, so the work is linear in the matched pairs, which are
    enumerated :data:`PAIR_BUDGET` at a time.
    """
    queries, rows = [t or "" for t in queries], [t or "" for t in rows]
    words = np.zeros(len(queries), dtype=np.int64)
    best_row = np.full(len(queries), -1, dtype=np.int64)
    best_start = np.zeros(len(queries), dtype=np.int64)
    q, r = _Windows.of(_token_batch(queries), seed), _Windows.of(_token_batch(rows), seed)
    r_index = np.flatnonzero(r.inside)
    r_index = r_index[np.argsort(r.hashes[r_index], kind="stable")]
    r_sorted = r.hashes[r_index]
    q_index = np.flatnonzero(q.inside)  # ascending, so each text's windows are contiguous
    lo = np.searchsorted(r_sorted, q.hashes[q_index], "left")
    counts = np.searchsorted(r_sorted, q.hashes[q_index], "right") - lo
    bounds = np.r_[0, np.cumsum(counts)]
    a = 0
    while a < len(q_index):  # blocks of query windows with about PAIR_BUDGET matched pairs, whole texts
        b = max(int(np.searchsorted(bounds, bounds[a] + PAIR_BUDGET, "right")) - 1, a + 1)
        text_end = q.owner[q_index[b - 1]]
        b = int(np.searchsorted(q.owner[q_index], text_end, "right"))
        w = np.arange(a, b)[counts[a:b] > 0]
        a = b
        if not len(w):
            continue
        reps = counts[w]
        u = np.repeat(q_index[w], reps)
        g = r_index[np.repeat(lo[w] - np.cumsum(reps) + reps, reps) + np.arange(int(reps.sum()))]
        continues = (u > q.first[u]) & (g > r.first[g])
        continues &= q.hashes[np.maximum(u - 1, 0)] == r.hashes[np.maximum(g - 1, 0)]
        u, g = u[~continues], g[~continues]
        length = np.ones(len(u), dtype=np.int64)
        active, step = np.arange(len(u)), 1
        while len(active):
            nu, ng = u[active] + step, g[active] + step
            ok = (nu <= q.last[u[active]]) & (ng <= r.last[g[active]])  # both windows still inside their texts
            ok &= q.hashes[np.where(ok, nu, 0)] == r.hashes[np.where(ok, ng, 0)]
            active = active[ok]
            length[active] += 1
            step += 1
        text, row, pos, span = q.owner[u], r.owner[g], u - q.first[u], length + seed - 1
        pick = np.lexsort((pos, row, -span, text))
        text, row, pos, span = text[pick], row[pick], pos[pick], span[pick]
        first = np.r_[True, text[1:] != text[:-1]]
        words[text[first]], best_row[text[first]], best_start[text[first]] = span[first], row[first], pos[first]
    spans = [" ".join(tokenize(queries[i])[best_start[i]:best_start[i] + words[i]]) if words[i] else ""
             for i in range(len(queries))]
    return pd.DataFrame({"words": words, "row": best_row, "start": best_start, "span": spans})
