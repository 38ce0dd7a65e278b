"""Scan results as the dashboard reads them: grid, items, evidence with character ranges, starting scans."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis import jobs
from analysis.contamination import results
from analysis.contamination.ngram import NgramConfig
from analysis.contamination.results import ScanTarget, char_ranges
from analysis.text import tokenize
from analysis.workspace import DatasetRef, Workspace, WorkspaceError
from dashboard.components.evidence import highlight_html

# -- char_ranges -----------------------------------------------------------------------


def test_char_ranges_cover_the_tokens_and_what_lies_between() -> None:
    text = "def add(a, b):\n    return a + b"
    #       tokens: def add a b return a b
    assert char_ranges(text, [[1, 4]]) == [(4, 12)]  # "add(a, b"
    assert text[4:12] == "add(a, b"
    assert char_ranges(text, [[0, 1], [4, 7]]) == [(0, 3), (19, 31)]


def test_char_ranges_merge_overlaps_and_clip_to_the_text() -> None:
    text = "one two three four five"
    assert char_ranges(text, [[0, 2], [1, 3]]) == [(0, 13)]
    assert char_ranges(text, [[0, 2], [2, 3]]) == [(0, 7), (8, 13)]  # touching tokens, gap kept
    assert char_ranges(text, [[3, 99]]) == [(14, 23)]
    assert char_ranges(text, [[7, 9], [2, 2]]) == []
    assert char_ranges("", [[0, 3]]) == []


def test_char_ranges_point_into_the_original_unicode_text() -> None:
    text = "Cafe\u0301  ÉTÉ — ﬁnal 🎉 naïve"  # combining accent, ligature, emoji
    tokens = tokenize(text)
    assert tokens == ["café", "été", "final", "naïve"]
    ((start, end),) = char_ranges(text, [[0, 1]])
    assert text[start:end] == "Cafe\u0301"
    ((start, end),) = char_ranges(text, [[2, 4]])
    assert tokenize(text[start:end]) == ["final", "naïve"]


@given(st.text(alphabet=st.sampled_from("ab Z9_,.\n\t(){}"), max_size=60), st.data())
def test_marked_characters_hold_exactly_the_interval_tokens(text: str, data: st.DataObject) -> None:
    tokens = tokenize(text)
    start = data.draw(st.integers(0, len(tokens)))
    end = data.draw(st.integers(start, len(tokens)))
    ranges = char_ranges(text, [[start, end]])
    assert [tok for a, b in ranges for tok in tokenize(text[a:b])] == tokens[start:end]


@given(st.text(max_size=60), st.data())
def test_ranges_stay_inside_any_unicode_text(text: str, data: st.DataObject) -> None:
    n = len(tokenize(text))
    start = data.draw(st.integers(0, n))
    end = data.draw(st.integers(start, n))
    ranges = char_ranges(text, [[start, end]])
    assert len(ranges) == (1 if start < end else 0)
    assert all(0 <= a < b <= len(text) for a, b in ranges)


def test_highlight_html_escapes_everything_and_marks_the_ranges() -> None:
    text = "<b>x</b> & y"
    out = highlight_html(text, [(3, 4), (9, 12)])
    assert "<b>" not in out and "&lt;b&gt;" in out
    assert '">x</mark>' in out and '">&amp; y</mark>' in out
    assert out.count("<mark") == 2


# -- queries on the demo workspace -----------------------------------------------------


@pytest.fixture(scope="module")
def demo(demo_workspace_template: Path) -> Workspace:
    return Workspace.open(demo_workspace_template)


def target(ws: Workspace, synthetic: str) -> ScanTarget:
    (match,) = [t for t in results.scan_targets(ws) if t.synthetic_label == synthetic]
    return match


def test_grid_has_one_row_per_pair_with_counts(demo: Workspace) -> None:
    grid = results.grid(demo).set_index("synthetic")
    assert set(grid.index) == {"code-instruct@v1", "code-instruct@v2", "chat-distill@v1"}
    assert grid.loc["code-instruct@v1", ["items", "contaminated", "dirty", "partial"]].tolist() == [164, 26, 22, 4]
    assert grid.loc["code-instruct@v1", "contaminated_share"] == pytest.approx(26 / 164)
    assert (grid["benchmark"] == "humaneval@v1").all()


def test_scans_and_targets(demo: Workspace) -> None:
    scans = results.scans(demo)
    assert len(scans) == 1 and scans["benchmark"][0] == "humaneval@v1"
    targets = results.scan_targets(demo)
    assert {t.scan_id for t in targets} == {scans["scan_id"][0]}
    assert sorted(t.synthetic_label for t in targets) == ["chat-distill@v1", "code-instruct@v1", "code-instruct@v2"]


def test_items_filter_and_order(demo: Workspace) -> None:
    v1 = target(demo, "code-instruct@v1")
    dirty = results.items(demo, v1)
    assert len(dirty) == 26 and set(dirty["verdict"]) == {"exact"}
    assert list(dirty.sort_values(["coverage", "longest_span"], ascending=False)["item_id"]) == list(dirty["item_id"])
    assert len(results.items(demo, v1, contaminated_only=False)) == 164
    assert results.items(demo, target(demo, "code-instruct@v2")).empty


def test_items_with_evidence_put_contaminated_first(demo: Workspace) -> None:
    found = results.items_with_evidence(demo, target(demo, "code-instruct@v1"))
    contaminated = (found["verdict"] != "clean").tolist()
    assert contaminated == sorted(contaminated, reverse=True) and sum(contaminated) == 26
    assert (found["matched_records"] > 0).all()


def test_evidence_of_every_planted_leak_names_its_record_and_marks_it(demo: Workspace) -> None:
    truth = pd.read_parquet(demo.root / "demo" / "planted_truth.parquet")
    for leak in truth[truth["must_flag"]].itertuples():
        t = target(demo, f"{leak.dataset}@{leak.version}")
        evidence = results.item_evidence(demo, t, leak.task_id)
        assert evidence is not None and evidence.verdict["verdict"] != "clean"
        (record,) = [r for r in evidence.records if r.record_id == leak.record_id]
        assert record.ranges and record.text is not None
        item_ranges = record.item_prompt_ranges + record.item_answer_ranges
        assert item_ranges
        # the marked words on both sides are the same words
        item_marked = [tokenize(evidence.prompt[a:b]) for a, b in record.item_prompt_ranges]
        item_marked += [tokenize(evidence.answer[a:b]) for a, b in record.item_answer_ranges]
        record_marked = " ".join(" ".join(tokenize(record.text[a:b])) for a, b in record.ranges)
        for words in item_marked:
            assert " ".join(words) in record_marked, (leak.kind, leak.task_id)
        if leak.kind == "verbatim":
            assert record.coverage == 1.0 and len(record.item_prompt_ranges) == 1
            assert tokenize(evidence.prompt[slice(*record.item_prompt_ranges[0])]) == tokenize(evidence.prompt)
        if leak.kind == "answer_only":
            assert record.item_prompt_ranges == [] and record.item_answer_ranges


def test_evidence_of_an_unknown_item_is_none(demo: Workspace) -> None:
    assert results.item_evidence(demo, target(demo, "code-instruct@v1"), "HumanEval/9999") is None


def test_evidence_of_a_record_that_is_gone_has_no_text(demo_ws: Path) -> None:
    """Evidence outlives a dataset version's rows only in odd cases; the viewer must still cope."""
    ws = Workspace.open(demo_ws)
    t = target(ws, "code-instruct@v1")
    records = ws.records_path(DatasetRef("code-instruct", "v1"))
    kept = pd.read_parquet(records)
    kept[kept["record_id"] != "ci-00330"].to_parquet(records, index=False)
    evidence = results.item_evidence(ws, t, "HumanEval/103")
    (record,) = evidence.records
    assert record.record_id == "ci-00330" and record.text is None and record.ranges == []
    assert record.item_prompt_ranges  # the item side is still marked


