"""Compare: a baseline run against a candidate run on a task, split by what the contamination scan found."""

from __future__ import annotations

import functools

import streamlit as st

from synthscope.core.workspace import Workspace, WorkspaceError
from synthscope.dashboard.components import evidence as evidence_view
from synthscope.dashboard.components.compare import (
    contam_chart,
    item_answers,
    membership_chart,
    points,
    subset_chart,
)
from synthscope.dashboard.components.jobs import job_panel, list_jobs
from synthscope.dashboard.components.safe import md
from synthscope.dashboard.components.widgets import MISSING, choose, percent
from synthscope.dashboard.components.workspace import read_only, require_workspace
from synthscope.evals import compare_results as cr
from synthscope.evals.compare import Comparison, compare, curve, summarize
from synthscope.tasks import MinkTask
from synthscope.tasks import start as start_job

N_BOOT = 10_000
RATE = {"format": "percent", "min_value": 0.0, "max_value": 1.0}
SUBSETS = {
    "subset": st.column_config.TextColumn("subset"),
    "n": st.column_config.NumberColumn("items"),
    "baseline": st.column_config.NumberColumn("baseline", format="percent"),
    "candidate": st.column_config.NumberColumn("candidate", format="percent"),
    "gain": st.column_config.NumberColumn("gain", format="%+.3f", help="candidate − baseline (mean per item)"),
    "b": st.column_config.NumberColumn("b", help="items the baseline got right and the candidate wrong"),
    "c": st.column_config.NumberColumn("c", help="items the candidate got right and the baseline wrong"),
    "mcnemar_p": st.column_config.NumberColumn("McNemar p", format="%.4f",
                                               help="exact two-sided McNemar test on b and c"),
}
SUMMARY = {
    "task": st.column_config.TextColumn("task"),
    "items": st.column_config.NumberColumn("items"),
    "contaminated": st.column_config.NumberColumn("contaminated"),
    "gain_clean": st.column_config.NumberColumn("gain on clean", format="%+.3f"),
    "gain_contaminated": st.column_config.NumberColumn("gain on contaminated", format="%+.3f"),
    "inflation": st.column_config.NumberColumn("inflation", format="%+.3f"),
    "ci_low": st.column_config.NumberColumn("CI low", format="%+.3f"),
    "ci_high": st.column_config.NumberColumn("CI high", format="%+.3f"),
    "excludes_zero": st.column_config.CheckboxColumn("CI excludes 0"),
    "mcnemar_p_contaminated": st.column_config.NumberColumn("McNemar p (contaminated)", format="%.4f"),
    "holm_p_contaminated": st.column_config.NumberColumn("Holm p (contaminated)", format="%.4f",
                                                         help="adjusted for the number of tasks compared"),
    "mcnemar_p_clean": st.column_config.NumberColumn("McNemar p (clean)", format="%.4f"),
    "holm_p_clean": st.column_config.NumberColumn("Holm p (clean)", format="%.4f"),
}
ITEMS = {
    "doc_id": st.column_config.NumberColumn("doc"),
    "record_id": st.column_config.TextColumn("record"),
    "contaminated": st.column_config.CheckboxColumn("contaminated"),
    "verdict": st.column_config.TextColumn("decided by"),
    "bucket": st.column_config.TextColumn("n-gram bucket"),
    "coverage": st.column_config.ProgressColumn("coverage", **RATE),
    "cosine": st.column_config.NumberColumn("cosine", format="%.2f"),
    "baseline": st.column_config.NumberColumn("baseline", format="%.2f"),
    "candidate": st.column_config.NumberColumn("candidate", format="%.2f"),
    "change": st.column_config.NumberColumn("change", format="%+.2f", help="candidate − baseline"),
    "mink_baseline": st.column_config.NumberColumn("Min-K%++ baseline", format="%.2f",
                                                   help="model-side signal under the baseline; higher: more 'seen'"),
    "mink_candidate": st.column_config.NumberColumn("Min-K%++ candidate", format="%.2f",
                                                    help="model-side signal under the candidate; higher: more 'seen'"),
}
MEMBERSHIP = {
    "score": st.column_config.TextColumn("score"),
    "items": st.column_config.NumberColumn("items"),
    "positives": st.column_config.NumberColumn("contaminated"),
    "auroc": st.column_config.NumberColumn("AUROC", format="%.3f",
                                           help="chance that a contaminated item outscores a clean one; 0.5 = chance"),
}


@st.cache_data(show_spinner="Comparing the two runs…", max_entries=64)
def cached_compare(root: str, baseline: str, candidate: str, task: str, metric: str, fingerprint: str) -> Comparison:
    """:func:`compare` for the page; ``fingerprint`` (eval and scan ids) makes a new import or scan a new entry."""
    del fingerprint  # part of the cache key only
    return compare(Workspace.open(root), baseline, candidate, task, metric=metric, n_boot=N_BOOT, seed=0)


