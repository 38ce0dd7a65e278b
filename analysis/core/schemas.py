"""Column schemas of the workspace artefacts and the DuckDB views over them.

Writers cast their tables to these schemas, so every file of one kind has the
same columns, and the views can stand in with an empty table of the right shape
before the first file exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

SPANS = pa.list_(pa.list_(pa.int32()))

RECORDS = pa.schema([
    ("dataset", pa.string()),
    ("version", pa.string()),
    ("kind", pa.string()),
    ("record_id", pa.string()),
    ("row", pa.int64()),  # 0-based position among the loaded rows
    ("source_line", pa.int64()),  # line (text formats) or row number (tables) in the source, 1-based
    ("prompt", pa.string()),
    ("answer", pa.string()),
    ("raw", pa.string()),  # the source row as JSON
    ("doc_id", pa.int64()),  # lm-eval tasks: index of the doc in the evaluated split
    ("doc_hash", pa.string()),  # lm-eval tasks: sha256 of the doc as lm-eval logs it
])

_SCAN_KEY = [
    ("scan_id", pa.string()),
    ("benchmark", pa.string()),
    ("benchmark_version", pa.string()),
    ("synthetic", pa.string()),
    ("synthetic_version", pa.string()),
    ("item_id", pa.string()),
    ("item", pa.int64()),
]

VERDICTS = pa.schema(_SCAN_KEY + [
    ("verdict", pa.string()),  # clean, or the stage behind the counted tier: exact | near_duplicate | semantic | judged
    ("tier", pa.string()),  # confirmed | likely | candidate | clean: how strong the best evidence is
    ("leaked", pa.string()),  # counted items: question | answer | question+answer
    ("reason", pa.string()),  # the best evidence in words ("passes HumanEval/13's tests with gcd()")
    ("chance", pa.float64()),  # P(a semantic flag this strong by chance alone); sums to the expected false flags
    ("bucket", pa.string()),  # clean | partial | dirty
    ("coverage", pa.float64()),
    ("prompt_coverage", pa.float64()),
    ("answer_coverage", pa.float64()),
    ("matched_field", pa.string()),  # "", prompt, answer, prompt+answer
    ("matched_ngrams", pa.int64()),
    ("longest_span", pa.int64()),
    ("matched_records", pa.int64()),
    ("prompt_tokens", pa.int64()),
    ("answer_tokens", pa.int64()),
    ("prompt_n", pa.int64()),
    ("answer_n", pa.int64()),
    ("too_short", pa.bool_()),
    # best score of each later stage (null where the stage did not run or found nothing)
    ("jaccard", pa.float64()),  # near-duplicate: exact Jaccard of shingle sets
    ("masked_jaccard", pa.float64()),  # the same with every number replaced by one placeholder
    ("number_substituted", pa.bool_()),  # same problem, other numbers
    ("cosine", pa.float64()),  # semantic: best window cosine
    ("judge_score", pa.float64()),  # judged: P(same problem) from the judge model
    ("stages", pa.string()),  # the stages that ran, comma-separated
])

EVIDENCE = pa.schema(_SCAN_KEY + [
    ("rank", pa.int64()),
    ("record_id", pa.string()),
    ("coverage", pa.float64()),
    ("prompt_coverage", pa.float64()),
    ("answer_coverage", pa.float64()),
    ("matched_field", pa.string()),
    ("matched_ngrams", pa.int64()),
    ("longest_span", pa.int64()),
    ("item_prompt_spans", SPANS),  # token intervals [start, end) in the item's prompt
    ("item_answer_spans", SPANS),
    ("record_spans", SPANS),  # token intervals in the record's text (see synthscope.contamination.scan)
    ("method", pa.string()),  # the strongest stage that flags this pair, else the one that found it
    ("flagged", pa.bool_()),  # does any stage's threshold flag this pair?
    ("near_field", pa.string()),  # near-duplicate: the item field (prompt or answer) it matched
    ("jaccard", pa.float64()),
    ("masked_jaccard", pa.float64()),
    ("number_substituted", pa.bool_()),
    ("cosine", pa.float64()),
    ("item_span", pa.list_(pa.int32())),  # semantic: best item window [start, end) in characters
    ("record_span", pa.list_(pa.int32())),  # semantic: best record window [start, end) in characters
    ("judge_score", pa.float64()),
    ("record_best", pa.float64()),  # semantic: the record's best cosine with any item (the mutual-best rule)
    ("tier", pa.string()),  # confirmed | likely | candidate | "" (see synthscope.contamination.cascade)
    ("leaked", pa.string()),  # question | answer | question+answer | ""
    ("check", pa.string()),  # the task-aware check run on the pair: code_tests | final_answer | choice | answer
    ("check_passed", pa.bool_()),  # null: not run, not applicable, or could not run
    ("check_reason", pa.string()),
    ("reason", pa.string()),  # the pair's evidence in one line
])

# Calibrations (synthscope.contamination.calibrate): rates on known positives and hard negatives. "item" rates are a
# scan's (is an item flagged by some non-twin candidate), "pair" rates are per comparison.
CALIBRATION_SWEEPS = pa.schema([  # item level, every distinct score as the threshold
    ("threshold", pa.float64()), ("tp", pa.int64()), ("fp", pa.int64()),  # fp: items flagged by a non-twin
    ("recall", pa.float64()), ("item_fpr", pa.float64()), ("precision", pa.float64()), ("f1", pa.float64()),
    ("stage", pa.string()), ("calibration_id", pa.string()),
])

CALIBRATION_FPR = pa.schema([  # per stage on a grid of calibrate.GRID_STEP: read with calibrate.FprCurve
    ("stage", pa.string()), ("threshold", pa.float64()),
    ("pair_fp", pa.int64()), ("pair_negatives", pa.int64()), ("pair_fpr", pa.float64()),
    ("item_fp", pa.int64()), ("item_negatives", pa.int64()), ("item_fpr", pa.float64()),
    ("tp", pa.int64()), ("positives", pa.int64()), ("recall", pa.float64()),
    ("calibration_id", pa.string()),
])

CALIBRATION_RECOMMENDATIONS = pa.schema([
    ("stage", pa.string()), ("score", pa.string()), ("setting", pa.string()), ("target_fpr", pa.float64()),
    ("floor", pa.float64()),  # the lowest threshold the stage can use (exact, judged: only above it)
    ("status", pa.string()),  # recommended | refused
    ("reason", pa.string()),  # why refused (null when recommended)
    ("threshold", pa.float64()), ("recall", pa.float64()), ("item_fpr", pa.float64()), ("pair_fpr", pa.float64()),
    ("precision", pa.float64()), ("f1", pa.float64()),
    ("toml", pa.string()),  # the synthscope.toml lines to set it (null when refused)
    ("positives", pa.int64()), ("negative_items", pa.int64()), ("negative_pairs", pa.int64()),
    ("current_threshold", pa.float64()), ("current_recall", pa.float64()), ("current_item_fpr", pa.float64()),
    ("current_pair_fpr", pa.float64()),
    ("calibration_id", pa.string()),
])

EVAL_SAMPLES = pa.schema([
    ("eval_id", pa.string()),
    ("run_id", pa.string()),
    ("task", pa.string()),
    ("doc_id", pa.int64()),  # index of the doc in the task's evaluated split (lm-eval's doc_id)
    ("filter", pa.string()),  # lm-eval filter pipeline ("none" for most tasks); one row per doc and filter
    ("output_type", pa.string()),  # multiple_choice | loglikelihood | loglikelihood_rolling | generate_until
    ("doc_hash", pa.string()),  # lm-eval's sha256 of the doc JSON
    ("prompt_hash", pa.string()),
    ("target_hash", pa.string()),
    ("target", pa.string()),
    ("acc", pa.float64()),
    ("acc_norm", pa.float64()),
    ("exact_match", pa.float64()),
    ("metrics", pa.map_(pa.string(), pa.float64())),  # every numeric per-sample metric lm-eval logged
    ("choices", pa.list_(pa.string())),  # multiple choice: the continuations scored
    ("loglikelihoods", pa.list_(pa.float64())),  # one per choice (or the one continuation)
    ("is_greedy", pa.list_(pa.bool_())),
    ("chosen", pa.int64()),  # argmax of loglikelihoods
    ("chosen_norm", pa.int64()),  # argmax of loglikelihood per character (lm-eval's acc_norm)
    ("target_index", pa.int64()),  # multiple choice: index of the right choice
    ("generated", pa.string()),  # generate_until: the model's answer after filtering
    ("benchmark", pa.string()),  # the benchmark dataset version the doc was checked against
    ("benchmark_version", pa.string()),
    ("record_id", pa.string()),  # the benchmark record, only where doc_id and doc_hash both agree
    ("doc_hash_ok", pa.bool_()),  # null: not checked (no benchmark); false: mismatch or doc not found
    ("source_line", pa.int64()),  # line in the samples_*.jsonl file, 1-based
])

MEMBERSHIP_SCORES = pa.schema([
    ("score_id", pa.string()),
    ("run_id", pa.string()),
    ("benchmark", pa.string()),
    ("benchmark_version", pa.string()),
    ("record_id", pa.string()),
    ("doc_id", pa.int64()),
    ("min_k_pp", pa.float64()),  # Min-K%++ of prompt + " " + answer under the run's model; higher: more "seen"
    ("mean_logprob", pa.float64()),  # mean token log-probability of the same text (the loss attack)
    ("tokens", pa.int64()),  # tokens scored (the first token has no prediction)
    ("truncated", pa.bool_()),  # the text was longer than max_tokens and was cut
])

REPORT_METRICS = pa.schema([
    ("report_id", pa.string()),
    ("dataset", pa.string()),
    ("version", pa.string()),
    ("section", pa.string()),  # contamination | quality | bias | privacy
    ("key", pa.string()),  # "<section>.<name>" (synthscope.scorecard.metrics.Metric.key)
    ("label", pa.string()),
    ("value", pa.float64()),  # NaN: not measurable here (detail says why)
    ("higher_is_better", pa.bool_()),
    ("detail", pa.string()),
    ("evidence", pa.string()),  # evidence table of the same section, or null
    ("grade", pa.string()),  # pass | warn | fail | info, under the policy the scorecard was built with
    ("rule", pa.string()),  # that policy's bounds for the metric, in words
])

# Manifests are JSON, one file per artefact; the views read these keys.
JSON_COLUMNS: dict[str, dict[str, str]] = {
    "datasets": {
        "name": "VARCHAR", "version": "VARCHAR", "kind": "VARCHAR", "rows": "BIGINT",
        "errors": "BIGINT", "created_at": "VARCHAR", "source": "VARCHAR", "format": "VARCHAR",
        "mapping": "VARCHAR",
    },
    "calibrations": {
        "calibration_id": "VARCHAR", "created_at": "VARCHAR", "description": "VARCHAR", "benchmark": "VARCHAR",
        "method": "VARCHAR", "positives": "BIGINT", "items": "BIGINT", "candidates": "BIGINT",
        "negatives": "BIGINT",  # = negative_items: what the item-level FPR is measured on
        "negative_items": "BIGINT", "negative_pairs": "BIGINT", "target_fpr": "DOUBLE",
        "min_negative_items": "BIGINT", "stages": "VARCHAR",
    },
    "scans": {
        "scan_id": "VARCHAR", "created_at": "VARCHAR", "benchmark": "VARCHAR",
        "benchmark_version": "VARCHAR", "synthetic": "VARCHAR", "methods": "VARCHAR",
        "items": "BIGINT", "records": "BIGINT", "seconds": "DOUBLE", "config": "JSON",
    },
    "runs": {
        "run_id": "VARCHAR", "created_at": "VARCHAR", "model": "VARCHAR", "model_source": "VARCHAR",
        "base_model": "VARCHAR", "datasets": "STRUCT(name VARCHAR, version VARCHAR)[]",
        "synthetic_share": "DOUBLE", "tags": "VARCHAR[]", "date": "VARCHAR", "notes": "VARCHAR",
    },
    "evals": {
        "eval_id": "VARCHAR", "created_at": "VARCHAR", "run_id": "VARCHAR", "task": "VARCHAR", "model": "VARCHAR",
        "output_type": "VARCHAR", "lm_eval_version": "VARCHAR", "metrics": "MAP(VARCHAR, DOUBLE)",
        "samples": "BIGINT", "errors": "BIGINT", "benchmark": "VARCHAR", "benchmark_version": "VARCHAR",
        "linked": "BIGINT", "hash_mismatches": "BIGINT", "missing_docs": "BIGINT", "source": "VARCHAR",
        "samples_sha256": "VARCHAR",
    },
    "reports": {
        "report_id": "VARCHAR", "created_at": "VARCHAR", "dataset": "VARCHAR", "version": "VARCHAR",
        "reference": "VARCHAR", "source": "VARCHAR", "holdout": "VARCHAR", "policy": "VARCHAR",
        "policy_digest": "VARCHAR", "status": "VARCHAR", "seconds": "DOUBLE",
    },
    "membership": {
        "score_id": "VARCHAR", "created_at": "VARCHAR", "run_id": "VARCHAR", "model": "VARCHAR",
        "benchmark": "VARCHAR", "benchmark_version": "VARCHAR", "k": "DOUBLE", "max_tokens": "BIGINT",
        "items": "BIGINT", "truncated": "BIGINT", "device": "VARCHAR", "seconds": "DOUBLE",
    },
}

_DUCK_TO_ARROW = {
    "VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "JSON": pa.string(),
    "VARCHAR[]": pa.list_(pa.string()), "MAP(VARCHAR, DOUBLE)": pa.map_(pa.string(), pa.float64()),
    "STRUCT(name VARCHAR, version VARCHAR)[]": pa.list_(pa.struct([("name", pa.string()), ("version", pa.string())])),
}

# view name -> (glob relative to the workspace root, reader)
BASE_VIEWS: dict[str, tuple[str, str]] = {
    "datasets": ("datasets/*/*/manifest.json", "json"),
    "records": ("datasets/*/*/records.parquet", "parquet"),
    "scans": ("scans/*/manifest.json", "json"),
    "verdicts": ("scans/*/verdicts.parquet", "parquet"),
    "evidence": ("scans/*/evidence.parquet", "parquet"),
    "calibrations": ("calibrations/*/manifest.json", "json"),
    "calibration_sweeps": ("calibrations/*/sweep.parquet", "parquet"),
    "calibration_recommendations": ("calibrations/*/recommendations.parquet", "parquet"),
    "calibration_fpr": ("calibrations/*/fpr.parquet", "parquet"),
    "runs": ("runs/*/manifest.json", "json"),
    "evals": ("evals/*/manifest.json", "json"),
    "eval_samples": ("evals/*/samples.parquet", "parquet"),
    "membership": ("membership/*/manifest.json", "json"),
    "reports": ("reports/*/manifest.json", "json"),
    "report_metrics": ("reports/*/metrics.parquet", "parquet"),
    "membership_scores": ("membership/*/scores.parquet", "parquet"),
}


def _empty(schema: pa.Schema) -> Callable[[], pa.Table]:
    return schema.empty_table


def _empty_json(name: str) -> Callable[[], pa.Table]:
    schema = pa.schema([(c, _DUCK_TO_ARROW[t]) for c, t in JSON_COLUMNS[name].items()])
    return schema.empty_table


EMPTY: dict[str, Callable[[], pa.Table]] = {
    "datasets": _empty_json("datasets"),
    "records": _empty(RECORDS),
    "scans": _empty_json("scans"),
    "verdicts": _empty(VERDICTS),
    "evidence": _empty(EVIDENCE),
    "calibrations": _empty_json("calibrations"),
    "calibration_sweeps": _empty(CALIBRATION_SWEEPS),
    "calibration_recommendations": _empty(CALIBRATION_RECOMMENDATIONS),
    "calibration_fpr": _empty(CALIBRATION_FPR),
    "runs": _empty_json("runs"),
    "evals": _empty_json("evals"),
    "eval_samples": _empty(EVAL_SAMPLES),
    "membership": _empty_json("membership"),
    "reports": _empty_json("reports"),
    "report_metrics": _empty(REPORT_METRICS),
    "membership_scores": _empty(MEMBERSHIP_SCORES),
}

DERIVED_VIEWS: dict[str, str] = {
    # The newest scorecard's metrics of each dataset version.
    "latest_report_metrics": """
        SELECT * FROM report_metrics
        QUALIFY report_id = max(report_id) OVER (PARTITION BY dataset, version)
    """,
    # The newest scan's verdicts for each benchmark version x synthetic version.
    "latest_verdicts": """
        SELECT * FROM verdicts
        QUALIFY scan_id = max(scan_id) OVER (
            PARTITION BY benchmark, benchmark_version, synthetic, synthetic_version)
    """,
    "contamination_grid": """
        SELECT benchmark, benchmark_version, synthetic, synthetic_version,
               any_value(scan_id) AS scan_id,
               count(*) AS items,
               count(*) FILTER (verdict <> 'clean') AS contaminated,
               count(*) FILTER (bucket = 'dirty') AS dirty,
               count(*) FILTER (bucket = 'partial') AS partial,
               count(*) FILTER (verdict = 'exact') AS exact,
               count(*) FILTER (verdict = 'near_duplicate') AS near_duplicate,
               count(*) FILTER (verdict = 'semantic') AS semantic,
               count(*) FILTER (verdict = 'judged') AS judged,
               count(*) FILTER (tier = 'confirmed') AS confirmed,
               count(*) FILTER (tier = 'likely') AS likely,
               count(*) FILTER (tier = 'candidate') AS candidate,
               round(sum(chance), 1) AS expected_false,
               count(*) FILTER (verdict <> 'clean' AND leaked = 'question') AS question_seen,
               count(*) FILTER (verdict <> 'clean' AND leaked LIKE '%answer%') AS answer_seen,
               count(*) FILTER (verdict <> 'clean') / count(*) AS contaminated_share
        FROM latest_verdicts
        GROUP BY ALL
    """,
}


def to_table(df: Any, schema: pa.Schema) -> pa.Table:
    """A pandas frame cast to ``schema``: absent columns and missing values (NaN, NA) become nulls."""
    columns = []
    for f in schema:
        values = list(df[f.name]) if f.name in df else [None] * len(df)
        columns.append(pa.array([None if _is_na(v) else v for v in values], type=f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _is_na(value: Any) -> bool:
    """None, NaN, or pandas' NA / NaT (lists and arrays are values, never missing)."""
    import pandas as pd

    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)
