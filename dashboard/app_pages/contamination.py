"""Contamination: the benchmark × synthetic grid, per-item verdicts, the evidence, and new scans."""

from __future__ import annotations

import functools

import streamlit as st

from analysis import browse
from analysis.contamination import results
from analysis.contamination.ngram import NgramConfig
from analysis.contamination.scan import config_from
from analysis.workspace import DatasetRef, Workspace, WorkspaceError
from dashboard.components import evidence as evidence_view
from dashboard.components.grid import grid_table, heatmap
from dashboard.components.jobs import scan_jobs
from dashboard.components.widgets import choose, percent
from dashboard.components.workspace import require_workspace

NEWEST = "newest"
ITEM_TABLE = {
    "item_id": st.column_config.TextColumn("item"),
    "coverage": st.column_config.ProgressColumn("coverage", format="percent", min_value=0.0, max_value=1.0,
                                                help="share of the item's tokens inside matched n-grams"),
    "prompt_coverage": st.column_config.NumberColumn("prompt coverage", format="percent"),
    "answer_coverage": st.column_config.NumberColumn("answer coverage", format="percent"),
    "longest_span": st.column_config.NumberColumn("longest span", help="longest run of tokens shared verbatim"),
    "matched_field": st.column_config.TextColumn("matched field"),
    "matched_records": st.column_config.NumberColumn("matched records"),
}


def open_scan(ws: Workspace, scan_id: str) -> None:
    """Point the selectors at a scan's first target (a button callback)."""
    target = next((t for t in results.scan_targets(ws) if t.scan_id == scan_id), None)
    if target is not None:
        st.session_state.update(cont_benchmark=target.benchmark_label, cont_synthetic=target.synthetic_label,
                                cont_scan=scan_id)


def pick_target(targets: list[results.ScanTarget]) -> results.ScanTarget:
    """Benchmark, synthetic dataset and scan (the newest by default)."""
    c1, c2, c3 = st.columns(3)
    with c1:
        bench = choose("Benchmark", list(dict.fromkeys(t.benchmark_label for t in targets)), key="cont_benchmark")
    with c2:
        synthetic = choose("Synthetic dataset", list(dict.fromkeys(
            t.synthetic_label for t in targets if t.benchmark_label == bench)), key="cont_synthetic")
    pair = [t for t in targets if t.benchmark_label == bench and t.synthetic_label == synthetic]
    newest = pair[0].scan_id
    with c3:  # NEWEST follows new scans as they arrive; a scan id stays put
        scan_id = choose("Scan", [NEWEST, *(t.scan_id for t in pair)], key="cont_scan",
                         format_func=lambda s: f"newest ({newest})" if s == NEWEST else
                         f"{s} (newest)" if s == newest else s)
    return pair[0] if scan_id == NEWEST else next(t for t in pair if t.scan_id == scan_id)


def select_item_row(item_ids: list[str]) -> None:
    """Selecting a row of the items table selects that item for the evidence below."""
    rows = st.session_state["cont_items"].selection.rows
    if rows:
        st.session_state["cont_item"] = item_ids[rows[0]]


def items_section(ws: Workspace, target: results.ScanTarget) -> None:
    only = st.toggle("Contaminated items only", value=True, key="cont_only")
    table = results.items(ws, target, contaminated_only=only)
    st.caption(f"{len(table)} items{' with a verdict other than clean' if only else ''} — "
               "click a column to sort, a row to see its evidence")
    st.dataframe(table, hide_index=True, column_config=ITEM_TABLE, key="cont_items",
                 on_select=functools.partial(select_item_row, list(table["item_id"])), selection_mode="single-row")


def evidence_section(ws: Workspace, target: results.ScanTarget) -> None:
    candidates = results.items_with_evidence(ws, target)
    if candidates.empty:
        st.info(f"No record of {target.synthetic_label} shares an n-gram with any item of "
                f"{target.benchmark_label}.")
        return
    labels = {r.item_id: f"{r.item_id} — {r.bucket}, coverage {percent(r.coverage)}, longest span {r.longest_span}"
              for r in candidates.itertuples()}
    item_id = choose("Benchmark item (contaminated first)", list(labels), key="cont_item", format_func=labels.get)
    found = results.item_evidence(ws, target, item_id)
    if found is None:
        st.warning(f"{item_id} has no verdict in scan {target.scan_id}.")
    else:
        evidence_view.item_evidence(found)


def new_scan_form(ws: Workspace) -> None:
    """Pick datasets and settings; the scan runs as a job (its progress shows above)."""
    synthetic_refs = list(browse.dataset_versions(ws, "synthetic")["ref"])
    benchmark_refs = list(browse.dataset_versions(ws, "benchmark")["ref"])
    if not synthetic_refs or not benchmark_refs:
        st.info("A scan needs a benchmark and a synthetic dataset: import them on the Datasets page.")
        return
    defaults = config_from(ws)
    with st.form("new_scan"):
        c1, c2 = st.columns(2)
        synthetics = c1.multiselect("Synthetic dataset(s)", synthetic_refs, key="scan_synthetics")
        benchmark = c2.selectbox("Benchmark", benchmark_refs, key="scan_benchmark")
        c1, c2, c3, c4 = st.columns(4)
        ns = c1.multiselect("n-gram sizes", list(range(4, 26)), default=sorted(defaults.ns, reverse=True),
                            key="scan_ns", help="a field uses the largest n that fits it")
        clean_below = c2.number_input("Clean below (coverage)", 0.0, 1.0, defaults.clean_below, 0.05,
                                      key="scan_clean_below")
        dirty_from = c3.number_input("Dirty from (coverage)", 0.0, 1.0, defaults.dirty_from, 0.05,
                                     key="scan_dirty_from")
        top_k = c4.number_input("Evidence rows per item", 1, 100, defaults.top_k, key="scan_top_k")
        submitted = st.form_submit_button("Start scan", type="primary")
    if not submitted:
        return
    try:
        config = NgramConfig(ns=tuple(sorted(ns, reverse=True)), clean_below=clean_below,
                                dirty_from=dirty_from, top_k=int(top_k))
        job_id = results.start_scan_job(ws, DatasetRef.parse(benchmark),
                                        [DatasetRef.parse(s) for s in synthetics], config)
    except (ValueError, WorkspaceError) as exc:
        st.error(f"The scan was not started: {exc}")
        return
    st.success(f"Started scan job {job_id}; its progress shows at the top of this page.")


ws = require_workspace()
st.title("Contamination")

st.subheader("Scan jobs")
jobs_box = st.container()  # filled last, so a scan started by the form below shows at once

grid = results.grid(ws)
if grid.empty:
    st.info("No scan yet: start one below.")
else:
    st.subheader("Benchmark × synthetic: contaminated share")
    st.altair_chart(heatmap(grid), width="stretch")
    grid_table(grid)

    st.subheader("Items")
    target = pick_target(results.scan_targets(ws))
    items_section(ws, target)

    st.subheader("Evidence")
    evidence_section(ws, target)

st.subheader("New scan")
new_scan_form(ws)

with jobs_box:
    scan_jobs(ws, functools.partial(open_scan, ws))
