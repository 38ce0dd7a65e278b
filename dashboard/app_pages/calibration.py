"""Calibration: how each stage's threshold trades recall for false positives on known pairs, and new calibrations."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from synthscope import tasks
from synthscope.compute import jobs
from synthscope.contamination import calibration_results as cal
from synthscope.contamination.cascade import STAGES
from synthscope.contamination.scan import config_from
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError
from synthscope.dashboard.components.calibration import distribution_chart, threshold_chart
from synthscope.dashboard.components.evidence import STAGE_NAMES, stage_name
from synthscope.dashboard.components.jobs import job_panel
from synthscope.dashboard.components.safe import md
from synthscope.dashboard.components.widgets import MISSING, choose
from synthscope.dashboard.components.workspace import read_only, require_workspace
from synthscope.datasets import browse

NEWEST = "newest"
NO_DATASET = "—"
RATE = {"format": "percent", "min_value": 0.0, "max_value": 1.0}
RECOMMENDATIONS = {
    "stage": st.column_config.TextColumn("stage"),
    "score": st.column_config.TextColumn("score", help="what the stage's threshold applies to"),
    "status": st.column_config.TextColumn("status", help="recommended, or refused (the reason is shown below)"),
    "threshold": st.column_config.NumberColumn(
        "recommended", format="%.3f", help="the threshold with the most recall whose item-level FPR on hard negatives "
        "stays within the target, never below the stage's floor"),
    "recall": st.column_config.NumberColumn("recall", format="percent", help="known positives caught"),
    "item_fpr": st.column_config.NumberColumn(
        "item FPR", format="percent", help="share of items that some non-twin candidate (another benchmark item, "
        "another item's positive) reaches the threshold with: the false-positive rate a scan shows"),
    "pair_fpr": st.column_config.NumberColumn(
        "pair FPR", format="percent", help="share of hard-negative pairs at or above the threshold: per comparison"),
    "precision": st.column_config.NumberColumn("precision", format="percent"),
    "f1": st.column_config.NumberColumn("F1", format="%.3f"),
    "negative_items": st.column_config.NumberColumn("negative items", help="items the item FPR is measured on"),
    "negative_pairs": st.column_config.NumberColumn("negative pairs", help="pairs the pair FPR is measured on"),
    "floor": st.column_config.NumberColumn(
        "floor", format="%.3f", help="the lowest threshold the stage can use (LSH candidates, candidate_at)"),
    "current_threshold": st.column_config.NumberColumn("current", format="%.3f",
                                                       help="the threshold the workspace uses now"),
    "current_recall": st.column_config.NumberColumn("recall @ current", format="percent"),
    "current_item_fpr": st.column_config.NumberColumn("item FPR @ current", format="percent"),
    "setting": st.column_config.TextColumn("set in synthscope.toml"),
}
HIDDEN = ["target_fpr", "toml", "reason", "positives", "current_pair_fpr"]


def open_calibration(job: jobs.JobStatus) -> None:
    """Select a finished job's calibration (a button callback)."""
    calibration_id = job.result.get("calibration_id")
    if calibration_id:
        st.session_state["cal_id"] = calibration_id


def pick_calibration(calibrations: pd.DataFrame) -> pd.Series:
    """The calibration to show: the newest by default (following new ones), or one picked by id."""
    rows = {r.calibration_id: r for r in calibrations.itertuples()}
    newest = calibrations["calibration_id"].iloc[0]

    def label(cid: str) -> str:
        if cid == NEWEST:
            return f"newest ({newest})"
        r = rows[cid]
        return (f"{cid} — {r.description} · {r.positives} positives, {r.negatives} negatives, "
                f"target FPR {r.target_fpr:g}")

    chosen = choose("Calibration", [NEWEST, *rows], key="cal_id", format_func=label)
    return calibrations.set_index("calibration_id").loc[newest if chosen == NEWEST else chosen]


def summary(calibration_id: str, meta: pd.Series) -> None:
    st.caption(f"{md(meta['description'])} · created {md(meta['created_at'])} · its sweeps:")
    st.code(f"synthscope sql \"SELECT * FROM calibration_sweeps WHERE calibration_id = '{calibration_id}'\"",
            language=None, wrap_lines=True)
    cols = st.columns(4)
    cols[0].metric("Known positives", int(meta["positives"]))
    cols[1].metric("Hard-negative items", int(meta["negatives"]),
                   help="items compared with every candidate that is not their twin: the item FPR's denominator")
    cols[2].metric("Target item FPR", f"{meta['target_fpr']:g}")
    cols[3].metric("Stages", len(str(meta["stages"]).split(",")), help=md(meta["stages"]))
    if meta["coarse"]:
        st.warning(f"Only {int(meta['negatives'])} items back the item-level FPR: a target of "
                   f"{meta['target_fpr']:g} allows fewer than 3 falsely flagged items, so one item more or less "
                   f"moves the measured rate by a third of the target or more, and no threshold is recommended. "
                   f"Use at least {int(meta['min_negative_items']):,} items (a larger benchmark) or a higher target.")


