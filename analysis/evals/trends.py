"""Scores per task across runs over their dates, split into clean and contaminated items.

For leadership's question "are our models getting better, or only better at the
leaked items?". Each run's newest evaluation of a task is split by one fixed
definition of contamination for the whole chart, so runs are compared on the same
items: an item of the task's benchmark version is *contaminated* when the latest
scan of that version against any synthetic dataset of the workspace flags it
(:func:`synthscope.evals.compare.item_contamination`). A run's date is its
training date (``run add --date``), else the day it was recorded.
"""

from __future__ import annotations

import pandas as pd

from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.evals.compare import item_contamination

METRICS = ("acc", "exact_match", "acc_norm")  # the first one a task's evaluations logged is its score
COLUMNS = ["task", "metric", "benchmark", "run_id", "date", "subset", "items", "score"]
SUBSETS = ("all", "clean", "contaminated")


def _scanned_synthetics(ws: Workspace, benchmark: DatasetRef) -> list[DatasetRef]:
    rows = ws.query("""SELECT DISTINCT s.synthetic, s.synthetic_version FROM latest_verdicts s
                       JOIN datasets d ON d.name = s.synthetic AND d.version = s.synthetic_version
                       WHERE s.benchmark = ? AND s.benchmark_version = ? AND d.kind = 'synthetic' ORDER BY ALL""",
                    [benchmark.name, str(benchmark.version)])
    return [DatasetRef(n, v) for n, v in zip(rows["synthetic"], rows["synthetic_version"], strict=True)]


def score_trends(ws: Workspace) -> pd.DataFrame:
    """Per task, run and subset (all / clean / contaminated): the run's score and the items behind it.

    Only evaluations linked to benchmark records count. Tasks whose benchmark has no
    scan against a synthetic dataset get the ``all`` subset only.
    """
    evals = ws.query("""
        SELECT e.eval_id, e.run_id, e.task, e.benchmark, e.benchmark_version,
               coalesce(r.date, substr(r.created_at, 1, 10)) AS date
        FROM evals e JOIN runs r USING (run_id)
        WHERE e.benchmark IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY e.run_id, e.task ORDER BY e.created_at DESC) = 1""")
    if evals.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows: list[dict[str, object]] = []
    for (task, name, version), group in evals.groupby(["task", "benchmark", "benchmark_version"], sort=True):
        bench = DatasetRef(name, version)
        synthetics = _scanned_synthetics(ws, bench)
        dirty = (item_contamination(ws, bench, synthetics).set_index("item_id")["contaminated"]
                 if synthetics else pd.Series(dtype=bool))
        ids = list(group["eval_id"])
        samples = ws.query(f"""
            SELECT eval_id, record_id, {', '.join(METRICS)} FROM eval_samples
            WHERE eval_id IN ({', '.join('?' for _ in ids)}) AND record_id IS NOT NULL
            QUALIFY "filter" = min("filter") OVER (PARTITION BY eval_id)""", ids)
        metric = next((m for m in METRICS if samples[m].notna().all() and len(samples)), None)
        if metric is None:
            continue
        samples["contaminated"] = samples["record_id"].map(dirty)
        for ev in group.itertuples():
            mine = samples[samples["eval_id"] == ev.eval_id]
            parts = {"all": mine}
            if synthetics:
                parts["clean"] = mine[mine["contaminated"] == False]  # noqa: E712 - NaN (unscanned) is neither
                parts["contaminated"] = mine[mine["contaminated"] == True]  # noqa: E712
            for subset, part in parts.items():
                if len(part):
                    rows.append({"task": task, "metric": metric, "benchmark": str(bench), "run_id": ev.run_id,
                                 "date": ev.date, "subset": subset, "items": len(part),
                                 "score": float(part[metric].mean())})
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["date"] = pd.to_datetime(out["date"])
    return out.sort_values(["task", "date", "run_id", "subset"]).reset_index(drop=True)
