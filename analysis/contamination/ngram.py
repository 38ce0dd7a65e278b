"""Exact contamination: word n-grams shared by benchmark items and synthetic records.

For each benchmark item, the prompt and the answer are indexed separately, so a
leaked canonical answer counts even when the question was never copied. A field
of ``L`` tokens is indexed at the largest configured ``n <= L`` (by default 13,
or 8 for fields of 8-12 tokens); a field shorter than every ``n`` cannot be
matched by this method and is reported as too short.

Per item and field (after Llama 2, Touvron et al. 2023, section A.6):

* ``matched_ngrams`` — distinct n-gram positions of the field found in any record;
* ``coverage`` — share of the field's tokens inside at least one matched n-gram;
* ``longest_span`` — the longest run of tokens shared verbatim with one record
  (consecutive matched n-grams on the same diagonal ``item_pos - record_pos``:
  ``k`` of them make a span of ``k + n - 1`` tokens).

The item's coverage is the larger of its two fields' coverages; buckets are
``clean`` below ``clean_below`` (20 %), ``dirty`` from ``dirty_from`` (80 %),
``partial`` between.

Hot path: token hashes come from :func:`synthscope.core.text.hash_tokens`, window
hashes from :func:`synthscope.core.text.window_hashes` (every n in one pass); each
window is first tested against a bitmap of the benchmark's n-gram hashes (one
random memory read), only the rare survivors are looked up exactly with a
binary search, and only matches are placed in their record. Texts are hashed
in chunks of a few hundred kilobytes (:func:`scan_texts`), which keeps the
per-character arrays in cache; ``bench/ngram_bench.py`` measures it all against
a plain-Python reference.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synthscope.core.text import (
    TokenBatch,
    char_chunks,
    hash_ascii,
    hash_tokens,
    ngram_hashes,
    record_layout,
    window_hashes,
)

FIELDS = ("prompt", "answer")


@dataclass(frozen=True)
class NgramConfig:
    """Settings of the exact stage; defaults can be overridden in ``synthscope.toml``."""

    ns: tuple[int, ...] = (13, 8)
    clean_below: float = 0.20
    dirty_from: float = 0.80
    top_k: int = 5

    def __post_init__(self) -> None:
        if not self.ns or min(self.ns) < 1:
            raise ValueError(f"n-gram sizes must be positive integers, got {self.ns}")
        if not 0 <= self.clean_below <= self.dirty_from <= 1:
            raise ValueError(
                "need 0 <= clean_below <= dirty_from <= 1, "
                f"got clean_below={self.clean_below}, dirty_from={self.dirty_from}"
            )

    def bucket(self, coverage: float) -> str:
        if coverage >= self.dirty_from:
            return "dirty"
        if coverage >= self.clean_below:
            return "partial"
        return "clean"


@dataclass
class _Postings:
    """All benchmark n-grams of one size, sorted by hash."""

    hashes: np.ndarray  # uint64, sorted
    item: np.ndarray  # int32
    field: np.ndarray  # int8: 0 prompt, 1 answer
    pos: np.ndarray  # int32: token position of the n-gram's first token in the field
    bitmap: np.ndarray  # bool, 2**bits
    bits: int
    distinct: np.ndarray  # uint64: the distinct values of `hashes`, sorted
    first: np.ndarray  # int64: index in `hashes` of each distinct value's first posting
    count: np.ndarray  # int64: postings of each distinct value

    @classmethod
    def build(cls, hashes: np.ndarray, item: np.ndarray, fld: np.ndarray, pos: np.ndarray) -> _Postings:
        order = np.argsort(hashes, kind="stable")
        hashes = hashes[order]
        bits = int(min(max(math.ceil(math.log2(max(len(hashes), 1) * 16)), 16), 28))
        bitmap = np.zeros(1 << bits, dtype=bool)
        bitmap[(hashes >> np.uint64(64 - bits)).astype(np.int64)] = True
        distinct, first, count = np.unique(hashes, return_index=True, return_counts=True)
        return cls(hashes, item[order], fld[order], pos[order], bitmap, bits, distinct,
                   first.astype(np.int64), count.astype(np.int64))

    def lookup(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each window hash, the matching posting indexes.

        Returns ``(window_index, posting_index)`` pairs, one per match, in window order.
        """
        # The top `bits` bits index the bitmap; they fit an int64, so a view replaces a cast.
        slot = np.right_shift(windows, np.uint64(64 - self.bits)).view(np.int64)
        maybe = np.flatnonzero(self.bitmap[slot])
        if len(maybe) == 0 or len(self.distinct) == 0:
            return maybe, maybe
        candidates = windows[maybe]
        d = np.searchsorted(self.distinct, candidates)
        np.minimum(d, len(self.distinct) - 1, out=d)
        found = self.distinct[d] == candidates
        maybe, d = maybe[found], d[found]
        counts = self.count[d]
        window_index = np.repeat(maybe, counts)
        # posting index: first, first + 1, ..., first + count - 1 for each found window
        start = np.repeat(self.first[d] - np.cumsum(counts) + counts, counts)
        posting_index = start + np.arange(len(window_index))
        return window_index, posting_index


