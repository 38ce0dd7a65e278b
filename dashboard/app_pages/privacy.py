"""Privacy: PII in synthetic rows, PII replayed from the private source, near-copies and membership inference."""

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
from synthscope.dashboard.components.widgets import MISSING
from synthscope.dashboard.components.workspace import require_workspace
from synthscope.scorecard import report
from synthscope.scorecard.privacy import redact

RAW_COLUMNS = ("value", "normalized", "source_value")


ws = require_workspace()
st.title("Privacy")
st.caption("Does the synthetic set leak what its generator saw? PII in its rows, PII values replayed from the private "
           "source, near-copies of source records, and a membership-inference check (`synthscope score`).")
manifest = pick_scorecard(ws, "pv_dataset")
if manifest is not None:
    report_id = manifest["report_id"]
    show_metrics(report.metrics(ws, report_id), "privacy", key="p_metrics")
    reveal = st.toggle("Show PII values", value=False, key="pv_reveal",
                       help="values are masked by default; reveal them only where you are allowed to see them")
    evidence_table("Replay by entity type — source PII values that reappear in synthetic rows",
                   evidence(ws, report_id, "privacy", "replay_by_entity"), "No private source to compare with.",
                   "pv_replay")
    hits = evidence(ws, report_id, "privacy", "pii_hits")
    if hits is not None and not reveal:
        hits = hits.drop(columns=[c for c in RAW_COLUMNS if c in hits.columns])
    evidence_table("PII in synthetic rows" + ("" if reveal else " (values masked)"), hits,
                   "No PII found in the synthetic rows.", "pv_hits")
    copies = evidence(ws, report_id, "privacy", "near_copies")
    st.markdown("**Near-copies of source records**")
    if copies is None or copies.empty:
        st.caption("No synthetic row is a near-copy of a source record.")
    else:
        if not reveal:
            copies = copies.assign(synthetic_text=copies["synthetic_text"].map(redact),
                                   source_text=copies["source_text"].map(redact))
        st.dataframe(copies, hide_index=True, key="pv_copies", placeholder=MISSING)
        labels = [f"{r.synthetic_id} ≈ {r.source_id}" for r in copies.itertuples()]
        pick = st.selectbox("Compare a near-copy with its source record", range(len(labels)),
                            format_func=labels.__getitem__, key="pv_copy")
        row = copies.iloc[pick]
        left, right = st.columns(2)
        for col, side in ((left, "synthetic"), (right, "source")):
            col.caption(f"{side} {md(row[f'{side}_id'])}")
            col.code(str(row.get(f"{side}_text", "")), language=None, wrap_lines=True)
        st.caption("PII inside the texts is masked unless values are shown; the rest of the text is as stored, "
                   "since a near-copy of a private record is itself the leak.")
    for note in manifest.get("notes", []):
        if note.startswith("privacy"):
            st.caption(f"Not measured — {md(note)}")
st.subheader("Score a version")
score_form(ws)
