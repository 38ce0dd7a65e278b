"""Contamination: the benchmark × synthetic grid, per-item verdicts, the evidence, and new scans."""

from __future__ import annotations

import functools

import streamlit as st

from synthscope import tasks
from synthscope.contamination import results
from synthscope.contamination.cascade import STAGES
from synthscope.contamination.scan import config_from
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError
from synthscope.dashboard.components import evidence as evidence_view
from synthscope.dashboard.components.evidence import STAGE_NAMES
from synthscope.dashboard.components.grid import grid_table, heatmap
from synthscope.dashboard.components.jobs import scan_jobs
from synthscope.dashboard.components.safe import md
from synthscope.dashboard.components.widgets import MISSING, choose, is_missing, percent, score
from synthscope.dashboard.components.workspace import read_only, require_workspace
from synthscope.datasets import browse

NEWEST = "newest"
ITEM_TABLE = {
    "item_id": st.column_config.TextColumn("item"),
    "tier": st.column_config.TextColumn(
        "evidence", help="confirmed: a copy, or a semantic match a task-aware check confirmed; likely: a semantic "
        "match above likely_at; candidate: worth a look, not counted"),
    "verdict": st.column_config.TextColumn("decided by", help="the stage behind the counted evidence"),
    "leaked": st.column_config.TextColumn("leaked", help="what the counted evidence holds: question, answer or both"),
    "reason": st.column_config.TextColumn("why", help="the best evidence in one line", width="large"),
    "chance": st.column_config.NumberColumn("chance", format="%.2f",
                                            help="probability that chance alone gives a semantic flag this strong"),
    "coverage": st.column_config.ProgressColumn("coverage", format="percent", min_value=0.0, max_value=1.0,
                                                help="exact: share of the item's tokens inside matched n-grams"),
    "jaccard": st.column_config.NumberColumn("Jaccard", format="%.2f",
                                             help="near-duplicate: best Jaccard of word 5-gram shingles"),
    "cosine": st.column_config.NumberColumn("cosine", format="%.2f",
                                            help="semantic: best cosine between embedding windows"),
    "judge_score": st.column_config.NumberColumn("judge", format="%.2f", help="judged: P(same problem)"),
    "bucket": st.column_config.TextColumn("n-gram bucket"),
    "longest_span": st.column_config.NumberColumn("longest span", help="longest run of tokens shared verbatim"),
    "number_substituted": st.column_config.CheckboxColumn("numbers changed",
                                                          help="near-duplicate once numbers are masked"),
    "prompt_coverage": st.column_config.NumberColumn("prompt coverage", format="percent"),
    "answer_coverage": st.column_config.NumberColumn("answer coverage", format="percent"),
    "matched_field": st.column_config.TextColumn("matched field"),
    "matched_records": st.column_config.NumberColumn("matched records", help="records sharing an n-gram"),
}
ITEM_ORDER = list(ITEM_TABLE)


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
        bench = choose("Benchmark", sorted({t.benchmark_label for t in targets}), key="cont_benchmark")
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


def tier_summary(ws: Workspace, target: results.ScanTarget) -> None:
    """Counted items by tier beside the candidates, and how many flags chance alone would give."""
    tiers = results.tier_counts(ws, target)
    expected = results.expected_false(ws, target)
    counted = tiers.get("confirmed", 0) + tiers.get("likely", 0)
    cols = st.columns(5)
    cols[0].metric("Contaminated (counted)", counted, help="confirmed + likely, as the scan's policy counts")
    cols[1].metric("Confirmed", tiers.get("confirmed", 0),
                   help="a copy, or a semantic match a task-aware check confirmed (e.g. passes the item's tests)")
    cols[2].metric("Likely", tiers.get("likely", 0), help="a semantic match above likely_at that no check refuted")
    cols[3].metric("Candidates (not counted)", tiers.get("candidate", 0), help="worth a look; not in any count")
    cols[4].metric("Expected false", MISSING if expected is None else f"≈ {expected:.1f}",
                   help="counted flags chance alone would give in a corpus this size (semantic matches at "
                   "likely_at; each item's null fitted on its cosines with the records)")
    if expected is not None:
        st.caption(f"{counted} flagged · expected false ≈ {expected:.1f} at this threshold")


