"""Trends: every scorecard metric across a dataset's versions, with the policy's bounds drawn on the chart."""

from __future__ import annotations

import streamlit as st

from synthscope.dashboard.components.safe import md
from synthscope.dashboard.components.scorecard import coloured
from synthscope.dashboard.components.widgets import choose
from synthscope.dashboard.components.workspace import require_workspace
from synthscope.scorecard import charts, report
from synthscope.scorecard.metrics import format_value

ws = require_workspace()
st.title("Trends")
st.caption("Is each synthetic dataset getting better? The newest scorecard of every version, in the order the "
           "versions were imported; dashed lines are the policy's warn and fail bounds.")
trends = report.version_trends(ws)
if trends.empty:
    st.info("No scorecard yet: score synthetic versions on the Quality & Bias page or with `synthscope score`.")
    st.stop()
datasets = sorted(trends["dataset"].unique())
dataset = choose("Dataset", datasets, key="tr_dataset")
mine = trends[trends["dataset"] == dataset]
latest = report.latest(ws, report.DatasetRef(dataset))
policy = report.policy_of(latest) if latest else None
versions = mine.drop_duplicates("version").sort_values("order")
cols = st.columns(max(1, len(versions)))
cards = report.scorecards(ws).set_index("ref")
for col, version in zip(cols, versions["version"]):
    status = cards.loc[f"{dataset}@{version}", "status"]
    col.metric(md(version), coloured(status))
measured = [k for k in dict.fromkeys(mine["key"]) if mine.loc[mine["key"] == k, "value"].notna().any()]
graded = [k for k in measured if policy and k in policy.rules]
others = [k for k in measured if k not in graded]
shown = st.multiselect("Metrics", graded + others, default=graded, key="tr_metrics")
for row_start in range(0, len(shown), 2):
    cols = st.columns(2)
    for col, key in zip(cols, shown[row_start:row_start + 2]):
        with col:
            st.altair_chart(charts.metric_trend(mine, key, policy), width="stretch")
table = mine.pivot_table(index=["section", "key"], columns="version", values="value", aggfunc="first")
table = table[list(versions["version"])]
shown_table = table.astype(object)
for (section, key), values in table.iterrows():
    shown_table.loc[(section, key)] = [format_value(key, v) for v in values]
st.dataframe(shown_table, key="tr_table")
