"""The exact n-gram verdicts computed the plain way: the oracle for tests and the benchmark.

No hashing, no numpy: n-grams are tuples of token strings (tokens from
:func:`synthscope.core.text.tokenize`, so the normalisation is the production one), the
benchmark index is a ``dict`` from n-gram to the places it occurs, and every
record is looked up n-gram by n-gram. It computes the same per-item fields as
:meth:`synthscope.contamination.ngram.ExactMatches.verdicts`:

* per field (prompt, answer): its token count, the ``n`` used (the largest
  configured ``n`` that fits the field, 0 if none does), the distinct n-gram
  positions of the field found in any record, and the coverage (share of the
  field's tokens inside a matched n-gram);
* per item: coverage = the larger field coverage, the matched n-gram positions
  of both fields, the longest verbatim run shared with one record (consecutive
  matched n-grams, ``k`` of them make ``k + n - 1`` tokens), the number of
  records that match it, the fields at or above ``clean_below``, too short (no
  field fits any n), the bucket and the verdict;
* with stop-grams (:class:`~synthscope.contamination.ngram.NgramConfig`): an
  n-gram found in at least ``item_stop_at`` distinct benchmark field texts, or
  matched by at least ``record_stop_at`` records that do not copy its item
  (a copy covers a field from ``dirty_from`` on its own), counts for nothing
  but ``discounted_ngrams``, and coverage is over the tokens inside a
  non-stop n-gram.

It is slow on purpose: readable beats fast here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from synthscope.contamination.ngram import NgramConfig
from synthscope.core.text import record_text, tokenize

FIELDS = ("prompt", "answer")
Place = tuple[int, int, int]  # (item, field, position of the n-gram's first token in the field)


def n_for(length: int, ns: Iterable[int]) -> int:
    """The largest configured n that fits a field of ``length`` tokens; 0 when none does."""
    return max((n for n in ns if n <= length), default=0)


def ngrams(tokens: Sequence[str], n: int) -> Iterator[tuple[str, ...]]:
    """Every window of ``n`` consecutive tokens, as a tuple, in order (``tokens[j:j + n]`` for each j)."""
    return zip(*(tokens[k:] for k in range(n)))


def longest_run(pairs: set[tuple[int, int]]) -> int:
    """The most consecutive ``(item_pos, record_pos)`` pairs ``(i, j), (i+1, j+1), …`` in ``pairs``."""
    best = 0
    for i, j in pairs:
        if (i - 1, j - 1) in pairs:
            continue  # not the start of a run
        length = 1
        while (i + length, j + length) in pairs:
            length += 1
        best = max(best, length)
    return best


def covered(starts: Iterable[int], n: int) -> set[int]:
    """The token positions inside ``[p, p + n)`` for each start ``p``."""
    return {t for p in starts for t in range(p, p + n)}


class NaiveIndex:
    """Every benchmark field's n-grams (at the field's n) → where they occur; which are stop-grams."""

    def __init__(self, prompts: Sequence[str], answers: Sequence[str], ns: Sequence[int],
                 config: NgramConfig | None = None) -> None:
        self.tokens = [(tokenize(p), tokenize(a)) for p, a in zip(prompts, answers, strict=True)]
        self.n_used = [tuple(n_for(len(t), ns) for t in fields) for fields in self.tokens]
        self.places: dict[int, dict[tuple[str, ...], list[Place]]] = {n: defaultdict(list) for n in set(ns)}
        texts: dict[tuple[int, tuple[str, ...]], set[tuple[str, ...]]] = defaultdict(set)  # distinct field texts
        for item, fields in enumerate(self.tokens):
            for f, tokens in enumerate(fields):
                n = self.n_used[item][f]
                if n:
                    for pos, gram in enumerate(ngrams(tokens, n)):
                        self.places[n][gram].append((item, f, pos))
                        texts[n, gram].add(tuple(tokens))
        at = config.item_stop_at(len(self.tokens)) if config is not None else None
        self.stop: set[Place] = {place for (n, gram), found in texts.items() if at is not None and len(found) >= at
                                 for place in self.places[n][gram]}
        self.coverable = [tuple(len(covered((pos for pos in range(len(tokens)) if self.n_used[item][f]
                                             and pos + self.n_used[item][f] <= len(tokens)
                                             and (item, f, pos) not in self.stop), self.n_used[item][f]))
                                for f, tokens in enumerate(fields)) for item, fields in enumerate(self.tokens)]

    def __len__(self) -> int:
        return len(self.tokens)


class NaiveScan:
    """Feed records one by one with :meth:`add`; :meth:`verdicts` gives one row per item."""

    def __init__(self, index: NaiveIndex, config: NgramConfig) -> None:
        self.index, self.config = index, config
        self.rows = 0
        self.matched: set[Place] = set()  # every counted n-gram position of every item field
        self.discounted: set[Place] = set()  # matched positions of stop-grams
        self.records = [0] * len(index)  # records matching each item
        self.longest = [0] * len(index)  # longest verbatim run with one record, per item
        # Records that match an item without copying it, when corpus stop-grams are on: decided at the end.
        self.pending: list[tuple[int, int, dict[int, set[tuple[int, int]]]]] = []  # (item, record, field -> pairs)

    def add(self, text: str) -> None:
        """Look up every n-gram of one record's text."""
        record = self.rows
        self.rows += 1
        tokens = tokenize(text)
        # (item, field) -> {(item_pos, record_pos)} for every n-gram the record shares with the field
        shared: dict[tuple[int, int], set[tuple[int, int]]] = defaultdict(set)
        for n, places in self.index.places.items():
            if places.keys().isdisjoint(ngrams(tokens, n)):
                continue  # the usual case, checked at C speed; the loop below would find nothing
            for record_pos, gram in enumerate(ngrams(tokens, n)):
                for item, f, item_pos in places.get(gram, ()):
                    if (item, f, item_pos) in self.index.stop:
                        self.discounted.add((item, f, item_pos))
                    else:
                        shared[item, f].add((item_pos, record_pos))
        by_item: dict[int, dict[int, set[tuple[int, int]]]] = defaultdict(dict)
        for (item, f), pairs in shared.items():
            by_item[item][f] = pairs
        for item, fields in by_item.items():
            coverage = max(len(covered((i for i, _ in pairs), self.index.n_used[item][f]))
                           / self.index.coverable[item][f] for f, pairs in fields.items())
            if self.config.stop_record_share > 0 and coverage < self.config.dirty_from:
                self.pending.append((item, record, fields))
            else:
                self._count(item, fields)

    def _count(self, item: int, fields: dict[int, set[tuple[int, int]]]) -> None:
        """One record's shared n-grams with one item, counted."""
        for f, pairs in fields.items():
            self.matched.update((item, f, item_pos) for item_pos, _ in pairs)
            span = longest_run(pairs) + self.index.n_used[item][f] - 1
            self.longest[item] = max(self.longest[item], span)
        self.records[item] += 1

    def _decide_pending(self) -> None:
        """Discount the n-grams that too many records (not copies) match; count the rest."""
        readers: dict[Place, set[int]] = defaultdict(set)
        for item, record, fields in self.pending:
            for f, pairs in fields.items():
                for item_pos, _ in pairs:
                    readers[item, f, item_pos].add(record)
        at = self.config.record_stop_at(self.rows)
        stop = {place for place, found in readers.items() if at is not None and len(found) >= at}
        for item, _, fields in self.pending:
            kept = {f: {(i, r) for i, r in pairs if (item, f, i) not in stop} for f, pairs in fields.items()}
            self.discounted.update((item, f, i) for f, pairs in fields.items() for i, _ in pairs
                                   if (item, f, i) in stop)
            kept = {f: pairs for f, pairs in kept.items() if pairs}
            if kept:
                self._count(item, kept)
        self.pending = []

    def verdicts(self) -> pd.DataFrame:
        self._decide_pending()
        rows = []
        for item, fields in enumerate(self.index.tokens):
            row: dict[str, object] = {"item": item}
            coverages = []
            matched_ngrams = discounted = 0
            for f, name in enumerate(FIELDS):
                n = self.index.n_used[item][f]
                starts = [pos for pos in range(len(fields[f])) if (item, f, pos) in self.matched]
                coverable = self.index.coverable[item][f]
                coverage = len(covered(starts, n)) / coverable if coverable else 0.0
                row[f"{name}_tokens"] = len(fields[f])
                row[f"{name}_n"] = n
                row[f"{name}_coverage"] = coverage
                coverages.append(coverage)
                matched_ngrams += len(starts)
                discounted += sum((item, f, pos) in self.discounted and (item, f, pos) not in self.matched
                                  for pos in range(len(fields[f])))
            coverage = max(coverages)
            bucket = self.config.bucket(coverage)
            row.update(
                coverage=coverage,
                matched_ngrams=matched_ngrams,
                longest_span=self.longest[item],
                matched_records=self.records[item],
                discounted_ngrams=discounted,
                matched_field="+".join(name for name, c in zip(FIELDS, coverages)
                                       if c > 0 and c >= self.config.clean_below),
                too_short=all(n == 0 for n in self.index.n_used[item]),
                bucket=bucket,
                verdict="clean" if bucket == "clean" else "exact",
            )
            rows.append(row)
        return pd.DataFrame(rows)


