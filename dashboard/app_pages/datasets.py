"""Datasets: every version, a row browser with search, and an import form (path, upload or lm-eval task).

The form reads a path only inside the import folders the operator named (``synthscope serve
--import-dir``) and loads lm-eval tasks only by name (lm-eval's registry and ``--task-dir``):
a task file is code, so none is uploaded or read from a path here.
"""

from __future__ import annotations

import math
from pathlib import Path

import streamlit as st

from synthscope.core import allowed, hub
from synthscope.core.workspace import KINDS, DatasetRef, Workspace
from synthscope.dashboard.components.safe import md
from synthscope.dashboard.components.widgets import choose
from synthscope.dashboard.components.workspace import read_only, require_workspace
from synthscope.datasets import browse
from synthscope.datasets.fields import PRESETS
from synthscope.datasets.ingest import FORMATS, IngestError, IngestOptions, IngestReport, ingest, read_errors

HEADER_CHOICES = {"auto": None, "yes": True, "no": False}
PAGE_SIZES = (25, 50, 100, 250)
FILE_FORMATS = [f for f in FORMATS if f != "lm-eval"]  # an lm-eval task comes by name, in its own field


def _fields(text: str) -> tuple[str, ...]:
    return tuple(f.strip() for f in text.split(",") if f.strip())


def import_form(ws: Workspace) -> None:
    """The import form; on success the new version is selected in the row browser."""
    if read_only(ws, "Importing a dataset"):
        return
    import_dirs = allowed.folders_from_env(allowed.IMPORT_DIRS_ENV)
    task_dirs = allowed.folders_from_env(allowed.TASK_DIRS_ENV)
    with st.form("import", border=True):
        st.markdown("Import a new dataset version from one source: a **path on this machine**, an **upload**, "
                    "or an **lm-eval task** by name.")
        path = st.text_input("Path on this machine", key="imp_path", disabled=not import_dirs,
                             placeholder="train.jsonl" if import_dirs else "off",
                             help="a file or save_to_disk folder inside an import folder; a relative path is "
                                  "looked up in each")
        if import_dirs:
            st.caption("Import folders (paths are read only inside them):")
            st.code("\n".join(map(str, import_dirs)), language=None)
        else:
            st.caption("Reading paths on this machine is off. The operator turns it on for chosen folders: "
                       "`synthscope serve WORKSPACE --import-dir DIR`.")
        upload = st.file_uploader("Or upload a file", key="imp_upload")
        task = st.text_input("Or an lm-eval task, by name", key="imp_task", placeholder="arc_easy",
                             help="a task of lm-eval's registry, or of the task folders the operator named with "
                                  "`synthscope serve --task-dir`. A task file is code, so none is uploaded or "
                                  "read from a path here.")
        c1, c2, c3 = st.columns(3)
        name = c1.text_input("Name", key="imp_name", placeholder="code-instruct")
        kind = c2.selectbox("Kind", KINDS, index=KINDS.index("synthetic"), key="imp_kind")
        version = c3.text_input("Version (optional)", key="imp_version", placeholder="next vN")
        c1, c2, c3 = st.columns(3)
        fmt = c1.selectbox("Format", ["auto", *FILE_FORMATS], key="imp_format",
                           help="auto: from the file's extension")
        preset = c2.selectbox("Field preset", ["auto", *PRESETS], key="imp_preset",
                              help="auto: detected from the first row's columns")
        header = c3.radio("CSV header row", list(HEADER_CHOICES), horizontal=True, key="imp_header",
                          help="auto: yes, except for the mmlu preset")
        c1, c2, c3 = st.columns(3)
        prompt_fields = c1.text_input("Prompt field(s)", key="imp_prompt", help="comma-separated; overrides the preset")
        answer_fields = c2.text_input("Answer field(s)", key="imp_answer", help="comma-separated")
        id_field = c3.text_input("Id field", key="imp_id")
        submitted = st.form_submit_button("Import", type="primary")
    if not submitted:
        return
    path, task = path.strip(), task.strip()
    if sum(map(bool, (path, upload is not None, task))) != 1:
        st.error("Give exactly one source: either a path on this machine, an uploaded file or an lm-eval task name.")
        return
    options = IngestOptions(
        format=None if fmt == "auto" else fmt, preset=None if preset == "auto" else preset,
        prompt_fields=_fields(prompt_fields), answer_fields=_fields(answer_fields),
        id_field=id_field.strip() or None, header=HEADER_CHOICES[header],
    )
    args = {"name": name.strip(), "kind": kind, "version": version.strip() or None}
    shown = [*import_dirs, *task_dirs, ws.root]  # the server paths a message may show
    hub.configure(ws.root)  # Hugging Face folders and lm-eval tasks stay offline unless asked
    try:
        with st.spinner("Importing…"):
            if upload is not None:
                with browse.staged_upload(ws, upload.name, upload.getvalue()) as staged:
                    report = ingest(ws, staged, source_label=f"upload:{upload.name}", options=options, **args)
            elif task:
                report = ingest(ws, task, options=_task_options(task_dirs), **args)
            else:
                report = ingest(ws, allowed.confine(path, import_dirs), options=options, **args)
    except allowed.NotAllowed as exc:  # names nothing but what the user typed
        st.error(f"Nothing was imported: {md(exc)}")
        return
    except (IngestError, OSError) as exc:
        st.error(f"Nothing was imported: {md(allowed.redact(str(exc), shown))}")
        return
    show_report(report, shown)
    st.session_state["browse_ref"] = str(report.ref)
    st.session_state["browse_page"] = 1