@dataclass
class Hits:
    """Matched n-grams in a batch of records: one row per (window, benchmark posting)."""

    text: np.ndarray  # int64, index of the record in the batch
    text_pos: np.ndarray  # int32, token position in the record
    item: np.ndarray  # int32
    field: np.ndarray  # int8
    item_pos: np.ndarray  # int32
    n: np.ndarray  # int16

    @classmethod
    def concat(cls, parts: list[Hits]) -> Hits:
        if not parts:
            empty = np.empty(0, dtype=np.int64)
            return cls(empty, empty.astype(np.int32), empty.astype(np.int32),
                       empty.astype(np.int8), empty.astype(np.int32), empty.astype(np.int16))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("text", "text_pos", "item", "field", "item_pos", "n")))

    def __len__(self) -> int:
        return len(self.text)

    def take(self, index: np.ndarray) -> Hits:
        """The hits at ``index``: positions, or a boolean mask."""
        return Hits(*(getattr(self, f)[index] for f in ("text", "text_pos", "item", "field", "item_pos", "n")))


def _windows(batch: TokenBatch, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hashes of the n-token windows that lie inside one text, with their text and position."""
    hashes = ngram_hashes(batch.hashes, n)
    owner = batch.text_of_token()
    if len(hashes) == 0:
        return hashes, owner[:0], owner[:0]
    valid = np.flatnonzero(owner[: len(hashes)] == owner[n - 1 :])
    text = owner[valid]
    pos = valid - batch.offsets[text]
    return hashes[valid], text, pos


class BenchmarkIndex:
    """The n-grams of every benchmark item, per field, ready to probe record batches."""

    def __init__(self, prompts: Sequence[str], answers: Sequence[str], ns: Sequence[int]) -> None:
        if len(prompts) != len(answers):
            raise ValueError("prompts and answers must have the same length")
        self.ns = tuple(sorted(set(ns), reverse=True))
        self.size = len(prompts)
        self.lengths = np.zeros((self.size, len(FIELDS)), dtype=np.int32)
        self.n_used = np.zeros((self.size, len(FIELDS)), dtype=np.int16)  # 0: shorter than every n
        parts: dict[int, list[tuple[np.ndarray, ...]]] = {n: [] for n in self.ns}
        for f, texts in enumerate((prompts, answers)):
            batch = hash_tokens(list(texts))
            self.lengths[:, f] = np.diff(batch.offsets)
            for n in sorted(self.ns):  # ascending: the largest fitting n wins
                self.n_used[self.lengths[:, f] >= n, f] = n
            for n in self.ns:
                hashes, item, pos = _windows(batch, n)
                keep = self.n_used[item, f] == n
                parts[n].append((hashes[keep], item[keep].astype(np.int32),
                                 np.full(int(keep.sum()), f, dtype=np.int8), pos[keep].astype(np.int32)))
        self.postings = {
            n: _Postings.build(*(np.concatenate([p[k] for p in parts[n]]) for k in range(4)))
            for n in self.ns
        }
        # Flat layout of every (item, field) token range, for coverage masks.
        self.field_offset = np.zeros(self.size * len(FIELDS) + 1, dtype=np.int64)
        np.cumsum(self.lengths.reshape(-1), out=self.field_offset[1:])

    def probe(self, batch: TokenBatch) -> Hits:
        """Every (record window, benchmark n-gram) match in a batch of texts.

        Windows are hashed over the whole batch, as if it were one text, and
        looked up; only the few matches are then placed in their text, and
        those whose window runs over the end of its text are dropped. Placing
        every window first (a per-token owner array, a validity mask, gathers)
        cost more than the lookup itself.
        """
        parts = []
        windows = window_hashes(batch.hashes, self.ns)
        for n, postings in self.postings.items():
            if len(postings.hashes) == 0:
                continue
            w, p = postings.lookup(windows[n])
            text = np.searchsorted(batch.offsets, w, side="right") - 1
            inside = w + n <= batch.offsets[text + 1]
            w, p, text = w[inside], p[inside], text[inside]
            parts.append(Hits(text, (w - batch.offsets[text]).astype(np.int32), postings.item[p],
                              postings.field[p], postings.pos[p], np.full(len(w), n, dtype=np.int16)))
        return Hits.concat(parts)


def merge_intervals(starts: np.ndarray, n: int) -> list[list[int]]:
    """Union of the intervals ``[s, s + n)``, as sorted ``[start, end)`` pairs."""
    out: list[list[int]] = []
    for s in np.unique(starts).tolist():
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], s + n)
        else:
            out.append([s, s + n])
    return out


@dataclass
class BatchResult:
    """What a batch of records contributes to a scan; small and picklable."""

    rows: int
    marks: np.ndarray  # int64 flat positions (see BenchmarkIndex.field_offset) of matched n-gram starts
    mark_n: np.ndarray  # int16, the n of each mark
    pairs: pd.DataFrame  # per (item, record): stats and spans, only each item's top_k
    records_per_item: np.ndarray  # int64, matched records per item in this batch
    longest_per_item: np.ndarray  # int64, longest verbatim span per item in this batch


def summarise(hits: Hits, index: BenchmarkIndex, record_ids: Sequence[str], top_k: int,
              rows: int) -> BatchResult:
    """Reduce raw hits to coverage marks and per-pair evidence."""
    records_per_item = np.zeros(index.size, dtype=np.int64)
    longest_per_item = np.zeros(index.size, dtype=np.int64)
    if len(hits) == 0:
        return BatchResult(rows, np.empty(0, np.int64), np.empty(0, np.int16), _empty_pairs(),
                           records_per_item, longest_per_item)
    hits = _distinct_sorted(hits)
    flat = index.field_offset[hits.item.astype(np.int64) * len(FIELDS) + hits.field] + hits.item_pos
    marks, first = np.unique(flat, return_index=True)

    pairs = _pair_stats(hits, index)
    np.add.at(records_per_item, pairs["item"].to_numpy(), 1)
    np.maximum.at(longest_per_item, pairs["item"].to_numpy(), pairs["longest_span"].to_numpy())
    pairs["record_id"] = [record_ids[t] for t in pairs["text"]]
    pairs = _top(pairs, top_k)
    pairs = _with_spans(pairs, hits)
    return BatchResult(rows, marks.astype(np.int64), hits.n[first].astype(np.int16),
                       pairs.drop(columns=["text"]).reset_index(drop=True), records_per_item,
                       longest_per_item)


def _distinct_sorted(hits: Hits) -> Hits:
    """The distinct hits, sorted by item, record, field, item position, record position."""
    order = np.lexsort((hits.n, hits.text_pos, hits.item_pos, hits.field, hits.text, hits.item))
    hits = hits.take(order)
    columns = (hits.item, hits.text, hits.field, hits.item_pos, hits.text_pos, hits.n)
    new = np.ones(len(hits), dtype=bool)
    new[1:] = np.logical_or.reduce([c[1:] != c[:-1] for c in columns])
    return hits.take(new)


_RANKING = ["item", "coverage", "longest_span", "matched_ngrams", "record_id"]


def _top(pairs: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """Each item's ``top_k`` pairs: best coverage, then longest span, then most n-grams.

    Ties go to the smaller ``record_id``, so the evidence is the same whatever
    the order in which batches (and workers) deliver their pairs.
    """
    return (pairs.sort_values(_RANKING, ascending=[True, False, False, False, True], kind="stable")
            .groupby("item", sort=False).head(top_k))


_PAIR_COLUMNS = ["item", "record_id", "coverage", "prompt_coverage", "answer_coverage",
                 "matched_ngrams", "longest_span", "matched_field",
                 "item_prompt_spans", "item_answer_spans", "record_spans"]


def _empty_pairs() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in _PAIR_COLUMNS})


def _starts(*keys: np.ndarray) -> np.ndarray:
    """On rows sorted by ``keys``: True where any key differs from the row before (and on row 0)."""
    new = np.zeros(len(keys[0]), dtype=bool)
    new[:1] = True
    for key in keys:
        new[1:] |= key[1:] != key[:-1]
    return new


def _pair_stats(hits: Hits, index: BenchmarkIndex) -> pd.DataFrame:
    """Coverage, matched n-grams and longest verbatim span per (item, record).

    ``hits`` are distinct and sorted (:func:`_distinct_sorted`). Groups of rows
    are runs of equal keys, reduced with ``np.add.reduceat`` and friends.
    """
    item, text, fld, item_pos, n = hits.item, hits.text, hits.field, hits.item_pos, hits.n.astype(np.int64)

    # Coverage of each field by this record: union of [item_pos, item_pos + n) over its distinct starts;
    # each start adds min(gap to the previous start, n) new tokens, the first one n.
    group = _starts(item, text, fld)
    distinct = np.flatnonzero(group | _starts(item_pos))
    first = group[distinct]
    gap = np.empty(len(distinct), dtype=np.int64)
    gap[0] = 0
    np.subtract(item_pos[distinct[1:]], item_pos[distinct[:-1]], out=gap[1:])
    new_tokens = np.where(first, n[distinct], np.minimum(gap, n[distinct]))
    g = np.flatnonzero(first)  # where each (item, record, field) group starts among the distinct starts
    covered = np.add.reduceat(new_tokens, g)
    matched = np.diff(np.append(g, len(distinct)))
    rep = distinct[g]  # a row of each group
    g_item, g_text, g_field = item[rep], text[rep], fld[rep]
    coverage = covered / index.lengths[g_item, g_field]

    # Per (item, record): the groups of its two fields.
    pair = np.cumsum(_starts(g_item, g_text)) - 1
    pairs_n = int(pair[-1]) + 1
    cov = np.zeros((pairs_n, len(FIELDS)))
    cov[pair, g_field] = coverage
    matched_ngrams = np.zeros(pairs_n, dtype=np.int64)
    np.add.at(matched_ngrams, pair, matched)
    p_first = np.flatnonzero(_starts(g_item, g_text))

    # Longest verbatim span: runs of consecutive item positions on one diagonal (item_pos - text_pos);
    # a run of k n-grams is k + n - 1 tokens.
    diag = item_pos.astype(np.int64) - hits.text_pos
    order = np.lexsort((item_pos, diag, fld, text, item))
    o_item, o_text, o_pos = item[order], text[order], item_pos[order]
    run = _starts(o_item, o_text, fld[order], diag[order])
    run[1:] |= o_pos[1:] != o_pos[:-1] + 1
    r = np.flatnonzero(run)
    spans = np.diff(np.append(r, len(order))) + n[order][r] - 1
    longest = np.maximum.reduceat(spans, np.flatnonzero(_starts(o_item[r], o_text[r])))

    pairs = pd.DataFrame({
        "item": g_item[p_first], "text": g_text[p_first],
        "prompt_coverage": cov[:, 0], "answer_coverage": cov[:, 1], "coverage": cov.max(axis=1),
        "matched_ngrams": matched_ngrams, "longest_span": longest.astype(np.int64),
    })
    pairs["matched_field"] = [
        _matched_field(p, a, 0.0) for p, a in zip(pairs["prompt_coverage"], pairs["answer_coverage"])
    ]
    return pairs


def _with_spans(pairs: pd.DataFrame, hits: Hits) -> pd.DataFrame:
    """Token intervals on both sides for the (few) pairs kept as evidence.

    Plain Python over the kept pairs' hits: a pandas group per pair cost about
    a third of a millisecond each and dominated a batch.
    """
    stride = int(hits.text.max()) + 1
    kept = np.isin(hits.item.astype(np.int64) * stride + hits.text,
                   pairs["item"].to_numpy(np.int64) * stride + pairs["text"].to_numpy(np.int64))
    hits = hits.take(kept)
    rows = zip(hits.item.tolist(), hits.text.tolist(), hits.field.tolist(), hits.item_pos.tolist(),
               hits.text_pos.tolist(), hits.n.tolist())
    spans: dict[tuple[int, int], dict[str, list[list[int]]]] = {}
    for key, group in itertools.groupby(rows, key=lambda h: (h[0], h[1])):  # hits are sorted by item, record
        group = list(group)
        spans[key] = {
            "item_prompt_spans": _union([[pos, pos + n] for _, _, f, pos, _, n in group if f == 0]),
            "item_answer_spans": _union([[pos, pos + n] for _, _, f, pos, _, n in group if f == 1]),
            "record_spans": _union([[pos, pos + n] for _, _, _, _, pos, n in group]),
        }
    pairs = pairs.copy()
    for name in ("item_prompt_spans", "item_answer_spans", "record_spans"):
        pairs[name] = [spans[(int(i), int(t))][name] for i, t in zip(pairs["item"], pairs["text"])]
    return pairs


def _union(intervals: list[list[int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def _matched_field(prompt_cov: float, answer_cov: float, threshold: float) -> str:
    """Which field(s) carry the match: those at or above ``threshold`` (and > 0)."""
    names = [name for name, cov in (("prompt", prompt_cov), ("answer", answer_cov))
             if cov > 0 and cov >= threshold]
    return "+".join(names)


@dataclass
class ExactMatches:
    """Accumulates batch results into per-item verdicts and top evidence."""

    index: BenchmarkIndex
    config: NgramConfig
    rows: int = 0
    _diff: np.ndarray = field(init=False)
    _starts: np.ndarray = field(init=False)
    _records: np.ndarray = field(init=False)
    _longest: np.ndarray = field(init=False)
    _pairs: list[pd.DataFrame] = field(default_factory=list)

    def __post_init__(self) -> None:
        total = int(self.index.field_offset[-1])
        self._diff = np.zeros(total + 1, dtype=np.int64)
        self._starts = np.zeros(total, dtype=bool)
        self._records = np.zeros(self.index.size, dtype=np.int64)
        self._longest = np.zeros(self.index.size, dtype=np.int64)

    def add(self, result: BatchResult) -> None:
        self.rows += result.rows
        self._starts[result.marks] = True
        np.add.at(self._diff, result.marks, 1)
        np.add.at(self._diff, result.marks + result.mark_n.astype(np.int64), -1)
        self._records += result.records_per_item
        np.maximum(self._longest, result.longest_per_item, out=self._longest)
        if len(result.pairs):
            self._pairs.append(result.pairs)
            if sum(len(p) for p in self._pairs) > 4 * self.config.top_k * max(self.index.size, 1):
                self._pairs = [self.evidence()]

    def verdicts(self) -> pd.DataFrame:
        offsets = self.index.field_offset
        covered = np.concatenate(([0], np.cumsum(np.cumsum(self._diff)[:-1] > 0)))
        starts = np.concatenate(([0], np.cumsum(self._starts)))
        shape = (self.index.size, len(FIELDS))
        covered_per_field = (covered[offsets[1:]] - covered[offsets[:-1]]).reshape(shape)
        starts_per_field = (starts[offsets[1:]] - starts[offsets[:-1]]).reshape(shape)
        lengths = self.index.lengths
        cov = np.where(lengths > 0, covered_per_field / np.maximum(lengths, 1), 0.0)
        coverage = cov.max(axis=1) if self.index.size else np.zeros(0)
        out = pd.DataFrame({
            "item": np.arange(self.index.size),
            "prompt_tokens": lengths[:, 0], "answer_tokens": lengths[:, 1],
            "prompt_n": self.index.n_used[:, 0], "answer_n": self.index.n_used[:, 1],
            "prompt_coverage": cov[:, 0], "answer_coverage": cov[:, 1],
            "coverage": coverage,
            "matched_ngrams": starts_per_field.sum(axis=1),
            "longest_span": self._longest,
            "matched_records": self._records,
        })
        out["matched_field"] = [_matched_field(p, a, self.config.clean_below)
                                for p, a in zip(out["prompt_coverage"], out["answer_coverage"])]
        out["too_short"] = (self.index.n_used == 0).all(axis=1)
        out["bucket"] = [self.config.bucket(c) for c in coverage]
        out["verdict"] = np.where(out["bucket"] == "clean", "clean", "exact")
        return out

    def evidence(self) -> pd.DataFrame:
        if not self._pairs:
            return _empty_pairs().assign(rank=pd.Series(dtype="int64"))
        pairs = _top(pd.concat(self._pairs, ignore_index=True), self.config.top_k).reset_index(drop=True)
        pairs["rank"] = pairs.groupby("item").cumcount() + 1
        return pairs


def scan_texts(index: BenchmarkIndex, texts: Sequence[str], record_ids: Sequence[str],
               top_k: int, max_chars: int = 256_000) -> BatchResult:
    """Probe records (already joined into one text each) against the index."""
    return summarise(_probe_strings(index, texts, max_chars), index, record_ids, top_k, rows=len(texts))


def scan_records(index: BenchmarkIndex, prompts: pa.ChunkedArray, answers: pa.ChunkedArray,
                 record_ids: Sequence[str], top_k: int, max_chars: int = 256_000) -> BatchResult:
    """:func:`scan_texts` of ``record_text(prompt, answer)`` per row of two Arrow string columns.

    The records are laid out by :func:`synthscope.core.text.record_layout` (same
    tokens as ``record_text``) and hashed straight from Arrow's byte buffer by
    :func:`synthscope.core.text.hash_ascii`: no Python string per record, no
    ``str.lower``. That is right for ASCII records, the bulk of most corpora;
    the hits of the others are dropped and those records are hashed again, as
    strings, by :func:`hash_tokens`. Hits keep their record's index and
    nothing downstream depends on the order records are probed in, so the
    result is that of :func:`scan_texts`.
    """
    parts: list[Hits] = []
    first_row = 0
    for chunk in record_layout(prompts, answers).chunks:
        is_ascii = pc.string_is_ascii(chunk).to_numpy(zero_copy_only=False)
        ascii_hits = _probe_bytes(index, chunk, max_chars)
        ascii_hits = ascii_hits.take(is_ascii[ascii_hits.text])
        others = np.flatnonzero(~is_ascii)
        other_hits = _probe_strings(index, chunk.take(others).to_pylist(), max_chars)
        other_hits.text = others[other_hits.text]
        for hits in (ascii_hits, other_hits):
            hits.text += first_row
            parts.append(hits)
        first_row += len(chunk)
    return summarise(Hits.concat(parts), index, record_ids, top_k, rows=len(prompts))


def _probe_strings(index: BenchmarkIndex, texts: Sequence[str], max_chars: int) -> Hits:
    """Hits of ``texts``, hashed in chunks of about ``max_chars`` characters (:func:`char_chunks`)."""
    parts: list[Hits] = []
    for start, end in char_chunks(texts, max_chars):
        hits = index.probe(hash_tokens(texts[start:end]))
        hits.text += start
        parts.append(hits)
    return Hits.concat(parts)


def _probe_bytes(index: BenchmarkIndex, texts: pa.Array, max_chars: int) -> Hits:
    """Hits of ``texts`` read as ASCII (each ends with ``"\\n"``), in chunks like :func:`_probe_strings`.

    Texts that are not ASCII are hashed too (their other bytes count as
    separators), since skipping them would cost a copy of the rest; the caller
    drops their hits.
    """
    if len(texts) == 0:
        return Hits.concat([])
    if not pa.types.is_large_string(texts.type):
        texts = texts.cast(pa.string())  # a no-op for the usual string column; 32-bit offsets below
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64 if pa.types.is_large_string(texts.type) else np.int32)
    offsets = offsets[texts.offset : texts.offset + len(texts) + 1].astype(np.int64)
    data = np.frombuffer(texts.buffers()[2], dtype=np.uint8)
    parts: list[Hits] = []
    start = 0
    while start < len(texts):
        end = max(start + 1, int(np.searchsorted(offsets, offsets[start] + max_chars, side="right")) - 1)
        hits = index.probe(hash_ascii(data[offsets[start] : offsets[end]], offsets[start : end + 1] - offsets[start]))
        hits.text += start
        parts.append(hits)
        start = end
    return Hits.concat(parts)
