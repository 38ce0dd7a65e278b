"""Generate: new synthetic rows from an instruct model, a template and a seed pool; checked as they land."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict

import pandas as pd
import streamlit as st

from synthscope import tasks
from synthscope.compute import jobs
from synthscope.compute.device import pick_device
from synthscope.compute.models import DEFAULT_INSTRUCT
from synthscope.compute.sandbox import TemplateError
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError, is_name
from synthscope.dashboard.components.jobs import POLL_SECONDS, list_jobs
from synthscope.dashboard.components.safe import md
from synthscope.dashboard.components.widgets import MISSING, choose
from synthscope.dashboard.components.workspace import read_only, require_workspace
from synthscope.datasets import browse
from synthscope.generation import generate as gen

DEFAULT_TEMPLATE = ("Write one new task in the style of this one, on a different subject. Reply with the task only.\n"
                    "Task: {{ prompt }}")
ROWS_SHOWN = 50


def show_preview(ws: Workspace, pool: str, template: str) -> bool:
    """The rendered prompts of five seeds (only those are read), or why the template cannot run; whether it can."""
    try:
        shown = gen.preview(ws, DatasetRef.parse(pool), template)
    except (WorkspaceError, TemplateError) as exc:
        st.error(f"The template cannot run: {md(exc)}")
        return False
    flagged = len(gen.flagged_seeds(ws, DatasetRef.parse(pool)))
    st.caption(f"Preview over the first {len(shown)} seeds" + (f" · {flagged} seeds are benchmark items per the "
                                                                 "latest scans and are left out" if flagged else ""))
    for record_id, prompt in shown:
        st.code(prompt, language=None, wrap_lines=True)
        st.caption(f"seed {md(record_id)}")
    return bool(shown)


def rows_of(ws: Workspace, run_id: str) -> pd.DataFrame:
    path = ws.artefact_dir("generations", run_id) / "rows.jsonl"
    if not path.is_file():
        return pd.DataFrame()
    lines = path.read_text(encoding="utf-8").splitlines()[-ROWS_SHOWN:]
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line being written
    return pd.DataFrame(rows)


def progress_panel(ws: Workspace) -> None:
    was_running = any(j.state == jobs.RUNNING for j in list_jobs(ws, "generate")[:1])

    @st.fragment(run_every=POLL_SECONDS if was_running else None)
    def panel() -> None:
        recent = list_jobs(ws, "generate")[:1]
        if not recent:
            st.caption("No generation started yet.")
            return
        job = recent[0]
        if was_running and job.state != jobs.RUNNING:
            st.rerun()
        if job.state == jobs.RUNNING:
            st.progress(job.fraction, text=f"job {md(job.job_id)}: {md(job.message)}")
            st.button("Cancel", key="gen_cancel", on_click=jobs.request_cancel, args=(ws, job.job_id),
                      help="stops after the current batch; the rows made so far are kept and the run can resume")
        elif job.state == jobs.SUCCEEDED:
            r = job.result
            if r.get("stopped"):
                st.warning(f"Job {md(job.job_id)} was cancelled after {md(r['rows'])} rows; resume it with "
                           f"`synthscope generate ... --resume RUN_ID` (run {md(r['run_id'])}).")
            else:
                st.success(f"Job {md(job.job_id)}: " + md(
                    f"{r.get('rows')} rows ({r.get('rejected')} rejected) → {r.get('dataset')}, "
                    f"{r.get('tokens_per_second')} tokens/s on {r.get('device')}"
                    + (f"; checked: scorecard {r['status'].upper()}" if r.get("status") else "")))
        else:
            st.error(f"Job {md(job.job_id)} failed: {md(job.error)}")
            st.code(jobs.log_tail(ws, job.job_id) or "(the log is empty)", language=None)
        run_id = job.result.get("run_id")
        if is_name(run_id):
            rows = rows_of(ws, run_id)
            if not rows.empty:
                st.caption(f"The newest rows of run {md(run_id)}, as they arrive")
                st.dataframe(rows[["seed_record_id", "prompt", "answer", "created_at"]], hide_index=True,
                             key="gen_rows", placeholder=MISSING)

    panel()


ws = require_workspace()
st.title("Generate")
st.caption("New synthetic rows from an instruct model, with provenance on every row; the new version can be "
           "scanned and scored as soon as it lands (`synthscope generate`).")
if read_only(ws, "Generating"):
    st.stop()
pools = list(browse.dataset_versions(ws)["ref"])
if not pools:
    st.info("Import a dataset to seed from first (Datasets page or `synthscope ingest`).")
    st.stop()
c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
with c1:
    pool = choose("Seed pool", pools, key="gen_pool", help="rows whose fields fill the template")
with c2:
    model = st.text_input("Model", value=DEFAULT_INSTRUCT, key="gen_model",
                          help="the packaged SmolLM2-135M-Instruct, a local folder or .gguf, or a hub id (online)")
with c3:
    backends = ["transformers"] + (["vllm"] if importlib.util.find_spec("vllm") else [])
    backend = st.selectbox("Backend", backends, key="gen_backend", help="vLLM is offered when it is installed")
with c4:
    st.metric("Device", pick_device("auto"), help="CUDA in bfloat16 when a GPU is present, else the CPU")
template = st.text_area("Prompt template (Jinja)", value=DEFAULT_TEMPLATE, height=120, key="gen_template",
                        help="fields of the seed rows: {{ prompt }}, {{ answer }}, {{ record_id }} and every "
                             "column of the source row")
runnable = show_preview(ws, pool, template)

with st.form("gen_form"):
    c1, c2, c3, c4 = st.columns(4)
    output = c1.text_input("Output dataset", value="generated", key="gen_output")
    limit = c2.number_input("Seeds (at most)", min_value=1, value=20, key="gen_limit")
    n = c3.number_input("Outputs per seed", min_value=1, max_value=16, value=1, key="gen_n")
    max_new = c4.number_input("Max new tokens", min_value=1, max_value=4096, value=64, key="gen_max_new")
    c1, c2, c3, c4 = st.columns(4)
    temperature = c1.number_input("Temperature", min_value=0.0, max_value=5.0, value=0.7, step=0.1, key="gen_temp")
    top_p = c2.number_input("Top p", min_value=0.01, max_value=1.0, value=0.95, key="gen_top_p")
    top_k = c3.number_input("Top k", min_value=0, value=50, key="gen_top_k")
    seed = c4.number_input("Seed", min_value=0, value=0, key="gen_seed")
    c1, c2, c3 = st.columns(3)
    parse = c1.selectbox("Parse output as", gen.PARSERS, key="gen_parse",
                         help="text: the whole output is the prompt; json: {\"prompt\", \"answer\"}; "
                              "delimiter: prompt ### answer")
    stop = c2.text_input("Stop at", key="gen_stop", placeholder="optional string")
    check = c3.checkbox("Scan and score when done", value=True, key="gen_check")
    start = st.form_submit_button("Generate", type="primary", disabled=not runnable)
if start and not is_name(output.strip()):
    st.error("Not started: the output dataset name must be at most 100 letters, digits, '.', '_' or '-', starting "
             "with a letter or digit.")
elif start:
    params = gen.Params(n=int(n), max_new_tokens=int(max_new), temperature=float(temperature), top_p=float(top_p),
                        top_k=int(top_k), stop=[stop] if stop else [], seed=int(seed), parse=parse)
    job_id = tasks.start(ws, tasks.GenerateTask(pool, template, output.strip(), model.strip(), asdict(params),
                                                int(limit), backend=backend, check=check))
    st.toast(f"Generating (job {md(job_id)})")
st.subheader("Progress")
progress_panel(ws)
