"""Reading scan results: the grid, per-item verdicts, and an item's evidence ready to highlight.

Everything here is a query over the workspace's DuckDB views (see
:mod:`synthscope.core.schemas`) plus :func:`char_ranges`, which turns the token
intervals stored as evidence into character ranges of the original texts, so a
viewer can mark exactly the words the n-grams matched. A pair no n-gram matched
(a rephrasing found by a later stage) is marked with the word runs both texts
share in order (:mod:`synthscope.contamination.align`) instead, and the best
semantic windows of both sides come along as character ranges too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from synthscope.contamination.align import align_bounded, split_ranges
from synthscope.contamination.cascade import STAGES
from synthscope.core.text import record_text, token_spans
from synthscope.core.workspace import Workspace

ITEM_COLUMNS = ["item_id", "tier", "verdict", "leaked", "reason", "bucket", "coverage", "prompt_coverage",
                "answer_coverage", "longest_span", "matched_field", "matched_records", "jaccard", "masked_jaccard",
                "number_substituted", "cosine", "judge_score", "chance", "stages"]
VERDICTS = (*STAGES, "clean")  # strongest first; "clean" last
# Strongest verdict first, then the stages' own scores; a missing score sorts last.
_ITEM_ORDER = ("CASE tier WHEN 'confirmed' THEN 0 WHEN 'likely' THEN 1 WHEN 'candidate' THEN 2 ELSE 3 END, "
               "CASE verdict " + " ".join(f"WHEN '{v}' THEN {i}" for i, v in enumerate(VERDICTS))
               + f" ELSE {len(VERDICTS)} END, coverage DESC NULLS LAST, longest_span DESC NULLS LAST, "
               "jaccard DESC NULLS LAST, cosine DESC NULLS LAST, judge_score DESC NULLS LAST, item")


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
    """The newest verdicts per benchmark × synthetic version, counted; labels are ``name@version``.

    ``contaminated`` counts the tiers the scan's policy counts (default confirmed
    and likely), split by tier and by the deciding stage (``exact``,
    ``near_duplicate``, ``semantic``, ``judged``); ``candidate`` items are shown,
    not counted; ``expected_false`` is how many counted flags chance alone would
    give (:func:`synthscope.contamination.semantic.chance_of_flag`);
    ``dirty``/``partial`` are the n-gram buckets.
    """
    return ws.query("""
        SELECT benchmark || '@' || benchmark_version AS benchmark,
               synthetic || '@' || synthetic_version AS synthetic,
               items, contaminated, confirmed, likely, candidate, expected_false, question_seen, answer_seen,
               exact, near_duplicate, semantic, judged, dirty, partial,
               contaminated_share, scan_id
        FROM contamination_grid
        ORDER BY benchmark, synthetic
    """)


def scans(ws: Workspace) -> pd.DataFrame:
    """Every scan, newest first, with the thresholds and settings it used (``settings``: one line)."""
    df = ws.query("""
        SELECT scan_id, created_at, benchmark || '@' || benchmark_version AS benchmark,
               synthetic, methods, items, records, seconds, CAST(config AS VARCHAR) AS config_json
        FROM scans
        ORDER BY scan_id DESC
    """)
    df["settings"] = [settings_line(c) for c in df.pop("config_json")]
    return df


def settings_line(config: Any) -> str:
    """A scan's thresholds in one line: ``count confirmed+likely · n-grams 13,8 clean<0.2 · ... ``."""
    import json

    try:
        c = json.loads(config) if isinstance(config, str) else dict(config or {})
    except (TypeError, ValueError):
        return ""
    if not isinstance(c, dict):
        return ""
    parts = []
    if c.get("count"):
        parts.append("count " + "+".join(map(str, c["count"])))
    ng = c.get("ngram") or {}
    if ng:
        parts.append(f"n-grams {','.join(map(str, ng.get('ns', [])))} clean<{ng.get('clean_below')} "
                     f"dirty>={ng.get('dirty_from')}")
    near = c.get("near_duplicate") or {}
    if near:
        parts.append(f"near-dup Jaccard>={near.get('flag_at')} (LSH {near.get('lsh_threshold')})")
    sem = c.get("semantic") or {}
    if sem:
        parts.append(f"semantic {sem.get('candidate_at')}/{sem.get('flag_at')}/{sem.get('likely_at')} "
                     f"(candidate/match/likely) margin {sem.get('margin')}")
    if c.get("checks") is False:
        parts.append("task-aware checks off")
    return " · ".join(parts)


def scan_targets(ws: Workspace) -> list[ScanTarget]:
    """Every (scan, benchmark version, synthetic version) with verdicts, newest scan first."""
    df = ws.query("""
        SELECT DISTINCT scan_id, benchmark, benchmark_version, synthetic, synthetic_version
        FROM verdicts
        ORDER BY scan_id DESC, benchmark, benchmark_version, synthetic, synthetic_version
    """)
    return [ScanTarget(*row) for row in df.itertuples(index=False)]


