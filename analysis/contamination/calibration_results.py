"""Reading calibrations: the list, the recommendations, the sweeps, the score distributions, the FPR curves.

``synthscope calibrate`` (:mod:`synthscope.contamination.calibrate`) writes
``calibrations/<id>/`` and the views ``calibrations``, ``calibration_sweeps``
(item level), ``calibration_fpr`` (pair and item FPR per stage on a grid) and
``calibration_recommendations`` read it; ``pairs.parquet`` in the same folder
holds every twin pair and each item's hardest non-twin with the per-stage
scores (``<stage>_score``) and is read here with DuckDB's ``read_parquet``.
:func:`fpr_curve` is how another module reads a stage's FPR(t), e.g. to
estimate the false flags a scan of ``R`` records will show
(``FprCurve.expected_false_flags``). :func:`synthscope.tasks.start_calibration`
checks its inputs and starts a calibration as a job.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from synthscope.contamination.calibrate import STAGE_SCORES, FprCurve, min_negative_items
from synthscope.contamination.cascade import STAGES
from synthscope.core.workspace import Workspace

_STAGE_ORDER = "CASE stage " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STAGES)) + " ELSE 99 END"


def calibrations(ws: Workspace) -> pd.DataFrame:
    """Every calibration, newest first, with ``min_negative_items`` and ``coarse`` (too few to back the target)."""
    df = ws.query("""
        SELECT calibration_id, created_at, description, benchmark, positives, negatives, negative_pairs,
               target_fpr, stages
        FROM calibrations
        ORDER BY calibration_id DESC
    """)
    df["min_negative_items"] = [min_negative_items(float(t)) for t in df["target_fpr"]]
    df["coarse"] = df["negatives"] < df["min_negative_items"]
    return df


def recommendations(ws: Workspace, calibration_id: str) -> pd.DataFrame:
    """Per stage (cascade order): the recommended threshold or why it was refused, and the current one.

    ``item_fpr`` is the false-positive rate a scan shows (items some non-twin
    reaches the threshold with), ``pair_fpr`` the per-comparison one;
    ``negative_items`` back the first, ``negative_pairs`` the second. ``toml``
    holds the synthscope.toml lines of a recommendation, ``reason`` the
    refusal's (exactly one of them is set).
    """
    return ws.query(f"""
        SELECT stage, score, status, threshold, recall, item_fpr, pair_fpr, precision, f1, negative_items,
               negative_pairs, positives, floor, current_threshold, current_recall, current_item_fpr,
               current_pair_fpr, setting, toml, reason, target_fpr
        FROM calibration_recommendations
        WHERE calibration_id = ?
        ORDER BY {_STAGE_ORDER}
    """, [calibration_id])


def toml_snippet(recs: pd.DataFrame) -> str:
    """The ``synthscope.toml`` lines that set every recommended threshold ("" when every stage was refused)."""
    return "\n\n".join(t for s, t in zip(recs["status"], recs["toml"]) if s == "recommended" and isinstance(t, str))


def fpr_curve(ws: Workspace, calibration_id: str, stage: str) -> FprCurve:
    """A stage's pair FPR, item FPR and recall against its threshold (``calibration_fpr``), as an :class:`FprCurve`."""
    frame = ws.query("SELECT * FROM calibration_fpr WHERE calibration_id = ? AND stage = ? ORDER BY threshold",
                     [calibration_id, stage])
    if frame.empty:
        raise ValueError(f"calibration {calibration_id!r} has no FPR curve of the {stage} stage")
    return FprCurve.from_frame(stage, frame)


def latest_calibration(ws: Workspace, stage: str, benchmark: str | None = None) -> str | None:
    """The newest calibration that measured ``stage`` (of ``benchmark``, NAME@VERSION, when given), or None."""
    df = ws.query("SELECT calibration_id, benchmark, stages FROM calibrations ORDER BY calibration_id DESC")
    for row in df.itertuples():
        if stage in str(row.stages).split(",") and (benchmark is None or row.benchmark == benchmark):
            return str(row.calibration_id)
    return None


