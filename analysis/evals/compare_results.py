"""Reading runs, evals and comparisons for the dashboard's Runs and Compare pages.

Queries over the workspace's views (``runs``, ``evals``, ``eval_samples``,
``latest_verdicts``) and the shaping of a :class:`~synthscope.evals.compare.Comparison`
into tables and chart data; the pages only draw what these return.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synthscope.contamination.results import ItemEvidence, ScanTarget, item_evidence
from synthscope.core.workspace import Workspace
from synthscope.evals.compare import Comparison

METRICS = ("acc", "acc_norm", "exact_match")
RUN_COLUMNS = ["run_id", "model", "base_model", "datasets", "synthetic_share", "tags", "date", "evals",
               "created_at", "notes"]
EVAL_COLUMNS = ["eval_id", "run_id", "task", "output_type", "samples", "benchmark", "linked", "unmatched",
                "errors", "metrics", "created_at"]


# -- runs and evals --------------------------------------------------------------------


def _dataset_label(entry: dict[str, Any]) -> str:
    return f"{entry['name']}@{entry['version']}" if entry.get("version") else str(entry["name"])


def runs_table(ws: Workspace) -> pd.DataFrame:
    """One row per run, oldest first: what it is, what it was trained on, and how many evals it has."""
    runs = ws.query("""
        SELECT r.run_id, r.model, r.base_model, r.datasets, r.synthetic_share, r.tags, r.date, r.created_at,
               r.notes, (SELECT count(*) FROM evals e WHERE e.run_id = r.run_id) AS evals
        FROM runs r ORDER BY r.created_at, r.run_id""")
    if runs.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    runs["datasets"] = [", ".join(_dataset_label(d) for d in (ds if ds is not None else [])) for ds in runs["datasets"]]
    runs["tags"] = [", ".join(t if t is not None else []) for t in runs["tags"]]
    runs["evals"] = runs["evals"].astype(int)
    return runs[RUN_COLUMNS].reset_index(drop=True)


def _metrics_label(metrics: Any) -> str:
    """``acc=0.450, acc_norm=0.400``: the aggregate metrics lm-eval reported, without stderrs or filter names."""
    if metrics is None or (isinstance(metrics, float) and math.isnan(metrics)):
        return ""
    pairs = metrics.items() if isinstance(metrics, dict) else metrics
    return ", ".join(f"{str(k).split(',')[0]}={float(v):.3f}" for k, v in pairs
                     if "stderr" not in str(k) and v is not None and not math.isnan(float(v)))


def evals_table(ws: Workspace) -> pd.DataFrame:
    """Every evaluation, newest first: run, task, samples, how many were linked to benchmark records, metrics."""
    evals = ws.query("""
        SELECT eval_id, run_id, task, output_type, samples,
               CASE WHEN benchmark IS NULL THEN NULL ELSE benchmark || '@' || benchmark_version END AS benchmark,
               coalesce(linked, 0) AS linked,
               coalesce(hash_mismatches, 0) + coalesce(missing_docs, 0) AS unmatched,
               coalesce(errors, 0) AS errors, metrics, created_at
        FROM evals ORDER BY created_at DESC, eval_id DESC""")
    if evals.empty:
        return pd.DataFrame(columns=EVAL_COLUMNS)
    evals["metrics"] = [_metrics_label(m) for m in evals["metrics"]]
    return evals[EVAL_COLUMNS].reset_index(drop=True)


def run_ids(ws: Workspace) -> list[str]:
    return list(ws.query("SELECT run_id FROM runs ORDER BY created_at, run_id")["run_id"])


def evaluated_runs(ws: Workspace) -> list[str]:
    """Runs with at least one evaluation, oldest run first."""
    return list(ws.query("""
        SELECT run_id FROM runs WHERE run_id IN (SELECT run_id FROM evals) ORDER BY created_at, run_id""")["run_id"])


def common_tasks(ws: Workspace, baseline: str, candidate: str) -> list[str]:
    """Tasks both runs were evaluated on, by name."""
    return list(ws.query("""
        SELECT task FROM evals WHERE run_id = ? INTERSECT SELECT task FROM evals WHERE run_id = ?
        ORDER BY task""", [baseline, candidate])["task"])


def newest_evals(ws: Workspace, baseline: str, candidate: str, task: str) -> tuple[str | None, str | None]:
    """The eval ids :func:`~synthscope.evals.compare.compare` reads: each run's newest evaluation of ``task``."""
    rows = ws.query("""
        SELECT run_id, eval_id FROM evals WHERE run_id IN (?, ?) AND task = ?
        QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY created_at DESC) = 1""",
                    [baseline, candidate, task])
    found = dict(zip(rows["run_id"], rows["eval_id"]))
    return found.get(baseline), found.get(candidate)


