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

Hot path: token hashes come from :func:`analysis.text.hash_tokens`, window
hashes from :func:`analysis.text.ngram_hashes`; each window is first tested
against a bitmap of the benchmark's n-gram hashes (one random memory read), and
only the rare survivors are looked up exactly with a binary search.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.text import TokenBatch, hash_tokens, ngram_hashes

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

    @classmethod
    def build(cls, hashes: np.ndarray, item: np.ndarray, fld: np.ndarray, pos: np.ndarray) -> _Postings:
        order = np.argsort(hashes, kind="stable")
        bits = int(min(max(math.ceil(math.log2(max(len(hashes), 1) * 16)), 16), 28))
        bitmap = np.zeros(1 << bits, dtype=bool)
        bitmap[(hashes >> np.uint64(64 - bits)).astype(np.int64)] = True
        return cls(hashes[order], item[order], fld[order], pos[order], bitmap, bits)

    def lookup(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each window hash, the matching posting indexes.

        Returns ``(window_index, posting_index)`` pairs, one per match.
        """
        maybe = np.flatnonzero(self.bitmap[(windows >> np.uint64(64 - self.bits)).astype(np.int64)])
        lo = np.searchsorted(self.hashes, windows[maybe], side="left")
        hi = np.searchsorted(self.hashes, windows[maybe], side="right")
        counts = hi - lo
        found = counts > 0
        maybe, lo, counts = maybe[found], lo[found], counts[found]
        window_index = np.repeat(maybe, counts)
        # posting index: lo, lo+1, ..., hi-1 for each found window
        first = np.repeat(lo - np.cumsum(counts) + counts, counts)
        posting_index = first + np.arange(len(window_index))
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
        parts = []
        for n, postings in self.postings.items():
            if len(postings.hashes) == 0:
                continue
            hashes, text, pos = _windows(batch, n)
            w, p = postings.lookup(hashes)
            parts.append(Hits(text[w], pos[w].astype(np.int32), postings.item[p],
                              postings.field[p], postings.pos[p],
                              np.full(len(w), n, dtype=np.int16)))
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
    df = pd.DataFrame({
        "item": hits.item, "text": hits.text, "field": hits.field,
        "item_pos": hits.item_pos, "text_pos": hits.text_pos, "n": hits.n,
    }).drop_duplicates()

    flat = index.field_offset[df["item"].to_numpy() * len(FIELDS) + df["field"].to_numpy()]
    marks = flat + df["item_pos"].to_numpy()
    mark_keys = pd.DataFrame({"mark": marks, "n": df["n"].to_numpy()}).drop_duplicates("mark")

    pairs = _pair_stats(df, index)
    counts = pairs.groupby("item").size()
    records_per_item[counts.index.to_numpy()] = counts.to_numpy()
    longest = pairs.groupby("item")["longest_span"].max()
    longest_per_item[longest.index.to_numpy()] = longest.to_numpy()
    pairs = (pairs.sort_values(["item", "coverage", "longest_span", "matched_ngrams"],
                               ascending=[True, False, False, False])
             .groupby("item", sort=False).head(top_k))
    pairs = _with_spans(pairs, df)
    pairs["record_id"] = [record_ids[t] for t in pairs["text"]]
    return BatchResult(rows, mark_keys["mark"].to_numpy(np.int64), mark_keys["n"].to_numpy(np.int16),
                       pairs.drop(columns=["text"]).reset_index(drop=True), records_per_item,
                       longest_per_item)


_PAIR_COLUMNS = ["item", "record_id", "coverage", "prompt_coverage", "answer_coverage",
                 "matched_ngrams", "longest_span", "matched_field",
                 "item_prompt_spans", "item_answer_spans", "record_spans"]


def _empty_pairs() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in _PAIR_COLUMNS})


def _pair_stats(df: pd.DataFrame, index: BenchmarkIndex) -> pd.DataFrame:
    """Coverage, matched n-grams and longest verbatim span per (item, record)."""
    # Coverage of each field by this record: union of [item_pos, item_pos + n).
    starts = (df[["item", "text", "field", "item_pos", "n"]].drop_duplicates()
              .sort_values(["item", "text", "field", "item_pos"]))
    gap = starts.groupby(["item", "text", "field"])["item_pos"].diff().fillna(np.inf)
    starts["new_tokens"] = np.minimum(gap.to_numpy(), starts["n"].to_numpy())
    per_field = starts.groupby(["item", "text", "field"]).agg(
        covered=("new_tokens", "sum"), matched=("item_pos", "size")).reset_index()
    per_field["length"] = index.lengths[per_field["item"], per_field["field"]]
    per_field["coverage"] = per_field["covered"] / per_field["length"]

    wide = per_field.pivot_table(index=["item", "text"], columns="field", values="coverage",
                                 fill_value=0.0)
    pairs = pd.DataFrame(index=wide.index)
    pairs["prompt_coverage"] = wide.get(0, 0.0)
    pairs["answer_coverage"] = wide.get(1, 0.0)
    pairs["coverage"] = pairs[["prompt_coverage", "answer_coverage"]].max(axis=1)
    pairs["matched_ngrams"] = per_field.groupby(["item", "text"])["matched"].sum()

    # Longest verbatim span: runs of consecutive positions on one diagonal.
    diag = df.assign(diag=df["item_pos"] - df["text_pos"]).sort_values(
        ["item", "text", "field", "diag", "item_pos"])
    step = diag.groupby(["item", "text", "field", "diag"])["item_pos"].diff()
    diag["run"] = (step != 1).cumsum()
    runs = diag.groupby(["item", "text", "run"]).agg(length=("item_pos", "size"), n=("n", "first"))
    runs["span"] = runs["length"] + runs["n"] - 1
    pairs["longest_span"] = runs.groupby(["item", "text"])["span"].max()
    pairs = pairs.reset_index()
    pairs["matched_field"] = [
        _matched_field(p, a, 0.0) for p, a in zip(pairs["prompt_coverage"], pairs["answer_coverage"])
    ]
    return pairs


def _with_spans(pairs: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """Token intervals on both sides for the (few) pairs kept as evidence."""
    keep = df.merge(pairs[["item", "text"]], on=["item", "text"])
    spans: dict[tuple[int, int], dict[str, list[list[int]]]] = {}
    for (item, text), group in keep.groupby(["item", "text"]):
        entry = {"item_prompt_spans": [], "item_answer_spans": [], "record_spans": []}
        for f, name in enumerate(("item_prompt_spans", "item_answer_spans")):
            g = group[group["field"] == f]
            if len(g):
                entry[name] = merge_intervals(g["item_pos"].to_numpy(), int(g["n"].iloc[0]))
        record_side: list[list[int]] = []
        for n_value, g in group.groupby("n"):
            record_side += merge_intervals(g["text_pos"].to_numpy(), int(n_value))
        entry["record_spans"] = _union(record_side)
        spans[(int(item), int(text))] = entry
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
        pairs = pd.concat(self._pairs, ignore_index=True)
        pairs = (pairs.sort_values(["item", "coverage", "longest_span", "matched_ngrams"],
                                   ascending=[True, False, False, False])
                 .groupby("item", sort=False).head(self.config.top_k).reset_index(drop=True))
        pairs["rank"] = pairs.groupby("item").cumcount() + 1
        return pairs


def scan_texts(index: BenchmarkIndex, texts: Sequence[str], record_ids: Sequence[str],
               top_k: int, max_chars: int = 4_000_000) -> BatchResult:
    """Probe records (already joined into one text each) against the index.

    Texts are hashed in chunks of about ``max_chars`` characters so memory stays
    bounded whatever the row-group size.
    """
    parts: list[Hits] = []
    start = 0
    while start < len(texts):
        end, size = start, 0
        while end < len(texts) and (end == start or size + len(texts[end]) <= max_chars):
            size += len(texts[end])
            end += 1
        hits = index.probe(hash_tokens(texts[start:end]))
        hits.text += start
        parts.append(hits)
        start = end
    return summarise(Hits.concat(parts), index, record_ids, top_k, rows=len(texts))
