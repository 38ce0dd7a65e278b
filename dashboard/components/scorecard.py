"""Scorecard widgets: grade badges, one card per dataset version, and the version picker of the scorecard pages."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from synthscope import tasks
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError
from synthscope.dashboard.components.safe import md
from synthscope.dashboard.components.widgets import MISSING
from synthscope.dashboard.components.workspace import cached, read_only
from synthscope.datasets import browse
from synthscope.scorecard import report
from synthscope.scorecard.metrics import format_value

# A grade is its word; the colour only helps (an emoji carried it once, and without an emoji font it was a box).
GRADE_COLOURS = {"pass": "green", "warn": "orange", "fail": "red", "info": "gray"}
CELL_COLOURS = {"pass": "#2e7d32", "warn": "#b26a00", "fail": "#c62828", "info": "#607d8b"}  # in tables
SECTION_PAGES = {"contamination": ("app_pages/contamination.py", "Contamination"),
                 "quality": ("app_pages/quality.py", "Quality & Bias"),
                 "bias": ("app_pages/quality.py", "Quality & Bias"),
                 "privacy": ("app_pages/privacy.py", "Privacy")}
METRICS = {
    "label": st.column_config.TextColumn("metric"),
    "shown": st.column_config.TextColumn("value"),
    "grade": st.column_config.TextColumn("grade"),
    "rule": st.column_config.TextColumn("policy", help="the bounds of the policy the scorecard was graded with"),
    "detail": st.column_config.TextColumn("behind it", width="large"),
    "key": st.column_config.TextColumn("key"),
}


def badge(grade: str) -> str:
    """Markdown for a grade: its word in a badge of its colour (``:red-badge[fail]``); anything else in grey."""
    return f":{GRADE_COLOURS.get(grade, 'gray')}-badge[{_word(grade)}]"


def coloured(grade: str) -> str:
    """Markdown for a grade in large type (a metric's value): its word in its colour (``:red[fail]``)."""
    return f":{GRADE_COLOURS.get(grade, 'gray')}[{_word(grade)}]"


def _word(grade: object) -> str:
    """The grade's word; a value that is not a grade is data, so escaped (and ``?`` when empty)."""
    return str(grade) if grade in GRADE_COLOURS else md(grade) or "?"


def grade_style(grade: object) -> str:
    """CSS for a grade's table cell: the word in its colour (the table shows the word itself)."""
    return f"color: {CELL_COLOURS[grade]}; font-weight: 600" if grade in CELL_COLOURS else ""


def headline(metrics: pd.DataFrame, section: str) -> pd.Series | None:
    """The metric a card shows for ``section``: its worst-graded one (the first of equals)."""
    rows = metrics[metrics["section"] == section]
    if rows.empty:
        return None
    order = rows["grade"].map({"fail": 0, "warn": 1, "pass": 2, "info": 3})
    return rows.assign(_o=order).sort_values("_o", kind="stable").iloc[0]


def card(ws: Workspace, row: Any) -> None:
    """One dataset version: overall grade, then per section its grade, headline number and a link to the evidence."""
    metrics = cached(report.metrics, ws, row.report_id)
    with st.container(border=True):
        st.markdown(f"**{md(row.ref)}** · {badge(row.status)}")
        for section in report.SECTIONS:
            top = headline(metrics, section)
            page, title = SECTION_PAGES[section]
            grade = getattr(row, section)
            number = f"{top['label']}: {format_value(top['key'], top['value'])}" if top is not None else "not measured"
            detail = f" ({md(top['detail'])})" if top is not None and top["detail"] else ""
            st.page_link(page, label=f"{badge(grade)} {section} — {md(number)}",
                         query_params={"dataset": row.ref}, help=f"{title}: the evidence behind it{detail}")
        st.caption(f"scorecard {md(row.report_id)}")


def metrics_table(metrics: pd.DataFrame, section: str | None = None) -> pd.DataFrame:
    rows = metrics if section is None else metrics[metrics["section"] == section]
    rows = rows.assign(shown=[format_value(k, v) for k, v in zip(rows["key"], rows["value"], strict=True)])
    return rows[["label", "shown", "grade", "rule", "detail", "key"]]


def show_metrics(metrics: pd.DataFrame, section: str, key: str) -> None:
    """A section's metrics as a table, each grade its word in its colour."""
    table = metrics_table(metrics, section).reset_index(drop=True)
    st.dataframe(table.style.map(grade_style, subset=["grade"]), hide_index=True, column_config=METRICS, key=key)


def evidence(ws: Workspace, report_id: str, section: str, table: str) -> pd.DataFrame | None:
    """An evidence table of a scorecard, or None when that section did not produce it."""
    try:
        return report.evidence(ws, report_id, section, table)
    except WorkspaceError:
        return None


def evidence_table(title: str, frame: pd.DataFrame | None, empty: str, key: str) -> None:
    """A bold title, then the table, or ``empty`` when there are no rows."""
    st.markdown(f"**{title}**")
    if frame is None or frame.empty:
        st.caption(empty)
    else:
        st.dataframe(frame, hide_index=True, key=key, placeholder=MISSING)


def pick_scorecard(ws: Workspace, key: str) -> dict[str, Any] | None:
    """A synthetic version with a scorecard (``?dataset=NAME@VERSION`` chooses it); its newest scorecard manifest."""
    cards = report.scorecards(ws)
    if cards.empty:
        st.info("No scorecard yet: score a synthetic version below, or with "
                "`synthscope score NAME@VERSION --reference REAL --source PRIVATE --holdout HOLDOUT`.")
        return None
    refs = list(cards["ref"])
    wanted = st.query_params.get("dataset")
    if wanted in refs and st.session_state.get(f"{key}_from_link") != wanted:
        st.session_state[key] = wanted  # a link from the Overview picks the version once
        st.session_state[f"{key}_from_link"] = wanted
    if st.session_state.get(key) not in refs:
        st.session_state[key] = refs[-1]
    chosen = st.selectbox("Synthetic dataset version", refs, key=key)
    st.query_params["dataset"] = chosen
    manifest = report.latest(ws, DatasetRef.parse(chosen))
    assert manifest is not None
    inputs = ", ".join(f"{k} {md(manifest[k])}" for k in ("reference", "source", "holdout") if manifest.get(k))
    st.caption(f"{badge(manifest['status'])} · scorecard {md(manifest['report_id'])} of "
               f"{md(manifest['created_at'][:19])} · measured against {inputs or 'no other data'} · graded by "
               f"{md(manifest['policy'])}")
    return manifest


def score_form(ws: Workspace) -> None:
    """Score a synthetic version as a job: pick it and the data it is measured against."""
    if read_only(ws, "Scoring"):
        return
    versions = browse.dataset_versions(ws)
    by_kind = {k: list(versions.loc[versions["kind"] == k, "ref"]) for k in ("synthetic", "reference", "source")}
    if not by_kind["synthetic"]:
        st.caption("No synthetic dataset to score yet: import one on the Datasets page.")
        return
    none = "(none)"
    with st.form("score_form"):
        c1, c2, c3, c4 = st.columns(4)
        dataset = c1.selectbox("Synthetic version", by_kind["synthetic"], key="score_dataset")
        reference = c2.selectbox("Reference (real data)", [none, *by_kind["reference"]], key="score_reference")
        source = c3.selectbox("Private source", [none, *by_kind["source"]], key="score_source",
                              help="what the generator saw: PII replay and near-copies are measured against it")
        holdout = c4.selectbox("Holdout", [none, *by_kind["source"]], key="score_holdout",
                               help="private rows of the same population the generator did not see")
        submitted = st.form_submit_button("Score it", type="primary")
    if submitted:
        inputs = {k: v for k, v in (("reference", reference), ("source", source), ("holdout", holdout)) if v != none}
        job_id = tasks.start(ws, tasks.ScoreTask(dataset, **inputs))
        st.toast(f"Scoring {md(dataset)} (job {md(job_id)})")
    from synthscope.dashboard.components.jobs import job_panel

    job_panel(ws, "score", "Score", lambda job: f"{job.result.get('status', '?').upper()} "
              f"(scorecard {job.result.get('report_id')})", limit=2)