def items(ws: Workspace, target: ScanTarget, contaminated_only: bool = True,
          verdicts: Iterable[str] | None = None, tiers: Iterable[str] | None = None) -> pd.DataFrame:
    """Per-item verdicts of one scan target: strongest tier and deciding stage first, then by its scores.

    ``verdicts`` keeps only items decided by those stages (``"clean"`` included
    if given); ``tiers`` only those tiers; ``None`` or empty keeps every item
    (or every contaminated one).
    """
    where, params = "", [target.scan_id, target.synthetic, target.synthetic_version]
    if contaminated_only:
        where += " AND verdict <> 'clean'"
    chosen = list(verdicts or [])
    if chosen:
        where += f" AND verdict IN ({', '.join('?' for _ in chosen)})"
        params += chosen
    chosen_tiers = list(tiers or [])
    if chosen_tiers:
        where += f" AND coalesce(tier, 'clean') IN ({', '.join('?' for _ in chosen_tiers)})"
        params += chosen_tiers
    return ws.query(f"""
        SELECT {', '.join(ITEM_COLUMNS)}
        FROM verdicts
        WHERE scan_id = ? AND synthetic = ? AND synthetic_version = ?{where}
        ORDER BY {_ITEM_ORDER}
    """, params)


TIER_ORDER = ("confirmed", "likely", "candidate", "clean")


def tier_counts(ws: Workspace, target: ScanTarget) -> dict[str, int]:
    """Items per evidence tier of one scan target, strongest first; tiers no item got are left out."""
    df = ws.query("""
        SELECT coalesce(tier, CASE WHEN verdict = 'clean' THEN 'clean' ELSE 'confirmed' END) AS tier, count(*) AS n
        FROM verdicts WHERE scan_id = ? AND synthetic = ? AND synthetic_version = ?
        GROUP BY ALL
    """, [target.scan_id, target.synthetic, target.synthetic_version])
    found = dict(zip(df["tier"], df["n"].astype(int)))
    return {t: found[t] for t in TIER_ORDER if t in found}


def expected_false(ws: Workspace, target: ScanTarget) -> float | None:
    """Counted flags expected by chance in one scan target (None when the scan had no semantic stage)."""
    df = ws.query("SELECT sum(chance) AS e, count(chance) AS n FROM verdicts WHERE scan_id = ? AND synthetic = ? "
                  "AND synthetic_version = ?", [target.scan_id, target.synthetic, target.synthetic_version])
    return None if df.empty or not df["n"].iloc[0] else float(df["e"].iloc[0])


def verdict_counts(ws: Workspace, target: ScanTarget) -> dict[str, int]:
    """Items per verdict of one scan target, strongest stage first; verdicts no item got are left out."""
    df = ws.query("""
        SELECT verdict, count(*) AS n FROM verdicts
        WHERE scan_id = ? AND synthetic = ? AND synthetic_version = ?
        GROUP BY verdict
    """, [target.scan_id, target.synthetic, target.synthetic_version])
    found = dict(zip(df["verdict"], df["n"].astype(int)))
    return {v: found[v] for v in (*VERDICTS, *sorted(set(found) - set(VERDICTS))) if v in found}


def items_with_evidence(ws: Workspace, target: ScanTarget) -> pd.DataFrame:
    """Items with at least one evidence record (from any stage): contaminated first, strongest stage first."""
    key = [target.scan_id, target.synthetic, target.synthetic_version]
    return ws.query(f"""
        SELECT {', '.join(ITEM_COLUMNS)}
        FROM verdicts
        WHERE scan_id = ? AND synthetic = ? AND synthetic_version = ?
          AND item_id IN (SELECT item_id FROM evidence WHERE scan_id = ? AND synthetic = ? AND synthetic_version = ?)
        ORDER BY verdict = 'clean', {_ITEM_ORDER}
    """, key + key)


# -- evidence --------------------------------------------------------------------------


