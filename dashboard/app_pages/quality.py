"""Quality & Bias: duplicates, diversity, structure, fidelity and invalid rows; skew against real data."""

from __future__ import annotations

import streamlit as st

from synthscope.dashboard.components.safe import md
from synthscope.dashboard.components.scorecard import (
    evidence,
    evidence_table,
    pick_scorecard,
    score_form,
    show_metrics,
)
from synthscope.dashboard.components.workspace import require_workspace
from synthscope.scorecard import charts, report

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
        show_metrics(metrics, "quality", key="q_metrics")
        structure = evidence(ws, report_id, "quality", "structure")
        if structure is not None and not structure.empty:
            st.markdown("**Structure against the reference**")
            st.altair_chart(charts.structure_shares(structure), width="content")
        evidence_table("Duplicate clusters", evidence(ws, report_id, "quality", "duplicate_clusters"), "No duplicates.",
                       "quality_duplicate_clusters")
        evidence_table("Invalid rows", evidence(ws, report_id, "quality", "invalid_rows"), "No invalid rows.",
                       "quality_invalid_rows")
    with bias_tab:
        show_metrics(metrics, "bias", key="b_metrics")
        clusters = evidence(ws, report_id, "bias", "clusters")
        if clusters is not None and not clusters.empty:
            st.markdown("**Topic clusters: synthetic share against the reference share**")
            st.altair_chart(charts.cluster_shares(clusters), width="stretch")
            evidence_table("Clusters", clusters, "", "bias_clusters")
            evidence_table("Example rows per cluster", evidence(ws, report_id, "bias", "cluster_examples"), "",
                           "bias_cluster_examples")
        evidence_table("Attribute balance", evidence(ws, report_id, "bias", "attributes"), "No attribute terms found.",
                       "bias_attributes")
        evidence_table("Label balance", evidence(ws, report_id, "bias", "labels"), "The rows carry no labels.",
                       "bias_labels")
    for note in manifest.get("notes", []):
        if note.startswith(("quality", "bias")):
            st.caption(f"Not measured — {md(note)}")
st.subheader("Score a version")
score_form(ws)