def items_section(ws: Workspace, target: results.ScanTarget) -> None:
    tier_summary(ws, target)
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    only = c1.toggle("Contaminated items only", value=True, key="cont_only")
    counts = results.verdict_counts(ws, target)
    offered = [v for v in counts if not (only and v == "clean")]
    if "cont_stages" in st.session_state:  # keep only choices still offered
        st.session_state["cont_stages"] = [v for v in st.session_state["cont_stages"] if v in offered]
    chosen = c2.multiselect("Decided by", offered, key="cont_stages", placeholder="every stage",
                            format_func=lambda v: f"{STAGE_NAMES.get(v, v)} ({counts[v]})",
                            help="keep the items whose verdict came from these stages")
    table = results.items(ws, target, contaminated_only=only, verdicts=chosen)
    what = " with a verdict other than clean" if only and not chosen else ""
    st.caption(f"{len(table)} items{what} — click a column to sort, a row to see its evidence")
    st.dataframe(table, hide_index=True, column_config=ITEM_TABLE, column_order=ITEM_ORDER, key="cont_items",
                 placeholder=MISSING, on_select=functools.partial(select_item_row, list(table["item_id"])),
                 selection_mode="single-row")


def _item_label(row: object) -> str:
    """``HumanEval/4 — likely: semantic, cosine 0.78``: the item, its tier, deciding stage and that stage's score."""
    tier = "" if is_missing(row.tier) or row.tier == "clean" else f"{row.tier}: "
    return f"{row.item_id} — {tier}{_stage_detail(row)}"


def _stage_detail(row: object) -> str:
    verdict = row.verdict
    if verdict == "exact":
        detail = f"exact ({row.bucket}), coverage {percent(row.coverage)}, longest span {row.longest_span}"
    elif verdict == "near_duplicate":
        detail = f"near-duplicate, Jaccard {score(row.jaccard)}" + (
            "" if is_missing(row.number_substituted) or not row.number_substituted else ", numbers changed")
    elif verdict == "semantic":
        detail = f"semantic, cosine {score(row.cosine)}"
    elif verdict == "judged":
        detail = f"judged, judge {score(row.judge_score)}"
    else:
        best = [f"coverage {percent(row.coverage)}" if not is_missing(row.coverage) and row.coverage > 0 else "",
                f"best cosine {score(row.cosine)}" if not is_missing(row.cosine) else ""]
        detail = ", ".join(["not counted" if row.tier == "candidate" else "clean", *(b for b in best if b)])
    return detail


def evidence_section(ws: Workspace, target: results.ScanTarget) -> None:
    candidates = results.items_with_evidence(ws, target)
    if candidates.empty:
        st.info(f"No record of {md(target.synthetic_label)} matches any item of {md(target.benchmark_label)} "
                "at any stage.")
        return
    labels = {r.item_id: _item_label(r) for r in candidates.itertuples()}
    item_id = choose("Benchmark item (contaminated first)", list(labels), key="cont_item", format_func=labels.get)
    found = results.item_evidence(ws, target, item_id)
    if found is None:
        st.warning(f"{md(item_id)} has no verdict in scan {md(target.scan_id)}.")
    else:
        evidence_view.item_evidence(found)


