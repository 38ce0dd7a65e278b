"""Runs: trained models with what they were trained on, their evaluations, and a form to record a run."""

from __future__ import annotations

import streamlit as st

from synthscope.core.workspace import Workspace, WorkspaceError
from synthscope.dashboard.components.safe import md
from synthscope.dashboard.components.trends import score_trend_chart
from synthscope.dashboard.components.widgets import MISSING, choose
from synthscope.dashboard.components.workspace import read_only, require_workspace
from synthscope.datasets import browse
from synthscope.evals import compare_results as cr
from synthscope.evals.membership import scored_runs
from synthscope.evals.runs import add_run
from synthscope.evals.trends import score_trends

RUNS = {
    "run_id": st.column_config.TextColumn("run"),
    "model": st.column_config.TextColumn("model", help="a local folder or a hub id"),
    "base_model": st.column_config.TextColumn("base model"),
    "datasets": st.column_config.TextColumn("trained on"),
    "synthetic_share": st.column_config.ProgressColumn("synthetic share", format="percent", min_value=0.0,
                                                       max_value=1.0, help="share of synthetic training examples"),
    "tags": st.column_config.TextColumn("tags"),
    "date": st.column_config.TextColumn("trained"),
    "evals": st.column_config.NumberColumn("evaluations"),
    "created_at": st.column_config.TextColumn("recorded"),
    "notes": st.column_config.TextColumn("notes"),
}
EVALS = {
    "eval_id": st.column_config.TextColumn("eval"),
    "run_id": st.column_config.TextColumn("run"),
    "task": st.column_config.TextColumn("task"),
    "output_type": st.column_config.TextColumn("type"),
    "samples": st.column_config.NumberColumn("samples"),
    "benchmark": st.column_config.TextColumn("benchmark", help="the benchmark version the samples were linked to"),
    "linked": st.column_config.NumberColumn("linked", help="samples matched to a benchmark record by doc_id and hash"),
    "unmatched": st.column_config.NumberColumn("unmatched", help="doc hash mismatches and docs not found"),
    "errors": st.column_config.NumberColumn("bad lines"),
    "metrics": st.column_config.TextColumn("metrics"),
    "created_at": st.column_config.TextColumn("imported"),
}


def parse_share(text: str) -> float | None:
    """``0.3``, ``30%`` or empty (unknown) → a fraction; anything else raises ``ValueError`` with a message."""
    text = text.strip()
    if not text:
        return None
    percent = text.endswith("%")
    try:
        value = float(text.rstrip("%").strip())
    except ValueError:
        raise ValueError(f"synthetic share {text!r} is not a number: write a fraction such as 0.3, "
                         "or a percentage such as 30%") from None
    return value / 100 if percent else value


def tables(ws: Workspace) -> None:
    runs = cr.runs_table(ws)
    if runs.empty:
        st.info("No runs yet: record one below, or with "
                "`synthscope run add --model PATH --id RUN_ID [--dataset NAME@VERSION --synthetic-share 0.3]`.")
    else:
        st.dataframe(runs, hide_index=True, column_config=RUNS, key="runs_table", placeholder=MISSING)
    st.subheader("Evaluations")
    evals = cr.evals_table(ws)
    if evals.empty:
        st.info("No evaluations yet: run lm-eval for a run with `synthscope eval run --run RUN_ID --tasks TASK`, "
                "or import lm-eval output (`--log_samples`) with `synthscope eval import FOLDER --run RUN_ID`.")
    else:
        st.dataframe(evals, hide_index=True, column_config=EVALS, key="evals_table", placeholder=MISSING)
        unlinked = evals[evals["linked"] == 0]
        if not unlinked.empty:
            st.caption(f"{len(unlinked)} evaluation(s) are not linked to benchmark records, so they cannot be split "
                       "by contamination: ingest the task as a benchmark and import them again with "
                       "`--benchmark NAME@VERSION`.")