def recommendations_section(recs: pd.DataFrame) -> None:
    st.dataframe(recs.drop(columns=HIDDEN), hide_index=True, key="cal_recs", placeholder=MISSING,
                 column_config=RECOMMENDATIONS)
    st.caption("Rates on hard negatives: every item against every other benchmark item and every other item's known "
               "positive, as a scan compares it. *Item FPR* is the share of items falsely flagged by some non-twin; "
               "*pair FPR* the share of single comparisons.")
    for rec in recs.itertuples():
        if rec.status == "refused":
            st.warning(f"{stage_name(rec.stage)}: no threshold recommended — {md(rec.reason)}.")
    snippet = cal.toml_snippet(recs)
    if snippet:
        st.caption("To use the recommended thresholds, set in the workspace's synthscope.toml:")
        st.code(snippet, language="toml")


def stage_charts(ws: Workspace, calibration_id: str, recs: pd.DataFrame) -> None:
    curves = cal.sweep_curves(ws, calibration_id)
    histograms = cal.score_distributions(ws, calibration_id)
    st.caption("Left: recall, precision, item FPR and pair FPR if the stage flagged everything scoring at or above "
               "the threshold. Right: how the known positives' scores and each item's hardest non-twin score "
               "spread. Solid rule: recommended threshold; dashed: the one in use.")
    for rec in recs.itertuples():
        st.markdown(f"**{stage_name(rec.stage)}** — {md(rec.score)}")
        left, right = st.columns(2)
        stage_curves = curves[curves["stage"] == rec.stage]
        stage_hist = histograms[histograms["stage"] == rec.stage]
        if stage_curves.empty:
            left.caption("no sweep for this stage")
        else:
            left.altair_chart(threshold_chart(stage_curves, rec.score, rec.threshold, rec.current_threshold),
                              width="stretch")
        if stage_hist.empty:
            right.caption("no scored pairs for this stage")
        else:
            right.altair_chart(distribution_chart(stage_hist, rec.score, rec.threshold, rec.current_threshold),
                               width="stretch")


def new_calibration_form(ws: Workspace) -> None:
    """Benchmark, known positives (a dataset or a truth file) and the target; it runs as a job."""
    if read_only(ws, "A calibration"):
        return
    versions = browse.dataset_versions(ws)
    benchmark_refs = list(versions[versions["kind"] == "benchmark"]["ref"])
    if not benchmark_refs:
        st.info("A calibration needs a benchmark: import one on the Datasets page.")
        return
    try:
        default_stages = list(config_from(ws).stages)
    except ValueError:
        default_stages = ["exact"]
    demo_truth = ws.root / "demo" / "planted_truth.parquet"
    with st.form("new_calibration"):
        st.markdown("Known positives: a dataset whose row *i* is contamination of benchmark row *i* (e.g. its "
                    "rephrasings), **or** a planted-truth file with columns dataset, version, record_id, task_id, "
                    "must_flag.")
        c1, c2, c3 = st.columns(3)
        benchmark = c1.selectbox("Benchmark", benchmark_refs, key="cal_benchmark")
        positives = c2.selectbox("Known positives (dataset)", [NO_DATASET, *versions["ref"]], key="cal_positives")
        truth = c3.text_input("or planted-truth file (path on this machine)", key="cal_truth",
                              placeholder=str(demo_truth) if demo_truth.exists() else "/data/truth.parquet")
        c1, c2 = st.columns(2)
        target_fpr = c1.number_input("Target item-level false-positive rate", 0.0001, 0.5, 0.01, 0.005,
                                     format="%.4f", key="cal_target_fpr",
                                     help="the recommended thresholds keep the share of items falsely flagged by a "
                                     "non-twin within this; it needs at least 3 / target benchmark items")
        stages = c2.multiselect("Stages", list(STAGES), default=default_stages, key="cal_stages",
                                format_func=lambda s: STAGE_NAMES.get(s, s))
        submitted = st.form_submit_button("Start calibration", type="primary")
    if not submitted:
        return
    try:
        job_id = tasks.start_calibration(
            ws, DatasetRef.parse(benchmark),
            positives=None if positives == NO_DATASET else DatasetRef.parse(positives),
            truth=truth.strip() or None, target_fpr=float(target_fpr), stages=stages)
    except (ValueError, WorkspaceError) as exc:
        st.error(f"The calibration was not started: {md(exc)}")
        return
    st.success(f"Started calibration job {md(job_id)}; its progress shows at the top of this page.")


ws = require_workspace()
st.title("Calibration")
st.caption("Each stage's threshold, measured on known positives and hard negatives: what it catches and what "
           "a scan would wrongly flag (`synthscope calibrate`).")

st.subheader("Calibration jobs")
jobs_box = st.container()  # filled last, so a calibration started by the form below shows at once

calibrations = cal.calibrations(ws)
if calibrations.empty:
    st.info("No calibration yet: start one below (or `synthscope calibrate`).")
else:
    meta = pick_calibration(calibrations)
    calibration_id = str(meta.name)
    summary(calibration_id, meta)
    st.subheader("Recommended thresholds")
    recs = cal.recommendations(ws, calibration_id)
    recommendations_section(recs)
    st.subheader("Per stage")
    stage_charts(ws, calibration_id, recs)

st.subheader("New calibration")
new_calibration_form(ws)

with jobs_box:
    job_panel(ws, "calibrate", "Calibration", lambda job: f"calibration {job.result.get('calibration_id', '?')}",
              open_calibration, "Show it")
