"""Drawing scores over time: one line per subset (all, clean, contaminated) across runs' dates."""

from __future__ import annotations

import altair as alt
import pandas as pd

SUBSET_COLOURS = {"all": "#455a64", "clean": "#2e7d32", "contaminated": "#c62828"}


def score_trend_chart(frame: pd.DataFrame, height: int = 300) -> alt.Chart:
    """Lines with points: ``score`` against ``date`` per ``subset`` (``run_id``, ``items`` in the tooltip)."""
    return alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=70)).encode(
        x=alt.X("date:T", title="run date", axis=alt.Axis(format="%Y-%m-%d", labelAngle=-30)),
        y=alt.Y("score:Q", title="score", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("subset:N", title="items", scale=alt.Scale(domain=list(SUBSET_COLOURS),
                                                                   range=list(SUBSET_COLOURS.values()))),
        detail="subset:N",
        tooltip=["run_id:N", alt.Tooltip("date:T", format="%Y-%m-%d"), "subset:N",
                 alt.Tooltip("score:Q", format=".1%"), alt.Tooltip("items:Q"), "metric:N"],
    ).properties(height=height)
