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


# Cells are sized to their text: the widest label at this many pixels a character (14 px bold), plus padding.
CELL_FONT = 14
CHAR_PX = 9
CELL_PAD = 28
ROW_PX = 40


def cell_label(contaminated: int, items: int, share: float) -> str:
    """``32 / 164 (19.5%)``: the counted items of a pair, of how many, and the share."""
    return f"{contaminated} / {items} ({share:.1%})"


def grid_cells(grid: pd.DataFrame) -> pd.DataFrame:
    """The heatmap's cells: one per row of ``grid``, each labelled in full (``label``).

    ``grid`` (:func:`synthscope.contamination.results.grid`) holds the pairs some scan ran, each from its newest
    scan, so a cell is a benchmark × synthetic pair that was scanned, never one of the cross product that no
    scan asked for. Ordered by benchmark, then synthetic dataset.
    """
    cells = grid.sort_values(["benchmark", "synthetic"], kind="stable").reset_index(drop=True)
    return cells.assign(label=[cell_label(int(c), int(n), float(s)) for c, n, s in
                               zip(cells["contaminated"], cells["items"], cells["contaminated_share"], strict=True)])


def text_px(texts: pd.Series | list[str], char_px: float = CHAR_PX) -> int:
    """About how wide the longest of ``texts`` draws, in pixels."""
    return int(max((len(str(t)) for t in texts), default=0) * char_px)


def heatmap(grid: pd.DataFrame) -> alt.FacetChart:
    """The scanned pairs, one block per benchmark: a row per synthetic dataset scanned against it, each cell
    coloured by contaminated share and labelled ``contaminated / items (share)``.

    A benchmark's block lists only the synthetic datasets scanned against it (its own y scale), so there is no
    blank cell for a pair nobody scanned. Cells are as wide as their longest label, every dataset name is drawn
    in full (no label limit, no label dropped for overlap), and the chart draws as SVG, so its text is in the page.
    """
    data = grid_cells(grid)
    top = max(0.2, float(data["contaminated_share"].max() or 0.0))
    width = max(160, text_px(data["label"]) + CELL_PAD)
    base = alt.Chart(data).encode(
        y=alt.Y("synthetic:N", title=None, sort=None,
                axis=alt.Axis(labelLimit=0, labelOverlap=False, labelFontSize=13, labelPadding=8, ticks=False,
                              domain=False)),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color("contaminated_share:Q", title="contaminated",
                        scale=alt.Scale(domain=[0, top], range=["#f4f6f8", "#c62828"], interpolate="rgb", clamp=True),
                        legend=alt.Legend(format="%", orient="right", gradientLength=120)),
        tooltip=["benchmark", "synthetic", "items", "contaminated", "confirmed", "likely",
                 alt.Tooltip("candidate:Q", title="candidates (not counted)"),
                 alt.Tooltip("expected_false:Q", title="expected false", format=".1f"), "exact",
                 alt.Tooltip("near_duplicate:Q", title="near-duplicate"), "semantic", "judged", "dirty", "partial",
                 alt.Tooltip("contaminated_share:Q", format=".1%", title="share"), "scan_id"],
    )
    labels = base.mark_text(fontSize=CELL_FONT, fontWeight="bold", limit=0).encode(
        text="label:N",
        color=alt.condition(alt.datum.contaminated_share > top / 2, alt.value("white"), alt.value("#222")),
    )
    return (cells + labels).properties(width=width, height=alt.Step(ROW_PX)).facet(
        row=alt.Row("benchmark:N", title=None, sort="ascending",
                    header=alt.Header(labelAngle=0, labelOrient="top", labelAnchor="start", labelLimit=0,
                                      labelFontSize=14, labelFontWeight="bold", labelPadding=6)),
        spacing=18,
    ).resolve_scale(y="independent").properties(usermeta={"embedOptions": {"renderer": "svg"}})


def grid_table(grid: pd.DataFrame) -> None:
    st.dataframe(grid, hide_index=True, column_config=SHARE_COLUMNS)