def new_scan_form(ws: Workspace) -> None:
    """Pick datasets, stages and settings; the scan runs as a job (its progress shows above)."""
    if read_only(ws, "A scan"):
        return
    synthetic_refs = list(browse.dataset_versions(ws, "synthetic")["ref"])
    benchmark_refs = list(browse.dataset_versions(ws, "benchmark")["ref"])
    if not synthetic_refs or not benchmark_refs:
        st.info("A scan needs a benchmark and a synthetic dataset: import them on the Datasets page.")
        return
    try:
        defaults = config_from(ws)
    except ValueError as exc:
        st.error(f"The workspace's synthscope.toml has a bad [contamination] setting: {md(exc)}")
        return
    # Outside the form, so that choosing a stage shows its settings at once.
    stages = st.multiselect("Stages", list(STAGES), default=list(defaults.stages), key="scan_stages",
                            format_func=lambda s: STAGE_NAMES.get(s, s),
                            help="cheapest first; each later stage looks at what the earlier ones left undecided. "
                                 "The exact stage always runs.")
    stages = [s for s in STAGES if s in stages or s == "exact"]
    near = defaults.near_duplicate or _stage_defaults("near_duplicate", ws)
    semantic = defaults.semantic or _stage_defaults("semantic", ws)
    with st.form("new_scan"):
        c1, c2 = st.columns(2)
        synthetics = c1.multiselect("Synthetic dataset(s)", synthetic_refs, key="scan_synthetics")
        benchmark = c2.selectbox("Benchmark", benchmark_refs, key="scan_benchmark")
        st.caption("Exact n-grams")
        c1, c2, c3, c4 = st.columns(4)
        ngram = defaults.ngram
        ns = c1.multiselect("n-gram sizes", list(range(4, 26)), default=sorted(ngram.ns, reverse=True),
                            key="scan_ns", help="a field uses the largest n that fits it")
        clean_below = c2.number_input("Clean below (coverage)", 0.0, 1.0, float(ngram.clean_below), 0.05,
                                      key="scan_clean_below")
        dirty_from = c3.number_input("Dirty from (coverage)", 0.0, 1.0, float(ngram.dirty_from), 0.05,
                                     key="scan_dirty_from")
        top_k = c4.number_input("Evidence rows per item", 1, 100, int(ngram.top_k), key="scan_top_k")
        near_flag_at = semantic_flag_at = None
        if "near_duplicate" in stages or "semantic" in stages:
            c1, c2, _, _ = st.columns(4)
            if "near_duplicate" in stages:
                near_flag_at = c1.number_input("Near-duplicate: flag at (Jaccard)", 0.0, 1.0,
                                               float(near.flag_at), 0.01, key="scan_near_flag_at",
                                               help="Jaccard of word shingles from which a pair is a near-duplicate")
            if "semantic" in stages:
                semantic_flag_at = c2.number_input("Semantic: flag at (cosine)", -1.0, 1.0,
                                                   float(semantic.flag_at), 0.01, key="scan_semantic_flag_at",
                                                   help="best-window cosine from which a pair is flagged "
                                                        "(see the Calibration page)")
        submitted = st.form_submit_button("Start scan", type="primary")
    if not submitted:
        return
    overrides = {"stages": stages, "ngram.ns": sorted(ns, reverse=True), "ngram.clean_below": clean_below,
                 "ngram.dirty_from": dirty_from, "ngram.top_k": int(top_k),
                 "near_duplicate.flag_at": near_flag_at, "semantic.flag_at": semantic_flag_at}
    try:
        if not ns:
            raise ValueError("choose at least one n-gram size")
        job_id = tasks.start_scan(ws, DatasetRef.parse(benchmark), [DatasetRef.parse(s) for s in synthetics],
                                  overrides)
    except (ValueError, WorkspaceError) as exc:
        st.error(f"The scan was not started: {md(exc)}")
        return
    st.success(f"Started scan job {md(job_id)}; its progress shows at the top of this page.")


def _stage_defaults(stage: str, ws: Workspace) -> object:
    """A stage's settings as the workspace would give them were it on (for a stage the defaults leave off)."""
    config = config_from(ws, {"stages": ["exact", stage]})
    return config.near_duplicate if stage == "near_duplicate" else config.semantic


ws = require_workspace()
st.title("Contamination")

st.subheader("Scan jobs")
jobs_box = st.container()  # filled last, so a scan started by the form below shows at once

grid = results.grid(ws)
if grid.empty:
    st.info("No scan yet: start one below.")
else:
    st.subheader("Benchmark × synthetic: contaminated share")
    st.altair_chart(heatmap(grid), width="content")
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