def run_compare(ws: Workspace, baseline: str, candidate: str, task: str, metric: str) -> Comparison | str:
    """The comparison, or the reason there is none (missing scan, unlinked evals, ...)."""
    try:
        return cached_compare(str(ws.root), baseline, candidate, task, metric,
                              cr.fingerprint(ws, baseline, candidate, [task]))
    except (WorkspaceError, ValueError) as exc:
        return str(exc)


def pick(ws: Workspace, runs: list[str]) -> tuple[str, str] | None:
    c1, c2 = st.columns(2)
    with c1:
        baseline = choose("Baseline run", runs, key="cmp_baseline")
    with c2:
        others = [r for r in runs if r != baseline]
        if "cmp_candidate" not in st.session_state and others:
            st.session_state["cmp_candidate"] = others[-1]  # the newest other run
        candidate = choose("Candidate run", others, key="cmp_candidate",
                           help="the run trained with the synthetic data; its training datasets decide which "
                                "scans count")
    if candidate is None:
        st.info("Only one run has evaluations: record and evaluate another to compare.")
        return None
    return baseline, candidate


def headline(c: Comparison) -> None:
    infl = c.inflation
    st.caption(f"{len(c.items)} items of {md(c.benchmark)} answered by both runs; contamination from the scans "
               f"against {md(', '.join(c.synthetics))}; metric {md(c.metric)}.")
    cols = st.columns(4)
    cols[0].metric("Gain on clean items", points(infl.clean.gain), help=f"{infl.clean.n} items: candidate "
                   f"{percent(infl.clean.candidate)} vs baseline {percent(infl.clean.baseline)}")
    cols[1].metric("Gain on contaminated items", points(infl.contaminated.gain),
                   help=f"{infl.contaminated.n} items: candidate {percent(infl.contaminated.candidate)} vs "
                        f"baseline {percent(infl.contaminated.baseline)}")
    cols[2].metric("Inflation", points(infl.estimate), help="gain on contaminated − gain on clean")
    ci = MISSING if infl.reason else f"{infl.low * 100:+.1f} to {infl.high * 100:+.1f}"
    cols[3].metric(f"{infl.confidence:.0%} CI of the inflation (pp)", ci,
                   help=f"stratified paired bootstrap, {infl.n_boot:,} resamples")
    if infl.reason:
        st.info(f"Inflation is undefined: {md(infl.reason)}.")
    elif infl.excludes_zero and infl.estimate > 0:
        st.warning(f"The {infl.confidence:.0%} confidence interval excludes 0: the candidate gains "
                 f"{points(infl.estimate)} more on contaminated items than on clean ones — part of its "
                 "improvement sits on leaked items.")
    elif infl.excludes_zero:
        st.success(f"The {infl.confidence:.0%} confidence interval excludes 0, below it: the candidate gains less "
                   "on contaminated items than on clean ones.")
    else:
        st.success(f"The {infl.confidence:.0%} confidence interval includes 0: no evidence that the gain on "
                   "contaminated items differs from the gain on clean ones.")
    dropped = {k: v for k, v in c.dropped.items() if v}
    if dropped:
        st.caption("Left out: " + md(", ".join(f"{v} {k}" for k, v in dropped.items())))


def charts(c: Comparison) -> None:
    left, right = st.columns(2)
    with left:
        st.markdown("**Score per subset**")
        st.altair_chart(subset_chart(cr.subset_scores_long(c, c.baseline, c.candidate), c.baseline, c.candidate),
                        width="stretch")
    with right:
        st.markdown("**ConTAM curve**")
        offered = [s for s in ("coverage", "cosine") if cr.has_scores(c, s)] or ["coverage"]
        score_name = st.radio("Contamination score", offered, horizontal=True, key="cmp_curve_score",
                              label_visibility="collapsed")
        st.altair_chart(contam_chart(cr.contam_curve_long(curve(c, score_name)), score_name), width="stretch")
        st.caption("As the threshold rises fewer items count as contaminated; each run's estimated gain is its "
                   "score on all items minus its score on the items below the threshold. The red line, the "
                   "candidate's minus the baseline's, is the part of the improvement attributed to contamination.")


def start_mink(ws: Workspace, runs: list[str], benchmark: str) -> None:
    for run in runs:
        start_job(ws, MinkTask(run, [benchmark]))


def model_side(ws: Workspace, c: Comparison) -> None:
    st.caption("Min-K%++ (Zhang et al. 2024) asks the model, not the data: per item, the mean of the lowest 20 % of "
               "token scores (log-probability standardised against the model's own next-token distribution). A "
               "model that trained on an item scores it high. AUROC says how well it singles out the items the scan "
               "found contaminated (`synthscope eval mink`).")
    if not c.membership.empty:
        st.dataframe(cr.membership_table(c), hide_index=True, column_config=MEMBERSHIP, key="cmp_membership",
                     placeholder=MISSING)
        dots = cr.membership_points(c)
        if not dots.empty:
            st.altair_chart(membership_chart(dots, c.baseline, c.candidate), width="stretch")
            st.caption("Each dot is an item; above the dashed diagonal the candidate finds it more familiar than "
                       "the baseline does.")
    missing = c.unscored_runs
    if missing and not read_only(ws, "Computing Min-K%++ scores"):
        st.info(f"No Min-K%++ scores on {md(c.benchmark)} for {md(', '.join(missing))}: compute them here or "
                "with `synthscope eval mink --run RUN_ID` for each.")
        st.button(f"Compute Min-K%++ for {md(', '.join(missing))}", key="cmp_mink_start", on_click=start_mink,
                  args=(ws, missing, c.benchmark))
    if missing or list_jobs(ws, "mink"):
        job_panel(ws, "mink", "Min-K%++", lambda job: f"scores {', '.join(job.result.get('score_ids', []))}",
                  limit=2)