def trends(ws: Workspace) -> None:
    frame = score_trends(ws)
    if frame.empty:
        st.info("No evaluation is linked to benchmark records yet: scores over time appear once runs are evaluated "
                "on a task ingested as a benchmark.")
        return
    tasks = sorted(frame["task"].unique())
    task = choose("Task", tasks, key="trend_task")
    shown = frame[frame["task"] == task]
    st.altair_chart(score_trend_chart(shown), width="stretch")
    first = shown.iloc[0]
    split = set(shown["subset"]) > {"all"}
    st.caption(f"Metric {md(first['metric'])} on {md(first['benchmark'])}, each run's newest evaluation. "
               + ("Contaminated = flagged by the latest scan of the benchmark against any synthetic dataset of the "
                  "workspace, the same items for every run: a rising contaminated line over a flat clean one is a "
                  "gain that sits on leaked items." if split else
                  "No scan of this benchmark against a synthetic dataset yet, so only the score on all items."))


def membership_scores(ws: Workspace) -> None:
    scores = scored_runs(ws)
    if scores.empty:
        st.caption("No Min-K%++ scores yet: `synthscope eval mink --run RUN_ID` (or the Compare page's button).")
        return
    st.dataframe(scores, hide_index=True, key="membership_table", placeholder=MISSING)


def add_run_form(ws: Workspace) -> None:
    if read_only(ws, "Recording a run"):
        return
    refs = list(browse.dataset_versions(ws)["ref"])
    with st.form("add_run"):
        c1, c2, c3 = st.columns(3)
        model = c1.text_input("Model", key="run_model", placeholder="/models/my-finetune or org/name",
                              help="a local model folder (with config.json) or a hub id")
        run_id = c2.text_input("Run id", key="run_id", placeholder="from the model's name",
                               help="letters, digits, '.', '_' and '-'")
        base_model = c3.text_input("Base model", key="run_base_model", placeholder="optional")
        c1, c2 = st.columns([2, 1])
        datasets = c1.multiselect("Trained on", refs, key="run_datasets", accept_new_options=True,
                                  placeholder="datasets of this workspace, or type NAME[@VERSION]",
                                  help="the synthetic datasets listed here decide which scans a comparison uses")
        share = c2.text_input("Synthetic share", key="run_share", placeholder="0.3 or 30%",
                              help="the share of training examples that were synthetic, 0 to 1")
        c1, c2, c3 = st.columns(3)
        tags = c1.text_input("Tags", key="run_tags", placeholder="comma-separated")
        date = c2.text_input("Trained on (date)", key="run_date", placeholder="YYYY-MM-DD")
        notes = c3.text_input("Notes", key="run_notes")
        submitted = st.form_submit_button("Record run", type="primary")
    if not submitted:
        return
    try:
        run = add_run(ws, model, run_id=run_id.strip() or None, base_model=base_model.strip() or None,
                      datasets=datasets, synthetic_share=parse_share(share),
                      tags=[t for t in tags.split(",") if t.strip()], date=date.strip() or None,
                      notes=notes.strip() or None)
    except (ValueError, WorkspaceError) as exc:
        st.error(f"The run was not recorded: {md(exc)}")
        return
    st.success(f"Recorded run {md(run['run_id'])} ({md(run['model_source'])} model {md(run['model'])}). Evaluate "
               "it with `synthscope eval run --run RUN_ID --tasks TASK`.")
    for warning in run["warnings"]:
        st.warning(md(warning))


ws = require_workspace()
st.title("Runs")
st.caption("Trained models, what they were trained on, and their lm-eval results (`synthscope run list`, "
           "`synthscope eval list`).")
box = st.container()  # filled after the form, so a run recorded below shows at once
st.subheader("Record a run")
add_run_form(ws)
with box:
    tables(ws)
    st.subheader("Scores over time")
    trends(ws)
    st.subheader("Min-K%++ scores")
    membership_scores(ws)
