"""Quality & Bias: duplicates, diversity, structure, fidelity and invalid rows; skew against real data."""

from __future__ import annotations

import streamlit as st

from analysis import charts, report
from analysis.workspace import WorkspaceError
from dashboard.components.scorecard import METRICS, metrics_table, pick_scorecard, score_form
from dashboard.components.widgets import MISSING
from dashboard.components.workspace import require_workspace


def evidence(report_id: str, section: str, table: str):
    try:
        return report.evidence(ws, report_id, section, table)
    except WorkspaceError:
        return None


def show_table(report_id: str, section: str, table: str, title: str, empty: str) -> None:
    frame = evidence(report_id, section, table)
    st.markdown(f"**{title}**")
    if frame is None or frame.empty:
        st.caption(empty)
    else:
        st.dataframe(frame, hide_index=True, key=f"{section}_{table}", placeholder=MISSING)


ws = require_workspace()
st.title("Quality & Bias")
st.caption("Is the synthetic set accurate and unbiased? Duplicates, diversity, structure and fidelity against real "
           "data, invalid rows, and which topics and groups it over- or under-represents (`synthscope score`).")
manifest = pick_scorecard(ws, "qb_dataset")
if manifest is not None:
    report_id = manifest["report_id"]
    metrics = report.metrics(ws, report_id)
    quality_tab, bias_tab = st.tabs(["Quality", "Bias"])
    with quality_tab:
        st.dataframe(metrics_table(metrics, "quality"), hide_index=True, column_config=METRICS, key="q_metrics")
        structure = evidence(report_id, "quality", "structure")
        if structure is not None and not structure.empty:
            st.markdown("**Structure against the reference**")
            st.altair_chart(charts.structure_shares(structure), width="content")
        show_table(report_id, "quality", "duplicate_clusters", "Duplicate clusters", "No duplicates.")
        show_table(report_id, "quality", "invalid_rows", "Invalid rows", "No invalid rows.")
    with bias_tab:
        st.dataframe(metrics_table(metrics, "bias"), hide_index=True, column_config=METRICS, key="b_metrics")
        clusters = evidence(report_id, "bias", "clusters")
        if clusters is not None and not clusters.empty:
            st.markdown("**Topic clusters: synthetic share against the reference share**")
            st.altair_chart(charts.cluster_shares(clusters), width="stretch")
            show_table(report_id, "bias", "clusters", "Clusters", "")
            show_table(report_id, "bias", "cluster_examples", "Example rows per cluster", "")
        show_table(report_id, "bias", "attributes", "Attribute balance", "No attribute terms found.")
        show_table(report_id, "bias", "labels", "Label balance", "The rows carry no labels.")
    for note in manifest.get("notes", []):
        if note.startswith(("quality", "bias")):
            st.caption(f"Not measured — {note}")
st.subheader("Score a version")
score_form(ws)
