"""Reading scan results: the grid, per-item verdicts, and an item's evidence ready to highlight.

Everything here is a query over the workspace's DuckDB views (see
:mod:`analysis.schemas`) plus :func:`char_ranges`, which turns the token
intervals stored as evidence into character ranges of the original texts, so a
viewer can mark exactly the words the n-grams matched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from analysis import jobs
from analysis.contamination.ngram import NgramConfig
from analysis.text import record_text, token_spans
from analysis.workspace import DatasetRef, Workspace

ITEM_COLUMNS = ["item_id", "verdict", "bucket", "coverage", "prompt_coverage", "answer_coverage",
                "longest_span", "matched_field", "matched_records"]


@dataclass(frozen=True)
class ScanTarget:
    """One benchmark version × synthetic version checked by one scan."""

    scan_id: str
    benchmark: str
    benchmark_version: str
    synthetic: str
    synthetic_version: str

    @property
    def benchmark_label(self) -> str:
        return f"{self.benchmark}@{self.benchmark_version}"

    @property
    def synthetic_label(self) -> str:
        return f"{self.synthetic}@{self.synthetic_version}"


def grid(ws: Workspace) -> pd.DataFrame:
    """The newest verdicts per benchmark × synthetic version, counted; labels are ``name@version``."""
    return ws.query("""
        SELECT benchmark || '@' || benchmark_version AS benchmark,
               synthetic || '@' || synthetic_version AS synthetic,
               items, contaminated, dirty, partial, contaminated_share, scan_id
        FROM contamination_grid
        ORDER BY benchmark, synthetic
    """)


def scans(ws: Workspace) -> pd.DataFrame:
    """Every scan, newest first."""
    return ws.query("""
        SELECT scan_id, created_at, benchmark || '@' || benchmark_version AS benchmark,
               synthetic, methods, items, records, seconds
        FROM scans
        ORDER BY scan_id DESC
    """)


def scan_targets(ws: Workspace) -> list[ScanTarget]:
    """Every (scan, benchmark version, synthetic version) with verdicts, newest scan first."""
    df = ws.query("""
        SELECT DISTINCT scan_id, benchmark, benchmark_version, synthetic, synthetic_version
        FROM verdicts
        ORDER BY scan_id DESC, benchmark, benchmark_version, synthetic, synthetic_version
    """)
    return [ScanTarget(*row) for row in df.itertuples(index=False)]


def items(ws: Workspace, target: ScanTarget, contaminated_only: bool = True) -> pd.DataFrame:
    """Per-item verdicts of one scan target, highest coverage (then longest span) first."""
    where = " AND verdict <> 'clean'" if contaminated_only else ""
    return ws.query(f"""
        SELECT {', '.join(ITEM_COLUMNS)}
        FROM verdicts
        WHERE scan_id = ? AND synthetic = ? AND synthetic_version = ?{where}
        ORDER BY coverage DESC, longest_span DESC, item
    """, [target.scan_id, target.synthetic, target.synthetic_version])


def items_with_evidence(ws: Workspace, target: ScanTarget) -> pd.DataFrame:
    """Items that share at least one n-gram with a synthetic record: contaminated first, then by coverage."""
    return ws.query(f"""
        SELECT {', '.join(ITEM_COLUMNS)}
        FROM verdicts
        WHERE scan_id = ? AND synthetic = ? AND synthetic_version = ? AND matched_records > 0
        ORDER BY verdict = 'clean', coverage DESC, longest_span DESC, item
    """, [target.scan_id, target.synthetic, target.synthetic_version])


# -- evidence --------------------------------------------------------------------------


def char_ranges(text: str, token_intervals: Iterable[Sequence[int]]) -> list[tuple[int, int]]:
    """Character ranges of ``text`` covered by token intervals ``[start, end)``, merged and sorted.

    Tokens are those of :func:`analysis.text.token_spans`; a range runs from the
    first character of token ``start`` to the last of token ``end - 1``, so the
    punctuation and spaces between matched tokens are marked too. Intervals
    beyond the text's tokens are clipped.
    """
    spans = token_spans(text)
    ranges = []
    for start, end in ((int(a), int(b)) for a, b in token_intervals):
        start, end = max(start, 0), min(end, len(spans))
        if start < end:
            ranges.append((spans[start][0], spans[end - 1][1]))
    merged: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


@dataclass
class EvidenceRecord:
    """One synthetic record matching the item, with the matched character ranges on both sides."""

    rank: int
    record_id: str
    coverage: float
    prompt_coverage: float
    answer_coverage: float
    longest_span: int
    matched_field: str
    matched_ngrams: int
    text: str | None  # record_text(prompt, answer) of the synthetic record; None if it is gone
    ranges: list[tuple[int, int]]
    item_prompt_ranges: list[tuple[int, int]]
    item_answer_ranges: list[tuple[int, int]]


@dataclass
class ItemEvidence:
    """A benchmark item, its verdict for one scan target, and its top matching synthetic records."""

    target: ScanTarget
    item_id: str
    prompt: str
    answer: str
    verdict: dict[str, Any]
    records: list[EvidenceRecord] = field(default_factory=list)


def item_evidence(ws: Workspace, target: ScanTarget, item_id: str) -> ItemEvidence | None:
    """The evidence for ``item_id`` with the benchmark record and the synthetic records joined in."""
    con = ws.connect()
    try:
        verdict = con.execute(f"""
            SELECT {', '.join(ITEM_COLUMNS)}, prompt_tokens, answer_tokens, prompt_n, answer_n, too_short
            FROM verdicts WHERE scan_id = ? AND synthetic = ? AND synthetic_version = ? AND item_id = ?
        """, [target.scan_id, target.synthetic, target.synthetic_version, item_id]).df()
        if verdict.empty:
            return None
        item = con.execute(
            "SELECT prompt, answer FROM records WHERE dataset = ? AND version = ? AND record_id = ?",
            [target.benchmark, target.benchmark_version, item_id]).fetchone()
        evidence = con.execute("""
            WITH ev AS (
                SELECT * FROM evidence
                WHERE scan_id = ? AND synthetic = ? AND synthetic_version = ? AND item_id = ?
            ), rec AS (
                SELECT record_id, prompt, answer FROM records
                WHERE dataset = ? AND version = ? AND record_id IN (SELECT record_id FROM ev)
            )
            SELECT ev.*, rec.prompt AS record_prompt, rec.answer AS record_answer, rec.record_id IS NOT NULL AS found
            FROM ev LEFT JOIN rec USING (record_id)
            ORDER BY ev.rank
        """, [target.scan_id, target.synthetic, target.synthetic_version, item_id,
              target.synthetic, target.synthetic_version]).df()
    finally:
        con.close()
    prompt, answer = (item[0] or "", item[1] or "") if item else ("", "")
    out = ItemEvidence(target, item_id, prompt, answer, verdict.iloc[0].to_dict())
    for row in evidence.itertuples(index=False):
        text = record_text(row.record_prompt or "", row.record_answer or "") if row.found else None
        out.records.append(EvidenceRecord(
            rank=int(row.rank), record_id=row.record_id, coverage=float(row.coverage),
            prompt_coverage=float(row.prompt_coverage), answer_coverage=float(row.answer_coverage),
            longest_span=int(row.longest_span), matched_field=row.matched_field,
            matched_ngrams=int(row.matched_ngrams), text=text,
            ranges=char_ranges(text, row.record_spans) if text is not None else [],
            item_prompt_ranges=char_ranges(prompt, row.item_prompt_spans),
            item_answer_ranges=char_ranges(answer, row.item_answer_spans),
        ))
    return out


# -- starting a scan -------------------------------------------------------------------


def start_scan_job(ws: Workspace, benchmark: DatasetRef, synthetics: Sequence[DatasetRef],
                   config: NgramConfig) -> str:
    """Check the datasets exist and start a scan job with ``config``; returns the job id.

    Raises :class:`analysis.workspace.WorkspaceError` for an unknown dataset and
    ``ValueError`` when no synthetic dataset is given.
    """
    if not synthetics:
        raise ValueError("choose at least one synthetic dataset to scan")
    benchmark = ws.resolve(benchmark)
    synthetics = [ws.resolve(s) for s in synthetics]
    argv = ["scan"]
    for s in synthetics:
        argv += ["--synthetic", str(s)]
    argv += ["--benchmark", str(benchmark), "--n", *(str(n) for n in config.ns),
             "--clean-below", str(config.clean_below), "--dirty-from", str(config.dirty_from),
             "--top-k", str(config.top_k)]
    return jobs.start(ws, "scan", argv)