# -- starting a scan -------------------------------------------------------------------


def test_start_scan_job_checks_its_inputs(demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    with pytest.raises(ValueError, match="at least one synthetic"):
        results.start_scan_job(ws, DatasetRef("humaneval"), [], NgramConfig())
    with pytest.raises(WorkspaceError, match="no dataset named 'nope'"):
        results.start_scan_job(ws, DatasetRef("humaneval"), [DatasetRef("nope")], NgramConfig())
    assert jobs.list_jobs(ws) == []


def test_start_scan_job_runs_with_the_given_settings(demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    config = NgramConfig(ns=(10,), clean_below=0.3, dirty_from=0.9, top_k=2)
    job_id = results.start_scan_job(ws, DatasetRef("humaneval"), [DatasetRef("chat-distill")], config)
    deadline = time.monotonic() + 120
    while (status := jobs.status(ws, job_id)).state == jobs.RUNNING and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status.state == jobs.SUCCEEDED, jobs.log_tail(ws, job_id)
    (scan_id,) = status.result["scan_ids"]
    manifest = json.loads((ws.scans_dir / scan_id / "manifest.json").read_text())
    assert manifest["config"]["ngram"] == {"ns": [10], "clean_below": 0.3, "dirty_from": 0.9, "top_k": 2}
    assert manifest["synthetic"] == "chat-distill@v1" and manifest["benchmark_version"] == "v1"
    newest = [t for t in results.scan_targets(ws) if t.synthetic_label == "chat-distill@v1"][0]
    assert newest.scan_id == scan_id
    assert results.grid(ws).set_index("synthetic").loc["chat-distill@v1", "scan_id"] == scan_id
