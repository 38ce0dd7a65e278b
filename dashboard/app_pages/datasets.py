"""Datasets: every version, a row browser with search, and an import form (path or upload)."""

from __future__ import annotations

import math

import streamlit as st

from analysis import browse, hub
from analysis.fields import PRESETS
from analysis.ingest import FORMATS, IngestError, IngestOptions, IngestReport, ingest, read_errors
from analysis.workspace import KINDS, DatasetRef, Workspace
from dashboard.components.safe import md
from dashboard.components.widgets import choose
from dashboard.components.workspace import read_only, require_workspace

HEADER_CHOICES = {"auto": None, "yes": True, "no": False}
PAGE_SIZES = (25, 50, 100, 250)


def _fields(text: str) -> tuple[str, ...]:
    return tuple(f.strip() for f in text.split(",") if f.strip())


def import_form(ws: Workspace) -> None:
    """The import form; on success the new version is selected in the row browser."""
    if read_only(ws, "Importing a dataset"):
        return
    with st.form("import", border=True):
        st.markdown("Import a file as a new dataset version: give a **path on this machine** *or* **upload** it.")
        path = st.text_input("Path on this machine", key="imp_path", placeholder="/data/train.jsonl")
        upload = st.file_uploader("Or upload a file", key="imp_upload")
        c1, c2, c3 = st.columns(3)
        name = c1.text_input("Name", key="imp_name", placeholder="code-instruct")
        kind = c2.selectbox("Kind", KINDS, index=KINDS.index("synthetic"), key="imp_kind")
        version = c3.text_input("Version (optional)", key="imp_version", placeholder="next vN")
        c1, c2, c3 = st.columns(3)
        fmt = c1.selectbox("Format", ["auto", *FORMATS], key="imp_format",
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
    path = path.strip()
    if bool(path) == (upload is not None):
        st.error("Give either a path on this machine or an uploaded file (exactly one of them).")
        return
    options = IngestOptions(
        format=None if fmt == "auto" else fmt, preset=None if preset == "auto" else preset,
        prompt_fields=_fields(prompt_fields), answer_fields=_fields(answer_fields),
        id_field=id_field.strip() or None, header=HEADER_CHOICES[header],
    )
    args = {"name": name.strip(), "kind": kind, "version": version.strip() or None, "options": options}
    hub.configure(ws.root)  # Hugging Face folders and lm-eval tasks stay offline unless asked
    try:
        with st.spinner("Importing…"):
            if upload is not None:
                with browse.staged_upload(ws, upload.name, upload.getvalue()) as staged:
                    report = ingest(ws, staged, source_label=f"upload:{upload.name}", **args)
            else:
                report = ingest(ws, path, **args)
    except (IngestError, OSError) as exc:
        st.error(f"Nothing was imported: {md(exc)}")
        return
    show_report(report)
    st.session_state["browse_ref"] = str(report.ref)
    st.session_state["browse_page"] = 1


def show_report(report: IngestReport) -> None:
    st.success(f"Imported {report.rows:,} rows into {md(report.ref)} ({md(report.kind)}; mapping "
               f"{md(report.mapping)}).")
    if report.duplicate_ids:
        st.info(f"{report.duplicate_ids} rows repeat an earlier id; they were given suffixed ids (~2, ~3, …).")
    if report.error_count:
        st.warning(f"{report.error_count} rows were not imported:")
        st.code("\n".join(str(e) for e in report.errors), language=None)


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