def sweep_curves(ws: Workspace, calibration_id: str, max_points: int = 400) -> pd.DataFrame:
    """Recall, precision, item FPR and pair FPR against the threshold, long form: ``stage, threshold, metric, value``.

    The first three come from the exact item-level sweep, the pair FPR from
    the stage's grid curve; a stage with more than ``max_points`` thresholds is
    thinned evenly (its first and last kept) so a chart stays light.
    """
    thin = """
        WITH s AS (
            SELECT *, row_number() OVER (PARTITION BY stage ORDER BY threshold) - 1 AS i,
                   count(*) OVER (PARTITION BY stage) AS n
            FROM {view} WHERE calibration_id = ? {extra}
        )
        SELECT stage, threshold, {columns} FROM s
        WHERE n <= ? OR i = n - 1 OR i % CAST(ceil(n / ?) AS BIGINT) = 0
        ORDER BY {order}, threshold
    """
    args = [calibration_id, max_points, max_points]
    items = ws.query(thin.format(view="calibration_sweeps", extra="", columns="recall, precision, item_fpr",
                                 order=_STAGE_ORDER), args)
    # the pair FPR from the first threshold where it is below 1, so the chart is not all grid below the scores
    pairs = ws.query(thin.format(view="calibration_fpr", extra="AND pair_fpr < 1", columns="pair_fpr",
                                 order=_STAGE_ORDER), args)
    long = [items.melt(id_vars=["stage", "threshold"], value_vars=["recall", "precision", "item_fpr"],
                       var_name="metric", value_name="value"),
            pairs.melt(id_vars=["stage", "threshold"], value_vars=["pair_fpr"], var_name="metric",
                       value_name="value")]
    return pd.concat([f for f in long if not f.empty] or long[:1], ignore_index=True)


def pairs_path(ws: Workspace, calibration_id: str) -> Path:
    """``calibrations/<id>/pairs.parquet`` of a calibration the workspace lists (else ``ValueError``)."""
    known = ws.query("SELECT 1 FROM calibrations WHERE calibration_id = ?", [calibration_id])
    if known.empty:
        raise ValueError(f"no calibration {calibration_id!r} in {ws.root}")
    return ws.artefact_dir("calibrations", calibration_id) / "pairs.parquet"


def score_distributions(ws: Workspace, calibration_id: str, bins: int = 20) -> pd.DataFrame:
    """Histograms of each stage's score: the known positives, and each item's hardest non-twin.

    Returns ``stage, label ("positive"/"negative"), bin_start, bin_end, pairs,
    share``: a positive is a twin pair; a negative is one item's best score
    over all its non-twin candidates (what decides a scan's false flag, so its
    histogram is what the item FPR counts). ``share`` is the fraction of that
    label's scores in the bin (the two differ in number, so shares compare their
    shapes). Bins span ``[min(0, lowest score), 1]`` in ``bins`` equal steps; a
    score a stage could not compute (NaN) is left out.
    """
    path = pairs_path(ws, calibration_id)
    con = ws.connect()
    try:
        columns = set(con.execute("SELECT name FROM parquet_schema(?)", [str(path)]).df()["name"])
        stages = [s for s in STAGES if f"{s}_score" in columns]
        pairs = con.execute(f"SELECT item_id, label, {', '.join(f'{s}_score' for s in stages) or 'NULL AS none'} "
                            "FROM read_parquet(?)", [str(path)]).df()
    finally:
        con.close()
    frames = []
    positive = pairs["label"].astype(bool)
    for stage in stages:
        scores = pairs[f"{stage}_score"].astype(float)
        hardest = scores[~positive].groupby(pairs.loc[~positive, "item_id"]).max()
        values_of = {"positive": scores[positive].dropna().to_numpy(), "negative": hardest.dropna().to_numpy()}
        known = np.concatenate(list(values_of.values()))
        low = min(0.0, float(known.min())) if len(known) else 0.0
        high = max(1.0, float(known.max())) if len(known) else 1.0
        edges = np.linspace(low, high, bins + 1)
        for name, values in values_of.items():
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