def char_ranges(text: str, token_intervals: Iterable[Sequence[int]]) -> list[tuple[int, int]]:
    """Character ranges of ``text`` covered by token intervals ``[start, end)``, merged and sorted.

    Tokens are those of :func:`synthscope.core.text.token_spans`; a range runs from the
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


Range = tuple[int, int]


@dataclass
class EvidenceRecord:
    """One synthetic record matching the item: every stage's score, and what to mark on both sides.

    ``highlight`` says what ``ranges`` / ``item_*_ranges`` hold: ``"exact"``, the
    n-grams the exact stage matched; ``"aligned"``, for a pair with no matched
    n-gram, the word runs both texts share in order (:func:`synthscope.contamination.align.align`);
    ``""`` when there is nothing to mark. The ``*_window`` ranges are the best
    semantic windows (the pair's cosine is theirs). Scores a stage did not give
    the pair are ``None``.
    """

    rank: int
    record_id: str
    method: str  # the strongest stage that flags the pair, else the one that found it
    flagged: bool
    coverage: float | None
    prompt_coverage: float | None
    answer_coverage: float | None
    longest_span: int | None
    matched_field: str
    matched_ngrams: int | None
    jaccard: float | None
    masked_jaccard: float | None
    number_substituted: bool
    near_field: str
    cosine: float | None
    judge_score: float | None
    text: str | None  # record_text(prompt, answer) of the synthetic record; None if it is gone
    ranges: list[Range]
    item_prompt_ranges: list[Range]
    item_answer_ranges: list[Range]
    highlight: str = ""
    tier: str = ""  # confirmed | likely | candidate | "" (see synthscope.contamination.cascade)
    leaked: str = ""  # question | answer | question+answer | ""
    reason: str = ""  # the pair's evidence in one line ("passes HumanEval/13's tests with gcd()")
    check: str = ""  # the task-aware check run on the pair, if any
    check_passed: bool | None = None
    record_best: float | None = None  # the record's best cosine with any item (mutual-best rule)
    window: Range | None = None  # best semantic window of the record text
    item_prompt_window: list[Range] = field(default_factory=list)
    item_answer_window: list[Range] = field(default_factory=list)


@dataclass
class ItemEvidence:
    """A benchmark item, its verdict for one scan target, and its top matching synthetic records."""

    target: ScanTarget
    item_id: str
    prompt: str
    answer: str
    verdict: dict[str, Any]
    records: list[EvidenceRecord] = field(default_factory=list)


def _value(value: Any) -> Any:
    """``None`` for a missing value (None, NaN, pandas NA), else the value."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    return value


def _float(value: Any) -> float | None:
    value = _value(value)
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    value = _value(value)
    return None if value is None else int(value)


def _spans(value: Any) -> list[Sequence[int]]:
    value = _value(value)
    return [] if value is None else [list(v) for v in value]


def _window(value: Any) -> Range | None:
    value = _value(value)
    if value is None or len(value) != 2:
        return None
    return int(value[0]), int(value[1])


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
    item_text = record_text(prompt, answer)
    out = ItemEvidence(target, item_id, prompt, answer, {k: _value(v) for k, v in verdict.iloc[0].to_dict().items()})
    for row in evidence.itertuples(index=False):
        text = record_text(row.record_prompt or "", row.record_answer or "") if row.found else None
        record_spans, prompt_spans, answer_spans = (_spans(row.record_spans), _spans(row.item_prompt_spans),
                                                    _spans(row.item_answer_spans))
        item_window, record_window = _window(row.item_span), _window(row.record_span)
        if record_spans or prompt_spans or answer_spans:
            highlight = "exact"
            ranges = char_ranges(text, record_spans) if text is not None else []
            item_prompt_ranges = char_ranges(prompt, prompt_spans)
            item_answer_ranges = char_ranges(answer, answer_spans)
        elif text is not None:
            aligned = align_bounded(item_text, text, item_window, record_window)
            ranges = aligned.right
            item_prompt_ranges, item_answer_ranges = split_ranges(aligned.left, prompt, answer)
            highlight = "aligned" if ranges else ""
        else:
            highlight, ranges, item_prompt_ranges, item_answer_ranges = "", [], [], []
        prompt_window, answer_window = split_ranges([item_window] if item_window else [], prompt, answer)
        out.records.append(EvidenceRecord(
            rank=int(row.rank), record_id=row.record_id, method=_value(row.method) or "",
            flagged=bool(_value(row.flagged)), coverage=_float(row.coverage),
            prompt_coverage=_float(row.prompt_coverage), answer_coverage=_float(row.answer_coverage),
            longest_span=_int(row.longest_span), matched_field=_value(row.matched_field) or "",
            matched_ngrams=_int(row.matched_ngrams), jaccard=_float(row.jaccard),
            masked_jaccard=_float(row.masked_jaccard), number_substituted=bool(_value(row.number_substituted)),
            near_field=_value(row.near_field) or "", cosine=_float(row.cosine), judge_score=_float(row.judge_score),
            text=text, ranges=ranges, item_prompt_ranges=item_prompt_ranges, item_answer_ranges=item_answer_ranges,
            highlight=highlight, tier=_value(getattr(row, "tier", None)) or "",
            leaked=_value(getattr(row, "leaked", None)) or "", reason=_value(getattr(row, "reason", None)) or "",
            check=_value(getattr(row, "check", None)) or "", check_passed=_value(getattr(row, "check_passed", None)),
            record_best=_float(getattr(row, "record_best", None)),
            window=record_window if text is not None else None,
            item_prompt_window=prompt_window, item_answer_window=answer_window,
        ))
    return out


# -- starting a scan -------------------------------------------------------------------
