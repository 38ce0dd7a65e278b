"""The Overview's first screen: cheap values drawn at once, and workspace reads kept until the workspace changes."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from synthscope import cli
from synthscope.core.workspace import Workspace
from synthscope.dashboard.components.workspace import cached, change_stamp
from synthscope.datasets import browse


def _ingest(ws: Path, tmp_path: Path, name: str) -> None:
    rows = tmp_path / f"{name}.jsonl"
    rows.write_text("".join(json.dumps({"id": f"r{i}", "prompt": f"Question {i}?", "answer": f"Answer {i}."}) + "\n"
                            for i in range(3)), encoding="utf-8")
    assert cli.main(["ingest", str(rows), "-w", str(ws), "--name", name, "--kind", "synthetic", "--prompt-field",
                     "prompt", "--answer-field", "answer", "--id-field", "id"]) == 0


def test_a_cached_read_is_kept_until_an_artefact_lands(demo_ws: Path, tmp_path: Path) -> None:
    st.cache_data.clear()
    calls: list[str] = []

    def synthetic_versions(ws: Workspace) -> int:
        calls.append(str(ws.root))
        return int(browse.versions_by_kind(ws).set_index("kind").loc["synthetic", "versions"])

    ws = Workspace.open(demo_ws)
    before = cached(synthetic_versions, ws)
    assert cached(synthetic_versions, Workspace.open(demo_ws)) == before and len(calls) == 1
    stamp = change_stamp(ws)
    _ingest(demo_ws, tmp_path, "fresh")  # from "another process": the CLI, as a user would
    assert change_stamp(ws) != stamp
    assert cached(synthetic_versions, ws) == before + 1 and len(calls) == 2
    st.cache_data.clear()


def test_overview_draws_its_counts_and_sidebar_as_markdown(open_app, demo_ws: Path) -> None:
    """What the first screen shows at once uses renderers the page already has: no metric and no code block,
    whose code the browser fetches on first use (grey placeholders meanwhile; the code block's is 1.5 MB)."""
    at = open_app(demo_ws)
    assert list(at.metric) == [] and list(at.sidebar.code) == []
    versions = browse.versions_by_kind(Workspace.open(demo_ws)).set_index("kind")
    (line,) = [m.value for m in at.markdown if " synthetic version" in m.value]
    for kind, row in versions.iterrows():
        assert f"**{row['versions']}** {kind} version" in line and f"({row['rows']:,} rows)" in line