def select_item_row(record_ids: list[str]) -> None:
    rows = st.session_state["cmp_items"].selection.rows
    if rows:
        st.session_state["cmp_item"] = record_ids[rows[0]]


def drill_down(ws: Workspace, c: Comparison) -> None:
    table = cr.item_table(c)
    st.caption(f"{len(table)} items, contaminated first, then where the runs differ — click a column to sort, "
               "a row to see it below")
    record_ids = list(table["record_id"])
    st.dataframe(table.drop(columns=["differs"]), hide_index=True, column_config=ITEMS, key="cmp_items",
                 placeholder=MISSING, on_select=functools.partial(select_item_row, record_ids),
                 selection_mode="single-row")
    labels = {r.record_id: (f"doc {r.doc_id} · {r.record_id} — "
                            + (f"contaminated ({r.verdict}, {r.bucket})" if r.contaminated else "clean")
                            + f" · {c.baseline} {r.baseline:g} → {c.candidate} {r.candidate:g}")
              for r in table.itertuples()}
    record_id = choose("Item", record_ids, key="cmp_item", format_func=labels.get)
    detail = cr.item_detail(ws, c, record_id)
    if detail is None:
        st.warning(f"{md(record_id)} is not among the compared items.")
        return
    item_answers(detail)
    st.markdown("**Synthetic evidence**")
    if not detail.evidence:
        st.info("No scan holds evidence for this item.")
    for found in detail.evidence:
        evidence_view.item_evidence(found)


def across_tasks(ws: Workspace, baseline: str, candidate: str, tasks: list[str], metric: str) -> None:
    comparisons, problems = [], []
    for task in tasks:
        metrics = cr.metrics_in_common(ws, baseline, candidate, task)
        result = run_compare(ws, baseline, candidate, task, metric if metric in metrics else (metrics or ["acc"])[0])
        if isinstance(result, str):
            problems.append(f"{task}: {result}")
        else:
            comparisons.append(result)
    if comparisons:
        st.dataframe(summarize(comparisons), hide_index=True, column_config=SUMMARY, key="cmp_summary",
                     placeholder=MISSING)
        st.caption("Holm–Bonferroni keeps the chance of any false positive across these tasks at the level you "
                   "test (e.g. 5 %). A task uses the chosen metric when both runs logged it, else the first they "
                   "share.")
    for problem in problems:
        st.warning(md(problem))


ws = require_workspace()
st.title("Compare runs")
st.caption("Is the candidate's gain over the baseline real, or does it sit on benchmark items its synthetic "
           "training data leaked? (`synthscope compare`)")

all_runs = cr.run_ids(ws)
runs = cr.evaluated_runs(ws)
if len(all_runs) < 2:
    st.info("A comparison needs two runs: record them on the Runs page or with "
            "`synthscope run add --model PATH --id RUN_ID [--dataset NAME@VERSION --synthetic-share 0.3]`.")
    st.stop()
if len(runs) < 2:
    st.info("A comparison needs two runs evaluated on the same task: evaluate them with "
            "`synthscope eval run --run RUN_ID --tasks TASK`, or import lm-eval output with "
            "`synthscope eval import FOLDER --run RUN_ID`.")
    st.stop()

chosen = pick(ws, runs)
if chosen is None:
    st.stop()
baseline, candidate = chosen
tasks = cr.common_tasks(ws, baseline, candidate)
if not tasks:
    st.info(f"{md(baseline)} and {md(candidate)} share no evaluated task: run the same task for both "
            "(`synthscope eval run --run RUN_ID --tasks TASK`).")
    st.stop()
c1, c2 = st.columns(2)
with c1:
    task = choose("Task", tasks, key="cmp_task", help="tasks both runs were evaluated on")
metrics = cr.metrics_in_common(ws, baseline, candidate, task)
if not metrics:
    st.warning(f"The two evaluations of {md(task)} share no per-sample metric (acc, acc_norm or exact_match).")
    st.stop()
with c2:
    metric = choose("Metric", metrics, key="cmp_metric")

result = run_compare(ws, baseline, candidate, task, metric)
if isinstance(result, str):
    st.error(f"No comparison: {md(result)}")
    st.stop()

headline(result)
st.subheader("Subsets")
st.dataframe(result.subsets, hide_index=True, column_config=SUBSETS, key="cmp_subsets", placeholder=MISSING)
charts(result)
st.subheader("Model side")
model_side(ws, result)
if len(tasks) > 1:
    st.subheader("Across tasks")
    across_tasks(ws, baseline, candidate, tasks, metric)
st.subheader("Items")
drill_down(ws, result)
