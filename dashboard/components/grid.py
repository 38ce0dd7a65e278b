"""The benchmark × synthetic grid of contaminated share: a heatmap and a table."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

SHARE_COLUMNS = {
    "benchmark": st.column_config.TextColumn("benchmark"),
    "synthetic": st.column_config.TextColumn("synthetic"),
    "items": st.column_config.NumberColumn("items"),
    "contaminated": st.column_config.NumberColumn("contaminated",
                                                  help="items counted as contaminated (default: confirmed + likely)"),
    "confirmed": st.column_config.NumberColumn("confirmed", help="a copy, or a semantic match a task-aware check "
                                               "confirmed (e.g. the record's code passes the item's tests)"),
    "likely": st.column_config.NumberColumn("likely", help="a semantic match above likely_at that no check refuted"),
    "candidate": st.column_config.NumberColumn("candidates", help="worth a look; not counted"),
    "expected_false": st.column_config.NumberColumn("expected false", format="%.1f",
                                                    help="counted flags chance alone would give"),
    "question_seen": st.column_config.NumberColumn("question seen", help="counted items whose question leaked"),
    "answer_seen": st.column_config.NumberColumn("answer seen", help="counted items whose answer leaked too"),
    "exact": st.column_config.NumberColumn("exact", help="decided by the exact stage: n-gram coverage"),
    "near_duplicate": st.column_config.NumberColumn("near-duplicate",
                                                    help="decided by the near-duplicate stage: Jaccard"),
    "semantic": st.column_config.NumberColumn("semantic", help="decided by the semantic stage: embedding cosine"),
    "judged": st.column_config.NumberColumn("judged", help="decided by the judge model"),
    "dirty": st.column_config.NumberColumn("dirty", help="n-gram coverage at or above the dirty threshold"),
    "partial": st.column_config.NumberColumn("partial", help="n-gram coverage between the two thresholds"),
    "contaminated_share": st.column_config.ProgressColumn("contaminated share", format="percent",
                                                          min_value=0.0, max_value=1.0),
    "scan_id": st.column_config.TextColumn("scan"),
}


def heatmap(grid: pd.DataFrame) -> alt.LayerChart:
    """Cells coloured by contaminated share, labelled ``contaminated / items`` and the share."""
    data = grid.assign(label=[f"{c} / {n}  ({s:.1%})" for c, n, s in
                              zip(grid["contaminated"], grid["items"], grid["contaminated_share"])])
    top = max(0.2, float(data["contaminated_share"].max() or 0.0))
    base = alt.Chart(data).encode(
        x=alt.X("synthetic:N", title="synthetic dataset", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("benchmark:N", title="benchmark"),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color("contaminated_share:Q", title="contaminated",
                        scale=alt.Scale(domain=[0, top], range=["#f4f6f8", "#c62828"], clamp=True),
                        legend=alt.Legend(format="%")),
        tooltip=["benchmark", "synthetic", "items", "contaminated", "confirmed", "likely",
                 alt.Tooltip("candidate:Q", title="candidates (not counted)"),
                 alt.Tooltip("expected_false:Q", title="expected false", format=".1f"), "exact",
                 alt.Tooltip("near_duplicate:Q", title="near-duplicate"), "semantic", "judged", "dirty", "partial",
                 alt.Tooltip("contaminated_share:Q", format=".1%", title="share"), "scan_id"],
    )
    labels = base.mark_text(fontSize=14, fontWeight="bold").encode(
        text="label:N",
        color=alt.condition(alt.datum.contaminated_share > top / 2, alt.value("white"), alt.value("#222")),
    )
    return (cells + labels).properties(height=alt.Step(56))


def grid_table(grid: pd.DataFrame) -> None:
    st.dataframe(grid, hide_index=True, column_config=SHARE_COLUMNS)