def metrics_in_common(ws: Workspace, baseline: str, candidate: str, task: str) -> list[str]:
    """Per-sample metrics (of acc, acc_norm, exact_match) that both runs' evaluations of ``task`` logged."""
    ids = [i for i in newest_evals(ws, baseline, candidate, task) if i]
    if len(ids) < 2:
        return []
    counts = ws.query(f"""
        SELECT eval_id, {', '.join(f'count({m}) AS {m}' for m in METRICS)}
        FROM eval_samples WHERE eval_id IN (?, ?) GROUP BY eval_id""", ids)
    if len(counts) < 2:
        return []
    return [m for m in METRICS if (counts[m] > 0).all()]


def fingerprint(ws: Workspace, baseline: str, candidate: str, tasks: Sequence[str]) -> str:
    """Changes when a comparison's inputs change: a new eval of either run on these tasks, a new scan, new Min-K%++.

    Runs and evals are written once and never edited, so their ids stand for their contents.
    """
    evals = ws.query(f"""
        SELECT eval_id FROM evals WHERE run_id IN (?, ?) AND task IN ({', '.join('?' for _ in tasks) or 'NULL'})
        ORDER BY eval_id""", [baseline, candidate, *tasks])
    scan = ws.query("SELECT max(scan_id) AS s FROM scans")["s"].iloc[0]
    scores = ws.query("SELECT max(score_id) AS s FROM membership WHERE run_id IN (?, ?)", [baseline, candidate])["s"]
    return ",".join(evals["eval_id"]) + f"|{scan}|{scores.iloc[0]}"


# -- a comparison, shaped --------------------------------------------------------------


def subset_scores_long(comparison: Comparison, baseline_label: str = "baseline",
                       candidate_label: str = "candidate") -> pd.DataFrame:
    """Both runs' score per subset, long form for a grouped bar chart: ``subset, order, run, score, n``."""
    rows = []
    for order, r in enumerate(comparison.subsets.itertuples(index=False)):
        for run, value in ((baseline_label, r.baseline), (candidate_label, r.candidate)):
            rows.append({"subset": r.subset, "order": order, "run": run, "score": value, "n": int(r.n)})
    return pd.DataFrame(rows)


def contam_curve_long(curve: pd.DataFrame) -> pd.DataFrame:
    """A ConTAM curve (``synthscope.evals.compare.curve``) long form for a step chart.

    Row ``i`` of the curve holds for every threshold in ``(threshold[i-1], threshold[i]]`` (the same items
    count as contaminated there), so each row becomes two points, at both ends of that interval:
    ``series, threshold, gain, n_contaminated, share_contaminated``. The first row (every item
    contaminated, no clean item left) has no estimate and only serves as the left end of the second.
    """
    names = {"candidate_gain": "candidate", "baseline_gain": "baseline",
             "inflation_gain": "attributed to contamination"}
    thresholds = curve["threshold"].to_numpy(float)
    rows = []
    for i in range(1, len(curve)):
        r = curve.iloc[i]
        for column, series in names.items():
            if pd.isna(r[column]):
                continue
            for end in (thresholds[i - 1], thresholds[i]):
                rows.append({"series": series, "threshold": float(end), "gain": float(r[column]),
                             "n_contaminated": int(r["n_contaminated"]),
                             "share_contaminated": float(r["share_contaminated"])})
    return pd.DataFrame(rows, columns=["series", "threshold", "gain", "n_contaminated", "share_contaminated"])