def _task_options(task_dirs: list[Path]) -> IngestOptions:
    """An lm-eval task by a registered name only: lm-eval's own, or one in the operator's task folders."""
    return IngestOptions(format="lm-eval", include_path=[str(d) for d in task_dirs], task_names_only=True)


def show_report(report: IngestReport, shown: list[Path]) -> None:
    st.success(f"Imported {report.rows:,} rows into {md(report.ref)} ({md(report.kind)}; mapping "
               f"{md(report.mapping)}).")
    if report.duplicate_ids:
        st.info(f"{report.duplicate_ids} rows repeat an earlier id; they were given suffixed ids (~2, ~3, …) "
                "that no row of the file has.")
    for note in report.notes:
        st.info(md(note))
    if report.error_count:
        st.warning(f"{report.error_count} rows were not imported:")
        st.code(allowed.redact("\n".join(str(e) for e in report.errors), shown), language=None)


def _first_page() -> None:
    st.session_state["browse_page"] = 1


def row_browser(ws: Workspace, refs: list[str], labels: dict[str, str]) -> None:
    """One page of a version's rows, optionally filtered by a text search."""
    ref_text = choose("Dataset version", refs, key="browse_ref", format_func=labels.get, on_change=_first_page)
    c1, c2 = st.columns([4, 1])
    search = c1.text_input("Search prompt, answer and record id (case-insensitive)", key="browse_search",
                           on_change=_first_page)
    size = c2.selectbox("Rows per page", PAGE_SIZES, index=1, key="browse_size", on_change=_first_page)
    ref = DatasetRef.parse(ref_text)
    page = st.session_state.get("browse_page", 1)
    found = browse.search_rows(ws, ref, search, offset=(page - 1) * size, limit=size)
    pages = max(math.ceil(found.total / size), 1)
    if page > pages:  # the search now matches fewer rows
        page = st.session_state["browse_page"] = 1
        found = browse.search_rows(ws, ref, search, offset=0, limit=size)
    what = f"matching “{md(search)}”" if search else "in all"
    if found.total:
        st.caption(f"Rows {found.offset + 1:,}–{found.offset + len(found.rows):,} of {found.total:,} {what}")
    else:
        st.caption(f"No rows {what.replace('in all', '')}".strip())
    st.dataframe(found.rows, hide_index=True, column_config={
        "row": st.column_config.NumberColumn("row", help="0-based position among the loaded rows"),
        "source_line": st.column_config.NumberColumn("source line", help="line or row number in the source"),
        "prompt": st.column_config.TextColumn("prompt", width="large"),
        "answer": st.column_config.TextColumn("answer", width="large"),
    })
    st.pagination(pages, key="browse_page")

    errors = read_errors(ws, ref)
    if errors:
        count = int(ws.manifest(ref)["errors"])
        with st.expander(f"Rows of {md(ref)} that were not imported ({count:,})"):
            st.code("\n".join(str(e) for e in errors), language=None)
            if count > len(errors):
                st.caption(f"the first {len(errors):,} are kept")


ws = require_workspace()
st.title("Datasets")
versions_box = st.container()
browse_tab, import_tab = st.tabs(["Browse rows", "Import"])
with import_tab:
    import_form(ws)  # first, so the version list and the browser below include a new import

versions = browse.dataset_versions(ws)
with versions_box:
    if versions.empty:
        st.info("No datasets yet: import one (the Import tab, or `synthscope ingest`).")
    else:
        st.dataframe(versions, hide_index=True,
                     column_order=["name", "kind", "version", "rows", "errors", "source", "mapping", "created_at"])
with browse_tab:
    if versions.empty:
        st.caption("Nothing to browse yet.")
    else:
        labels = {r.ref: f"{r.ref} ({r.kind}, {r.rows:,} rows)" for r in versions.itertuples()}
        row_browser(ws, list(versions["ref"]), labels)