VERDICT_COLUMNS = ["item", "prompt_tokens", "answer_tokens", "prompt_n", "answer_n", "prompt_coverage",
                   "answer_coverage", "coverage", "matched_ngrams", "longest_span", "matched_records",
                   "matched_field", "too_short", "bucket", "verdict", "discounted_ngrams"]


def naive_verdicts(prompts: Sequence[str], answers: Sequence[str], records: Iterable[str],
                   config: NgramConfig | None = None) -> pd.DataFrame:
    """Verdicts of benchmark items ``(prompts[i], answers[i])`` against record texts."""
    config = config or NgramConfig()
    scan = NaiveScan(NaiveIndex(prompts, answers, config.ns, config), config)
    for text in records:
        scan.add(text)
    return scan.verdicts()


def parquet_record_texts(path: Path) -> Iterator[str]:
    """The scanned text of every record of a workspace ``records.parquet``, one row group at a time."""
    pf = pq.ParquetFile(path)
    for g in range(pf.num_row_groups):
        table = pf.read_row_group(g, columns=["prompt", "answer"])
        for prompt, answer in zip(table.column("prompt").to_pylist(), table.column("answer").to_pylist()):
            yield record_text(prompt or "", answer or "")


def naive_scan_files(benchmark: Path, synthetic: Path, config: NgramConfig | None = None) -> pd.DataFrame:
    """Verdicts of the benchmark ``records.parquet`` against a synthetic ``records.parquet``."""
    bench = pq.read_table(benchmark, columns=["prompt", "answer"])
    prompts = [p or "" for p in bench.column("prompt").to_pylist()]
    answers = [a or "" for a in bench.column("answer").to_pylist()]
    return naive_verdicts(prompts, answers, parquet_record_texts(synthetic), config)


def compare_verdicts(expected: pd.DataFrame, actual: pd.DataFrame) -> list[str]:
    """Differences between two verdict tables on :data:`VERDICT_COLUMNS` (empty when identical).

    Coverages are compared exactly: both sides divide the same two integers.
    """
    problems = []
    if len(expected) != len(actual):
        return [f"{len(expected)} items expected, {len(actual)} found"]
    a = expected[VERDICT_COLUMNS].reset_index(drop=True)
    b = actual.sort_values("item")[VERDICT_COLUMNS].reset_index(drop=True)
    for column in VERDICT_COLUMNS:
        left, right = a[column].tolist(), b[column].tolist()
        bad = [i for i, (x, y) in enumerate(zip(left, right)) if x != y]
        if bad:
            i = bad[0]
            problems.append(f"{column}: {len(bad)} items differ, first item {a['item'][i]}: "
                            f"expected {left[i]!r}, found {right[i]!r}")
    return problems
