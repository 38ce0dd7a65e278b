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
    """Settings of the exact stage; defaults can be overridden in ``synthscope.toml``.

    Stop-grams: frequent n-grams are not evidence
        Boilerplate (``from typing import List``, licence headers, the lettered
        choices of a multiple-choice format, chat templates, a textbook
        ``is_prime`` loop) is shared by texts that have nothing else in
        common. An item n-gram is *discounted* — it adds nothing to coverage,
        matched n-grams, spans, matched records or the longest span — when it
        is frequent in either of two places, both learned during the scan:

        * the benchmark: it occurs in at least
          ``max(stop_item_min, ceil(stop_item_share * items))`` distinct
          benchmark field texts (a field text repeated in several items counts
          once, so duplicated items do not hide each other). That is the
          benchmark's own format, or context that several items share (the
          passages of MMLU's US-history questions: 963 n-grams of its 204 items);
        * the scanned corpus: at least ``max(stop_record_min,
          ceil(stop_record_share * records))`` distinct records match it while
          not being a copy of its item. A *copy* is a record whose own coverage
          of a field reaches ``dirty_from``; it is never discounted and does not
          count towards the frequency, so an item leaked many times does not
          turn its own n-grams into stop-grams.

        Coverage is then over the field's *informative* tokens, those inside at
        least one n-gram that is not a benchmark stop-gram::

            coverage(field) = |tokens inside a counted matched n-gram| / |tokens inside a non-stop n-gram|

        so a verbatim copy still covers 1.0, and a record that shares only the
        scaffolding covers 0. A field made of stop-grams only cannot be
        matched. Without stop-grams (both shares 0) the denominator is the
        field's length and every number is what it was before.

        A share of 0 turns that source off.

        Measured (``python -m bench.stopgram_bench``, BENCHMARKS.md), exact stage
        alone: on CodeAlpaca-2k against HumanEval they change nothing — 5
        items flagged before and after (HumanEval/13 dirty; /94, /96, /127,
        /156 answer-only partials from shared ``is_prime`` and Roman-numeral
        building blocks, labelled "same topic" by hand), 1 counted, 0
        stop-grams learned: those blocks are matched by 1-3 records and sit
        in one HumanEval field each (no 13-gram of HumanEval is in more than
        two items), rare by both counts; the evidence tiers already leave them
        uncounted. What the benchmark side learns: MMLU abstract algebra 41
        n-gram positions (its True/False statement scaffolding, 23 items), US
        history 5,270 (passages that several questions share, 33 items),
        HumanEval and MMLU sociology none. Cost, CPU time on one core with the
        defaults against both shares 0, interleaved: 1.19x on CodeAlpaca-2k
        (about 5 ms more per scan: one more batch's worth of pair bookkeeping),
        0.98-1.03x on 50 MB of generated records (two runs), 1.26x in the worst
        case (100,000 records that all share a 30-token block with an item).
        With both shares 0 the verdicts equal those of the code before
        stop-grams.
    """

    ns: tuple[int, ...] = (13, 8)
    clean_below: float = 0.20
    dirty_from: float = 0.80
    top_k: int = 5
    stop_item_share: float = 0.02
    """Share of the benchmark's items from which an n-gram is the benchmark's scaffolding (0: off)."""
    stop_item_min: int = 3
    """Fewest distinct benchmark field texts that make a benchmark stop-gram, whatever the share."""
    stop_record_share: float = 0.005
    """Share of the scanned records from which an item n-gram is common in the corpus (0: off)."""
    stop_record_min: int = 20
    """Fewest distinct records (not copies of the item) that make a corpus stop-gram, whatever the share."""

    def __post_init__(self) -> None:
        if not self.ns or min(self.ns) < 1:
            raise ValueError(f"n-gram sizes must be positive integers, got {self.ns}")
        if not 0 <= self.clean_below <= self.dirty_from <= 1:
            raise ValueError(
                "need 0 <= clean_below <= dirty_from <= 1, "
                f"got clean_below={self.clean_below}, dirty_from={self.dirty_from}"
            )
        for name in ("stop_item_share", "stop_record_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 (off) and 1, got {getattr(self, name)}")
        for name in ("stop_item_min", "stop_record_min"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be at least 2 (a stop-gram is shared), got {getattr(self, name)}")

    def bucket(self, coverage: float) -> str:
        if coverage >= self.dirty_from:
            return "dirty"
        if coverage >= self.clean_below:
            return "partial"
        return "clean"

    def item_stop_at(self, items: int) -> int | None:
        """Distinct benchmark field texts from which an n-gram is a stop-gram; ``None`` when off."""
        return _stop_at(self.stop_item_share, self.stop_item_min, items)

    def record_stop_at(self, records: int) -> int | None:
        """Distinct records (copies aside) from which an item n-gram is a stop-gram; ``None`` when off."""
        return _stop_at(self.stop_record_share, self.stop_record_min, records)


def _stop_at(share: float, least: int, total: int) -> int | None:
    """``max(least, ceil(share * total))``: the count that is at least ``share`` of ``total``; None when off."""
    if share <= 0:
        return None
    return max(least, math.ceil(share * total - 1e-9))  # 0.02 * 150 is 3.0000000000000004


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


def _distinct(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` by sorting: numpy 2.4's plain ``unique`` hashes integers, about 40x slower
    than a sort on a million of them (1.2 s against 27 ms)."""
    values = np.sort(values)
    keep = np.ones(len(values), dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    return values[keep]


def _fingerprints(batch: TokenBatch) -> np.ndarray:
    """A 64-bit fingerprint of each text's token sequence: ``sum_i h_i * (2 i + 1)  (mod 2**64)`` over its
    token hashes ``h_i``; equal for equal sequences, and for different ones of the same length with
    probability about ``2**-64`` (0 for an empty text)."""
    position = np.arange(len(batch.hashes), dtype=np.int64) - np.repeat(batch.offsets[:-1], np.diff(batch.offsets))
    prefix = np.zeros(len(batch.hashes) + 1, dtype=np.uint64)
    np.cumsum(batch.hashes * (2 * position + 1).astype(np.uint64), out=prefix[1:])  # wraps around mod 2**64
    return prefix[batch.offsets[1:]] - prefix[batch.offsets[:-1]]


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
    """The n-grams of every benchmark item, per field, ready to probe record batches.

    Besides the postings it keeps, per *flat* token position (see
    ``field_offset``), the benchmark document frequency of the n-gram that
    starts there (``item_df``: distinct field texts containing it; 0 where no
    n-gram starts), and the stop-gram settings of the scan that probes with it
    (:meth:`set_stop_grams`; none until then).
    """

    def __init__(self, prompts: Sequence[str], answers: Sequence[str], ns: Sequence[int]) -> None:
        if len(prompts) != len(answers):
            raise ValueError("prompts and answers must have the same length")
        self.ns = tuple(sorted(set(ns), reverse=True))
        self.size = len(prompts)
        self.lengths = np.zeros((self.size, len(FIELDS)), dtype=np.int32)
        self.n_used = np.zeros((self.size, len(FIELDS)), dtype=np.int16)  # 0: shorter than every n
        content = np.zeros((self.size, len(FIELDS), 2), dtype=np.uint64)  # fingerprint and length of each field
        parts: dict[int, list[tuple[np.ndarray, ...]]] = {n: [] for n in self.ns}
        for f, texts in enumerate((prompts, answers)):
            batch = hash_tokens(list(texts))
            self.lengths[:, f] = np.diff(batch.offsets)
            content[:, f, 0], content[:, f, 1] = _fingerprints(batch), self.lengths[:, f]
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
        total = int(self.field_offset[-1])
        self.item_df = np.zeros(total, dtype=np.int32)
        texts = np.unique(content.reshape(-1, 2), axis=0, return_inverse=True)[1].reshape(self.size, len(FIELDS))
        for postings in self.postings.values():
            if len(postings.hashes) == 0:
                continue
            # Postings are sorted by hash: number them by distinct hash, count distinct field texts per hash.
            group = np.repeat(np.arange(len(postings.distinct), dtype=np.int64), postings.count)
            pairs = _distinct(group * (self.size * len(FIELDS)) + texts[postings.item, postings.field])
            df = np.bincount(pairs // (self.size * len(FIELDS)), minlength=len(postings.distinct))
            self.item_df[self.flat(postings.item, postings.field, postings.pos)] = df[group]
        self.set_stop_grams(None)

    def flat(self, item: np.ndarray, fld: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Flat token positions (int64) of ``pos`` in field ``fld`` of ``item``."""
        return self.field_offset[item.astype(np.int64) * len(FIELDS) + fld] + pos

    def flat_n(self) -> np.ndarray:
        """The n used at every flat position (that of its field), int64."""
        return np.repeat(self.n_used.reshape(-1).astype(np.int64), self.lengths.reshape(-1))

    def covered(self, starts: np.ndarray) -> np.ndarray:
        """Per ``(item, field)``: tokens inside ``[p, p + n)`` for the flat n-gram starts ``p`` (a mask)."""
        total = int(self.field_offset[-1])
        at = np.flatnonzero(starts)
        diff = np.bincount(at, minlength=total + 1) - np.bincount(at + self.flat_n()[at], minlength=total + 1)
        inside = np.concatenate(([0], np.cumsum(np.cumsum(diff)[:-1] > 0)))
        return (inside[self.field_offset[1:]] - inside[self.field_offset[:-1]]).reshape(self.size, len(FIELDS))

    def set_stop_grams(self, config: NgramConfig | None) -> None:
        """Take ``config``'s stop-gram settings (``None``: no stop-grams) for every later probe.

        Sets ``stop`` (flat positions whose n-gram is a benchmark stop-gram),
        ``coverable`` (per field, tokens inside a non-stop n-gram: the coverage
        denominator) and ``copy_at`` (the coverage from which a record copies
        a field; ``None`` when corpus stop-grams are off, and then every pair
        is final in its batch).
        """
        at = config.item_stop_at(self.size) if config is not None else None
        self.stop_at = at
        self.stop = self.item_df >= at if at is not None else np.zeros(len(self.item_df), dtype=bool)
        self.coverable = self.covered((self.item_df > 0) & ~self.stop)
        self.copy_at = config.dirty_from if config is not None and config.stop_record_share > 0 else None

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
    """What a batch of records contributes to a scan; small and picklable.

    A pair is *final* when no corpus stop-gram can change it: always without
    corpus stop-grams, else when the record copies a field of the item
    (``BenchmarkIndex.copy_at``). The others are *pending*: their hits travel
    to :class:`ExactMatches`, which decides them once every record is counted.
    """

    rows: int
    marks: np.ndarray  # int64 flat positions (see BenchmarkIndex.field_offset) of n-grams matched by final pairs
    discounted: np.ndarray  # int64 flat positions of matched benchmark stop-grams
    pairs: pd.DataFrame  # final pairs, per (item, record): stats and spans, only each item's top_k
    records_per_item: np.ndarray  # int64, records of final pairs per item in this batch
    longest_per_item: np.ndarray  # int64, longest verbatim span of final pairs per item in this batch
    pending: Hits | None = None  # hits of pending pairs (no benchmark stop-grams); text indexes pending_ids
    pending_ids: list[str] = field(default_factory=list)
    pending_discounted: np.ndarray | None = None  # int64 rows (item, text, benchmark stop-grams matched)


def summarise(hits: Hits, index: BenchmarkIndex, record_ids: Sequence[str], top_k: int,
              rows: int) -> BatchResult:
    """Reduce raw hits to coverage marks and per-pair evidence.

    Hits of benchmark stop-grams only leave a mark in ``discounted`` and a
    per-pair count (``discounted_ngrams``); pending pairs (see
    :class:`BatchResult`) keep their hits.
    """
    records_per_item = np.zeros(index.size, dtype=np.int64)
    longest_per_item = np.zeros(index.size, dtype=np.int64)
    none = np.empty(0, np.int64)
    if len(hits) == 0:
        return BatchResult(rows, none, none, _empty_pairs(), records_per_item, longest_per_item)
    hits = _distinct_sorted(hits)
    flat = index.flat(hits.item, hits.field, hits.item_pos)
    stop = index.stop[flat]
    discounted, stopped = none, None
    if stop.any():
        stopped = hits.take(stop)
        stopped = stopped.take(_starts(stopped.item, stopped.text, flat[stop]))  # one per (item, record, n-gram)
        discounted = _distinct(flat[stop])
        hits, flat = hits.take(~stop), flat[~stop]
        if len(hits) == 0:
            return BatchResult(rows, none, discounted, _empty_pairs(), records_per_item, longest_per_item)

    pairs = _pair_stats(hits, index)
    pairs["discounted_ngrams"] = 0 if stopped is None else _per_pair(
        stopped.item, stopped.text, None, pairs["item"].to_numpy(), pairs["text"].to_numpy())
    result = BatchResult(rows, none, discounted, _empty_pairs(), records_per_item, longest_per_item)
    if index.copy_at is not None:
        final = pairs["coverage"].to_numpy() >= index.copy_at
        if not final.all():
            key = hits.item.astype(np.int64) * rows + hits.text
            wait = np.isin(key, pairs["item"].to_numpy(np.int64)[~final] * rows + pairs["text"].to_numpy()[~final])
            pending = hits.take(wait)
            texts, pending.text = np.unique(pending.text, return_inverse=True)
            result.pending, result.pending_ids = pending, [record_ids[t] for t in texts.tolist()]
            result.pending_discounted = np.stack([
                pairs["item"].to_numpy(np.int64)[~final], np.searchsorted(texts, pairs["text"].to_numpy()[~final]),
                pairs["discounted_ngrams"].to_numpy(np.int64)[~final]], axis=1)
            hits, flat, pairs = hits.take(~wait), flat[~wait], pairs[final]
    if len(pairs):
        result.marks = _distinct(flat)
        np.add.at(records_per_item, pairs["item"].to_numpy(), 1)
        np.maximum.at(longest_per_item, pairs["item"].to_numpy(), pairs["longest_span"].to_numpy())
        pairs["record_id"] = [record_ids[t] for t in pairs["text"]]
        pairs = _with_spans(_top(pairs, top_k), hits)
        result.pairs = pairs.drop(columns=["text"]).reset_index(drop=True)
    return result


def _per_pair(item: np.ndarray, text: np.ndarray, weight: np.ndarray | None, pair_item: np.ndarray,
              pair_text: np.ndarray) -> np.ndarray:
    """For each pair ``(pair_item[j], pair_text[j])``: how many rows ``(item, text)`` equal it (int64), or
    the sum of their ``weight``."""
    stride = int(max(text.max(initial=0), pair_text.max(initial=0))) + 1
    keys, inverse = np.unique(item.astype(np.int64) * stride + text, return_inverse=True)
    sums = np.bincount(inverse, weights=weight, minlength=len(keys))
    want = pair_item.astype(np.int64) * stride + pair_text
    at = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
    found = keys[at] == want if len(keys) else np.zeros(len(want), dtype=bool)
    return np.where(found, sums[at] if len(keys) else 0, 0).astype(np.int64)


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
                 "item_prompt_spans", "item_answer_spans", "record_spans", "discounted_ngrams"]


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
    coverage = covered / index.coverable[g_item, g_field]

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
class _Corpus:
    """What the corpus stop-grams make of the pending pairs, once every record is counted."""

    counted: np.ndarray  # int64 flat positions matched by pending pairs and not discounted
    discounted: np.ndarray  # int64 flat positions matched by pending pairs, all of them corpus stop-grams
    pairs: pd.DataFrame  # pending pairs that keep evidence: each item's top_k, with spans
    records: np.ndarray  # int64 per item: pending records that keep at least one n-gram
    longest: np.ndarray  # int64 per item: their longest verbatim span
    stop_grams: int  # distinct item n-gram positions discounted as common in the corpus


@dataclass
class ExactMatches:
    """Accumulates batch results into per-item verdicts and top evidence.

    Creating one applies ``config``'s stop-gram settings to ``index``
    (:meth:`BenchmarkIndex.set_stop_grams`), so create it before probing with
    the index. Corpus stop-grams are decided when :meth:`verdicts` or
    :meth:`evidence` is first asked for, from every record added so far.

    Memory: besides each item's top pairs, it keeps the hits of every pair
    that is not a copy (23 bytes each) until then, since any of them may keep
    or lose its n-grams. That is what boilerplate makes. Measured: 100,000
    records sharing a 30-token block with one item hold 1.8 million hits
    (41 MB), the peak RSS is 180 MB higher while they are decided, and the
    stage takes 1.25x its time without stop-grams (1.83 s against 1.46 s).
    Copies (most of a contaminated corpus's matches) are reduced in their
    batch, as before.
    """

    index: BenchmarkIndex
    config: NgramConfig
    rows: int = 0
    _starts: np.ndarray = field(init=False)
    _discounted: np.ndarray = field(init=False)
    _records: np.ndarray = field(init=False)
    _longest: np.ndarray = field(init=False)
    _pairs: list[pd.DataFrame] = field(default_factory=list)
    _pending: list[Hits] = field(default_factory=list)
    _pending_ids: list[str] = field(default_factory=list)
    _pending_discounted: list[np.ndarray] = field(default_factory=list)
    _corpus: _Corpus | None = None

    def __post_init__(self) -> None:
        self.index.set_stop_grams(self.config)
        total = int(self.index.field_offset[-1])
        self._starts = np.zeros(total, dtype=bool)
        self._discounted = np.zeros(total, dtype=bool)
        self._records = np.zeros(self.index.size, dtype=np.int64)
        self._longest = np.zeros(self.index.size, dtype=np.int64)

    def add(self, result: BatchResult) -> None:
        self.rows += result.rows
        self._corpus = None
        self._starts[result.marks] = True
        self._discounted[result.discounted] = True
        self._records += result.records_per_item
        np.maximum(self._longest, result.longest_per_item, out=self._longest)
        if result.pending is not None and len(result.pending):
            pending = result.pending.take(slice(None))
            pending.text = pending.text + len(self._pending_ids)
            self._pending.append(pending)
            if result.pending_discounted is not None:
                self._pending_discounted.append(result.pending_discounted + [0, len(self._pending_ids), 0])
            self._pending_ids.extend(result.pending_ids)
        if len(result.pairs):
            self._pairs.append(result.pairs)
            if sum(len(p) for p in self._pairs) > 4 * self.config.top_k * max(self.index.size, 1):
                self._pairs = [_top(pd.concat(self._pairs, ignore_index=True), self.config.top_k)]

    def _decide_corpus(self) -> _Corpus:
        """Count distinct records per item n-gram over the pending pairs, discount the frequent ones,
        and reduce what is left to pair stats (:func:`_pair_stats`, as a batch would)."""
        if self._corpus is not None:
            return self._corpus
        none = np.empty(0, dtype=np.int64)
        records, longest = np.zeros(self.index.size, dtype=np.int64), np.zeros(self.index.size, dtype=np.int64)
        hits = Hits.concat(self._pending)
        if len(hits) == 0:
            self._corpus = _Corpus(none, none, _empty_pairs(), records, longest, 0)
            return self._corpus
        hits = _distinct_sorted(hits)
        flat = self.index.flat(hits.item, hits.field, hits.item_pos)
        readers = max(len(self._pending_ids), 1)
        positions, df = np.unique(_distinct(flat * readers + hits.text) // readers, return_counts=True)
        at = self.config.record_stop_at(self.rows)
        stop_positions = positions[df >= at] if at is not None else none
        stop = np.isin(flat, stop_positions)
        stopped = hits.take(stop)
        stopped = stopped.take(_starts(stopped.item, stopped.text, flat[stop]))  # one per (item, record, n-gram)
        before = np.concatenate([np.empty((0, 3), dtype=np.int64), *self._pending_discounted])
        kept = hits.take(~stop)
        pairs = None
        if len(kept):
            pairs = _pair_stats(kept, self.index)
            item, text = pairs["item"].to_numpy(), pairs["text"].to_numpy()
            pairs["discounted_ngrams"] = (_per_pair(before[:, 0], before[:, 1], before[:, 2], item, text)
                                          + _per_pair(stopped.item, stopped.text, None, item, text))
            np.add.at(records, pairs["item"].to_numpy(), 1)
            np.maximum.at(longest, pairs["item"].to_numpy(), pairs["longest_span"].to_numpy())
            pairs["record_id"] = [self._pending_ids[t] for t in pairs["text"]]
            pairs = _with_spans(_top(pairs, self.config.top_k), kept).drop(columns=["text"]).reset_index(drop=True)
        self._corpus = _Corpus(_distinct(flat[~stop]), _distinct(flat[stop]),
                               _empty_pairs() if pairs is None else pairs, records, longest, len(stop_positions))
        return self._corpus

    def stop_grams(self) -> dict[str, int | None]:
        """What was discounted, for the scan manifest: thresholds (``None``: off) and counts.

        Counts are of item n-gram positions (an n-gram in five items is
        five): ``benchmark``, every benchmark stop-gram; ``benchmark_matched``,
        those some record matched; ``corpus``, those too many records matched.
        """
        corpus = self._decide_corpus()
        return {"item_threshold": self.index.stop_at, "benchmark": int(self.index.stop.sum()),
                "benchmark_matched": int(self._discounted.sum()),
                "record_threshold": self.config.record_stop_at(self.rows), "corpus": corpus.stop_grams}

    def verdicts(self) -> pd.DataFrame:
        corpus = self._decide_corpus()
        counted = self._starts.copy()
        counted[corpus.counted] = True
        discounted = self._discounted.copy()
        discounted[corpus.discounted] = True
        discounted &= ~counted
        offsets = self.index.field_offset
        shape = (self.index.size, len(FIELDS))
        covered_per_field = self.index.covered(counted)
        starts = np.concatenate(([0], np.cumsum(counted)))
        starts_per_field = (starts[offsets[1:]] - starts[offsets[:-1]]).reshape(shape)
        dropped = np.concatenate(([0], np.cumsum(discounted)))
        dropped_per_field = (dropped[offsets[1:]] - dropped[offsets[:-1]]).reshape(shape)
        coverable = self.index.coverable
        lengths = self.index.lengths
        cov = np.where(coverable > 0, covered_per_field / np.maximum(coverable, 1), 0.0)
        coverage = cov.max(axis=1) if self.index.size else np.zeros(0)
        out = pd.DataFrame({
            "item": np.arange(self.index.size),
            "prompt_tokens": lengths[:, 0], "answer_tokens": lengths[:, 1],
            "prompt_n": self.index.n_used[:, 0], "answer_n": self.index.n_used[:, 1],
            "prompt_coverage": cov[:, 0], "answer_coverage": cov[:, 1],
            "coverage": coverage,
            "matched_ngrams": starts_per_field.sum(axis=1),
            "longest_span": np.maximum(self._longest, corpus.longest),
            "matched_records": self._records + corpus.records,
            "discounted_ngrams": dropped_per_field.sum(axis=1),
        })
        out["matched_field"] = [_matched_field(p, a, self.config.clean_below)
                                for p, a in zip(out["prompt_coverage"], out["answer_coverage"])]
        out["too_short"] = (self.index.n_used == 0).all(axis=1)
        out["bucket"] = [self.config.bucket(c) for c in coverage]
        out["verdict"] = np.where(out["bucket"] == "clean", "clean", "exact")
        return out

    def evidence(self) -> pd.DataFrame:
        corpus = self._decide_corpus()
        frames = [p for p in [*self._pairs, corpus.pairs] if len(p)]
        if not frames:
            return _empty_pairs().assign(rank=pd.Series(dtype="int64"))
        pairs = _top(pd.concat(frames, ignore_index=True), self.config.top_k).reset_index(drop=True)
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
