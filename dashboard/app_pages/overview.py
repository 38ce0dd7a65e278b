"""Overview: the scorecard wall, what the workspace holds, the contamination summary, recent scans and jobs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from synthscope.contamination import results
from synthscope.core.workspace import KINDS
from synthscope.dashboard.components import getting_started
from synthscope.dashboard.components.grid import grid_table
from synthscope.dashboard.components.jobs import list_jobs
from synthscope.dashboard.components.scorecard import card
from synthscope.dashboard.components.workspace import cached, require_workspace
from synthscope.datasets import browse
from synthscope.scorecard import report

CARDS_PER_ROW = 2  # a card's lines (grade, section, headline number) are links, which never wrap: room for them


def counted(n: int, what: str, detail: str = "") -> str:
    """``**7** synthetic versions (1,920 rows)``."""
    return f"**{n:,}** {what}{'' if n == 1 else 's'}" + (f" ({detail})" if detail else "")


ws = require_workspace()
st.title("Overview")
if getting_started.needed(ws):
    getting_started.getting_started(ws)

# What the workspace holds, as one line of Markdown: drawn the moment it arrives (a metric's renderer is
# fetched on first use, and showed grey placeholders meanwhile).
by_kind = cached(browse.versions_by_kind, ws).set_index("kind")
scan_list = cached(results.scans, ws)
st.markdown(" · ".join([*(counted(int(by_kind["versions"].get(kind, 0)), f"{kind} version",
                                  f"{int(by_kind['rows'].get(kind, 0)):,} rows") for kind in KINDS),
                        counted(len(scan_list), "scan")]))

links = st.columns(3)
links[0].page_link("app_pages/datasets.py", label="Browse and import datasets")
links[1].page_link("app_pages/contamination.py", label="Inspect contamination and start scans")
links[2].page_link("app_pages/calibration.py", label="Calibrate the stages' thresholds")

st.subheader("Scorecards")
cards = cached(report.scorecards, ws)
if cards.empty:
    st.info("No scorecard yet: score a synthetic version on the Quality & Bias page (or `synthscope score`).")
else:
    st.caption("The newest scorecard of each synthetic version, graded by its policy; each line links to its "
               "evidence. `synthscope gate NAME@VERSION --policy FILE` applies the same grades in CI.")
    for start in range(0, len(cards), CARDS_PER_ROW):
        columns = st.columns(CARDS_PER_ROW)
        for col, row in zip(columns, cards.iloc[start:start + CARDS_PER_ROW].itertuples()):
            with col:
                card(ws, row)

st.subheader("Contamination: benchmark × synthetic")
grid = cached(results.grid, ws)
if grid.empty:
    st.info("No scan yet: start one on the Contamination page (or `synthscope scan`).")
else:
    st.caption("The newest scan of each pair; an item counts as contaminated unless its verdict is clean, "
               "and is counted under the stage that decided it.")
    grid_table(grid)

st.subheader("Dataset versions")
versions = cached(browse.dataset_versions, ws)
if versions.empty:
    st.info("No datasets yet: import one on the Datasets page (or `synthscope ingest`).")
else:
    st.dataframe(versions.sort_values(["kind", "name", "created_at"]),
                 column_order=["kind", "name", "version", "rows", "errors", "created_at"], hide_index=True)

st.subheader("Latest scans")
if scan_list.empty:
    st.caption("none yet")
else:
    st.dataframe(scan_list.head(10), hide_index=True,
                 column_config={"seconds": st.column_config.NumberColumn(format="%.2f")})

st.subheader("Recent jobs")
recent = list_jobs(ws)[:10]
if not recent:
    st.caption("none yet")
else:
    st.dataframe(pd.DataFrame([{
        "job": j.job_id, "kind": j.kind, "state": j.state, "progress": j.fraction, "message": j.message,
        "started": j.started_at, "ended": j.ended_at, "error": j.error,
    } for j in recent]), hide_index=True, column_config={
        "progress": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0)})