def has_scores(comparison: Comparison, score: str) -> bool:
    """Whether any item has ``score`` (``cosine`` is missing when the semantic stage did not run)."""
    return bool(comparison.items[score].notna().any()) if score in comparison.items else False


def item_table(comparison: Comparison) -> pd.DataFrame:
    """Per item: both runs' scores and the contamination; contaminated first, then where the runs differ."""
    items = comparison.items
    out = pd.DataFrame({
        "doc_id": items["doc_id"].astype(int), "record_id": items["record_id"].astype(str),
        "contaminated": items["contaminated"].astype(bool), "verdict": items["verdict"], "bucket": items["bucket"],
        "coverage": items["coverage"].astype(float), "cosine": items["cosine"].astype(float),
        "baseline": items["baseline"].astype(float), "candidate": items["candidate"].astype(float),
    })
    out["change"] = out["candidate"] - out["baseline"]
    out["mink_baseline"] = items["mink_baseline"].astype(float)
    out["mink_candidate"] = items["mink_candidate"].astype(float)
    out["differs"] = out["change"] != 0
    out = out.sort_values(["contaminated", "differs", "change", "coverage", "doc_id"],
                          ascending=[False, False, False, False, True], kind="stable")
    return out.reset_index(drop=True)


def membership_table(comparison: Comparison) -> pd.DataFrame:
    """The AUROC table with readable score names: which run's Min-K%++ (or the difference) tells contamination."""
    names = {"mink_candidate": f"Min-K%++ under {comparison.candidate}",
             "mink_baseline": f"Min-K%++ under {comparison.baseline}",
             "mink_delta": f"{comparison.candidate} − {comparison.baseline} (reference-calibrated)"}
    out = comparison.membership.copy()
    out["score"] = out["score"].map(names)
    return out


def membership_points(comparison: Comparison) -> pd.DataFrame:
    """Per item with both runs' Min-K%++: the two scores and whether the scan calls it contaminated."""
    items = comparison.items.dropna(subset=["mink_baseline", "mink_candidate"])
    return pd.DataFrame({
        "record_id": items["record_id"].astype(str), "doc_id": items["doc_id"].astype(int),
        "mink_baseline": items["mink_baseline"].astype(float), "mink_candidate": items["mink_candidate"].astype(float),
        "scan": np.where(items["contaminated"], "contaminated", "clean"),
    })


# -- one item, in detail ---------------------------------------------------------------


@dataclass
class RunAnswer:
    """One run's answer to one item: the eval sample row's fields that say what it chose."""

    run_id: str
    score: float | None
    output_type: str | None
    choices: list[str] | None
    loglikelihoods: list[float] | None
    chosen: int | None
    target_index: int | None
    generated: str | None
    target: str | None


@dataclass
class ItemDetail:
    task: str
    doc_id: int
    record_id: str
    benchmark: str  # NAME@VERSION
    prompt: str
    answer: str
    contamination: dict[str, Any]  # verdict, bucket, coverage, cosine, contaminated
    baseline: RunAnswer | None
    candidate: RunAnswer | None
    evidence: list[ItemEvidence] = field(default_factory=list)  # one per synthetic dataset with a scan

    @property
    def multiple_choice(self) -> bool:
        return any(a is not None and a.choices for a in (self.baseline, self.candidate))


