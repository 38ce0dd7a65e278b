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
  field fits any n), the bucket and the verdict.

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


class NaiveIndex:
    """Every benchmark field's n-grams (at the field's n) → where they occur."""

    def __init__(self, prompts: Sequence[str], answers: Sequence[str], ns: Sequence[int]) -> None:
        self.tokens = [(tokenize(p), tokenize(a)) for p, a in zip(prompts, answers, strict=True)]
        self.n_used = [tuple(n_for(len(t), ns) for t in fields) for fields in self.tokens]
        self.places: dict[int, dict[tuple[str, ...], list[Place]]] = {n: defaultdict(list) for n in set(ns)}
        for item, fields in enumerate(self.tokens):
            for f, tokens in enumerate(fields):
                n = self.n_used[item][f]
                if n:
                    for pos, gram in enumerate(ngrams(tokens, n)):
                        self.places[n][gram].append((item, f, pos))

    def __len__(self) -> int:
        return len(self.tokens)


class NaiveScan:
    """Feed records one by one with :meth:`add`; :meth:`verdicts` gives one row per item."""

    def __init__(self, index: NaiveIndex, config: NgramConfig) -> None:
        self.index, self.config = index, config
        self.rows = 0
        self.matched: set[Place] = set()  # every matched n-gram position of every item field
        self.records = [0] * len(index)  # records matching each item
        self.longest = [0] * len(index)  # longest verbatim run with one record, per item

    def add(self, text: str) -> None:
        """Look up every n-gram of one record's text."""
        self.rows += 1
        tokens = tokenize(text)
        # (item, field) -> {(item_pos, record_pos)} for every n-gram the record shares with the field
        shared: dict[tuple[int, int], set[tuple[int, int]]] = defaultdict(set)
        for n, places in self.index.places.items():
            if places.keys().isdisjoint(ngrams(tokens, n)):
                continue  # the usual case, checked at C speed; the loop below would find nothing
            for record_pos, gram in enumerate(ngrams(tokens, n)):
                for item, f, item_pos in places.get(gram, ()):
                    shared[item, f].add((item_pos, record_pos))
        for (item, f), pairs in shared.items():
            self.matched.update((item, f, item_pos) for item_pos, _ in pairs)
            span = longest_run(pairs) + self.index.n_used[item][f] - 1
            self.longest[item] = max(self.longest[item], span)
        for item in {item for item, _ in shared}:
            self.records[item] += 1

    def verdicts(self) -> pd.DataFrame:
        rows = []
        for item, fields in enumerate(self.index.tokens):
            row: dict[str, object] = {"item": item}
            coverages = []
            matched_ngrams = 0
            for f, name in enumerate(FIELDS):
                n = self.index.n_used[item][f]
                starts = [pos for pos in range(len(fields[f])) if (item, f, pos) in self.matched]
                covered = {t for pos in starts for t in range(pos, pos + n)}
                coverage = len(covered) / len(fields[f]) if fields[f] else 0.0
                row[f"{name}_tokens"] = len(fields[f])
                row[f"{name}_n"] = n
                row[f"{name}_coverage"] = coverage
                coverages.append(coverage)
                matched_ngrams += len(starts)
            coverage = max(coverages)
            bucket = self.config.bucket(coverage)
            row.update(
                coverage=coverage,
                matched_ngrams=matched_ngrams,
                longest_span=self.longest[item],
                matched_records=self.records[item],
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
                   "matched_field", "too_short", "bucket", "verdict"]


def naive_verdicts(prompts: Sequence[str], answers: Sequence[str], records: Iterable[str],
                   config: NgramConfig | None = None) -> pd.DataFrame:
    """Verdicts of benchmark items ``(prompts[i], answers[i])`` against record texts."""
    config = config or NgramConfig()
    scan = NaiveScan(NaiveIndex(prompts, answers, config.ns), config)
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
