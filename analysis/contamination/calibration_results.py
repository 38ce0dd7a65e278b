"""Reading calibrations for the dashboard: the list, the recommendations, the sweeps, the score distributions.

``synthscope calibrate`` (:mod:`synthscope.contamination.calibrate`) writes
``calibrations/<id>/`` and the views ``calibrations``, ``calibration_sweeps``
and ``calibration_recommendations`` read it; ``pairs.parquet`` in the same
folder holds every labelled pair's per-stage scores (``<stage>_score``) and is
read here with DuckDB's ``read_parquet``. :func:`synthscope.tasks.start_calibration` checks
its inputs and starts a calibration as a job.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from synthscope.contamination.calibrate import SETTING, STAGE_SCORES
from synthscope.contamination.cascade import STAGES
from synthscope.core.workspace import Workspace

# An FPR estimate needs this many negatives per false positive it allows to be more than coarse.
NEGATIVES_PER_FALSE_POSITIVE = 10
_STAGE_ORDER = "CASE stage " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STAGES)) + " ELSE 99 END"


def min_negatives(target_fpr: float) -> int:
    """Negatives needed for a usable FPR estimate at ``target_fpr``: ``10 / target_fpr``.

    With fewer, the target allows fewer than ten false positives, so a single
    negative moves the measured FPR by a tenth of the target or more.
    """
    return math.ceil(NEGATIVES_PER_FALSE_POSITIVE / target_fpr) if target_fpr > 0 else 0


def calibrations(ws: Workspace) -> pd.DataFrame:
    """Every calibration, newest first, with ``min_negatives`` and ``coarse`` (too few negatives for the target)."""
    df = ws.query("""
        SELECT calibration_id, created_at, description, positives, negatives, target_fpr, stages
        FROM calibrations
        ORDER BY calibration_id DESC
    """)
    df["min_negatives"] = [min_negatives(float(t)) for t in df["target_fpr"]]
    df["coarse"] = df["negatives"] < df["min_negatives"]
    return df


def recommendations(ws: Workspace, calibration_id: str) -> pd.DataFrame:
    """Per stage (cascade order): the recommended threshold and the current one, each with its recall and FPR.

    ``setting`` names where the threshold is set in ``synthscope.toml``.
    """
    df = ws.query(f"""
        SELECT stage, score, threshold, recall, fpr, precision, f1,
               current_threshold, current_recall, current_fpr, target_fpr
        FROM calibration_recommendations
        WHERE calibration_id = ?
        ORDER BY {_STAGE_ORDER}
    """, [calibration_id])
    df["setting"] = [SETTING.get(s, "") for s in df["stage"]]
    return df


def toml_snippet(recs: pd.DataFrame) -> str:
    """The ``synthscope.toml`` lines that set every recommended threshold ("" when none was found)."""
    lines: list[str] = []
    for row in recs.itertuples():
        if row.threshold is None or row.threshold != row.threshold or not row.setting:
            continue
        section, key = row.setting.split(" ", 1)
        lines += [section, f"{key} = {row.threshold:.3f}", ""]
    return "\n".join(lines).strip()


def sweep_curves(ws: Workspace, calibration_id: str, max_points: int = 400) -> pd.DataFrame:
    """Recall, precision and FPR against the threshold, long form: ``stage, threshold, metric, value``.

    A stage with more than ``max_points`` distinct thresholds is thinned evenly
    (its first and last kept) so a chart stays light; the sweep itself is exact.
    """
    df = ws.query(f"""
        WITH s AS (
            SELECT stage, threshold, recall, precision, fpr,
                   row_number() OVER (PARTITION BY stage ORDER BY threshold) - 1 AS i,
                   count(*) OVER (PARTITION BY stage) AS n
            FROM calibration_sweeps WHERE calibration_id = ?
        )
        SELECT stage, threshold, recall, precision, fpr FROM s
        WHERE n <= ? OR i = n - 1 OR i % CAST(ceil(n / ?) AS BIGINT) = 0
        ORDER BY {_STAGE_ORDER}, threshold
    """, [calibration_id, max_points, max_points])
    return df.melt(id_vars=["stage", "threshold"], value_vars=["recall", "precision", "fpr"],
                   var_name="metric", value_name="value")


def pairs_path(ws: Workspace, calibration_id: str) -> Path:
    """``calibrations/<id>/pairs.parquet`` of a calibration the workspace lists (else ``ValueError``)."""
    known = ws.query("SELECT 1 FROM calibrations WHERE calibration_id = ?", [calibration_id])
    if known.empty:
        raise ValueError(f"no calibration {calibration_id!r} in {ws.root}")
    return ws.artefact_dir("calibrations", calibration_id) / "pairs.parquet"


def score_distributions(ws: Workspace, calibration_id: str, bins: int = 20) -> pd.DataFrame:
    """Histograms of each stage's score for known positives and negatives.

    Returns ``stage, label ("positive"/"negative"), bin_start, bin_end, pairs,
    share`` with ``share`` the fraction of that label's scored pairs in the bin
    (positives and negatives differ in number, so shares compare their shapes).
    Bins span ``[min(0, lowest score), 1]`` in ``bins`` equal steps; a pair a
    stage could not score (NaN) is left out.
    """
    path = pairs_path(ws, calibration_id)
    con = ws.connect()
    try:
        columns = set(con.execute("SELECT name FROM parquet_schema(?)", [str(path)]).df()["name"])
        stages = [s for s in STAGES if f"{s}_score" in columns]
        pairs = con.execute(f"SELECT label, {', '.join(f'{s}_score' for s in stages) or 'NULL AS none'} "
                            "FROM read_parquet(?)", [str(path)]).df()
    finally:
        con.close()
    frames = []
    for stage in stages:
        scores = pairs[f"{stage}_score"].astype(float)
        known = scores.notna()
        low = min(0.0, float(scores[known].min())) if known.any() else 0.0
        high = max(1.0, float(scores[known].max())) if known.any() else 1.0
        edges = np.linspace(low, high, bins + 1)
        for label, name in ((True, "positive"), (False, "negative")):
            values = scores[known & (pairs["label"].astype(bool) == label)].to_numpy()
            counts, _ = np.histogram(values, bins=edges)
            frames.append(pd.DataFrame({
                "stage": stage, "label": name, "bin_start": edges[:-1], "bin_end": edges[1:], "pairs": counts,
                "share": counts / max(len(values), 1)}))
    if not frames:
        return pd.DataFrame(columns=["stage", "label", "bin_start", "bin_end", "pairs", "share"])
    return pd.concat(frames, ignore_index=True)


def stage_score_name(stage: str) -> str:
    """The score a stage's threshold applies to (``coverage``, ``jaccard``, ``cosine``, ``judge_score``)."""
    return STAGE_SCORES.get(stage, stage)