def _none(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _answer(ws: Workspace, eval_id: str | None, run_id: str, doc_id: int, metric: str) -> RunAnswer | None:
    if eval_id is None:
        return None
    rows = ws.query(f"""
        SELECT output_type, {metric} AS score, choices, loglikelihoods, chosen, target_index, generated, target
        FROM eval_samples WHERE eval_id = ? AND doc_id = ? ORDER BY "filter" LIMIT 1""", [eval_id, int(doc_id)])
    if rows.empty:
        return None
    r = rows.iloc[0]
    choices, lls = _none(r["choices"]), _none(r["loglikelihoods"])
    chosen, target_index = _none(r["chosen"]), _none(r["target_index"])
    return RunAnswer(
        run_id=run_id, score=None if _none(r["score"]) is None else float(r["score"]),
        output_type=_none(r["output_type"]),
        choices=None if choices is None else [str(c) for c in choices],
        loglikelihoods=None if lls is None else [float(v) for v in lls],
        chosen=None if chosen is None else int(chosen),
        target_index=None if target_index is None else int(target_index),
        generated=_none(r["generated"]), target=_none(r["target"]))


def scan_target(ws: Workspace, benchmark: str, synthetic: str) -> ScanTarget | None:
    """The newest scan of ``benchmark`` against ``synthetic`` (both ``NAME@VERSION``), or ``None``."""
    (b_name, b_version), (s_name, s_version) = benchmark.rsplit("@", 1), synthetic.rsplit("@", 1)
    rows = ws.query("""
        SELECT max(scan_id) AS scan_id FROM latest_verdicts
        WHERE benchmark = ? AND benchmark_version = ? AND synthetic = ? AND synthetic_version = ?""",
                    [b_name, b_version, s_name, s_version])
    scan_id = rows["scan_id"].iloc[0] if not rows.empty else None
    if scan_id is None or (isinstance(scan_id, float) and math.isnan(scan_id)):
        return None
    return ScanTarget(str(scan_id), b_name, b_version, s_name, s_version)


def item_detail(ws: Workspace, comparison: Comparison, record_id: str) -> ItemDetail | None:
    """The item's text, both runs' answers and the synthetic evidence of every scan behind the comparison."""
    match = comparison.items[comparison.items["record_id"].astype(str) == str(record_id)]
    if match.empty:
        return None
    row = match.iloc[0]
    name, version = comparison.benchmark.rsplit("@", 1)
    record = ws.query("SELECT prompt, answer FROM records WHERE dataset = ? AND version = ? AND record_id = ?",
                      [name, version, str(record_id)])
    prompt, answer = ((record["prompt"].iloc[0] or "", record["answer"].iloc[0] or "") if not record.empty
                      else ("", ""))
    base_eval, cand_eval = newest_evals(ws, comparison.baseline, comparison.candidate, comparison.task)
    doc_id = int(row["doc_id"])
    detail = ItemDetail(
        task=comparison.task, doc_id=doc_id, record_id=str(record_id), benchmark=comparison.benchmark,
        prompt=prompt, answer=answer,
        contamination={k: _none(row[k]) for k in ("verdict", "bucket", "coverage", "cosine", "contaminated")},
        baseline=_answer(ws, base_eval, comparison.baseline, doc_id, comparison.metric),
        candidate=_answer(ws, cand_eval, comparison.candidate, doc_id, comparison.metric))
    for synthetic in comparison.synthetics:
        target = scan_target(ws, comparison.benchmark, synthetic)
        found = item_evidence(ws, target, str(record_id)) if target is not None else None
        if found is not None:
            detail.evidence.append(found)
    return detail


def choices_table(detail: ItemDetail) -> pd.DataFrame:
    """Multiple choice: one row per choice with both runs' log-likelihoods, which each chose, and the target."""
    runs = [a for a in (detail.baseline, detail.candidate) if a is not None and a.choices]
    if not runs:
        return pd.DataFrame()
    choices = runs[0].choices or []
    target = next((a.target_index for a in runs if a.target_index is not None), None)
    out = pd.DataFrame({"choice": [chr(ord("A") + i) if i < 26 else str(i) for i in range(len(choices))],
                        "text": choices})
    for role, answer in (("baseline", detail.baseline), ("candidate", detail.candidate)):
        lls = answer.loglikelihoods if answer is not None and answer.loglikelihoods else None
        out[f"{role}_loglikelihood"] = (lls + [np.nan] * (len(choices) - len(lls)))[:len(choices)] if lls \
            else [np.nan] * len(choices)
        out[f"{role}_chose"] = [answer is not None and answer.chosen == i for i in range(len(choices))]
    out["target"] = [target == i for i in range(len(choices))]
    return out
