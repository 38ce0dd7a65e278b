"""Browsing queries: dataset versions, paged row search with literal wildcards, staged uploads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.datasets import browse
from synthscope.datasets.ingest import ingest


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    source = tmp_path / "rows.jsonl"
    rows = [{"id": f"r{i:03d}", "prompt": f"question {i}", "answer": f"answer {i}"} for i in range(120)]
    rows[7]["prompt"] = "what is 100% of x_y?"
    rows[8]["prompt"] = "what is 100 of xzy?"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ingest(ws, source, name="rows", kind="synthetic")
    return ws


def test_dataset_versions_and_kinds(ws: Workspace) -> None:
    versions = browse.dataset_versions(ws)
    assert versions[["name", "kind", "version", "rows", "ref"]].values.tolist() == [
        ["rows", "synthetic", "v1", 120, "rows@v1"]]
    assert browse.dataset_versions(ws, "benchmark").empty
    assert browse.versions_by_kind(ws).to_dict("records") == [
        {"kind": "synthetic", "datasets": 1, "versions": 1, "rows": 120}]


def test_pages_without_search_are_row_ranges(ws: Workspace) -> None:
    page = browse.search_rows(ws, DatasetRef("rows"), offset=100, limit=50)
    assert page.total == 120 and page.rows["row"].tolist() == list(range(100, 120))


def test_search_is_case_insensitive_over_prompt_answer_and_id(ws: Workspace) -> None:
    ref = DatasetRef("rows", "v1")
    assert browse.search_rows(ws, ref, "ANSWER 11").rows["record_id"].tolist() == ["r011"] + [
        f"r{i}" for i in range(110, 120)]
    assert browse.search_rows(ws, ref, "r05").total == 10
    page = browse.search_rows(ws, ref, "question", offset=10, limit=5)
    assert page.total == 118 and page.rows["row"].tolist() == [12, 13, 14, 15, 16]


def test_search_wildcards_are_literal_and_parameters_are_bound(ws: Workspace) -> None:
    ref = DatasetRef("rows")
    assert browse.search_rows(ws, ref, "100%").rows["record_id"].tolist() == ["r007"]
    assert browse.search_rows(ws, ref, "x_y").rows["record_id"].tolist() == ["r007"]
    assert browse.search_rows(ws, ref, "'; DROP TABLE records; --").total == 0


def test_staged_upload_keeps_the_name_inside_tmp_and_cleans_up(ws: Workspace) -> None:
    with browse.staged_upload(ws, "../../evil.jsonl", b"{}\n") as path:
        assert path.name == "evil.jsonl" and path.read_bytes() == b"{}\n"
        assert path.parent.parent == ws.root / "tmp"
    assert not path.exists() and not path.parent.exists()
    with browse.staged_upload(ws, "..", b"x") as path:
        assert path.name == "upload" and path.parent.parent == ws.root / "tmp"
    # whatever name a hand-made request sends: one a file system takes, with the suffixes that give the format
    for sent, kept in (("a\x00b.jsonl", "ab.jsonl"), ("x" * 300 + ".jsonl.gz", "upload.jsonl.gz"),
                       ("\ud800.json", "upload.json")):
        with browse.staged_upload(ws, sent, b"x") as path:
            assert path.name == kept and path.read_bytes() == b"x"
