"""Scan results as the dashboard reads them: grid, items, evidence with character ranges, starting scans."""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthscope import tasks
from synthscope.compute import jobs
from synthscope.contamination import results
from synthscope.contamination.results import ScanTarget, char_ranges
from synthscope.core.text import tokenize
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError
from synthscope.dashboard.components.evidence import highlight_html

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


def test_highlight_html_shades_windows_around_whole_marks() -> None:
    text = "alpha <beta> gamma delta"
    out = highlight_html(text, [(6, 12)], windows=[(3, 17)], kind="aligned")
    # the mark stays whole although the window starts and ends inside other text
    assert re.findall(r"<mark[^>]*>(.*?)</mark>", out) == ["&lt;beta&gt;"]
    assert 'class="synthscope-aligned"' in out and "synthscope-exact" not in out
    shaded = re.findall(r'<span class="synthscope-window"[^>]*>(.*?)</span>', out)
    assert shaded == ["ha ", " gamm"]  # only unmarked text inside the window
    assert "<beta>" not in out
    plain = re.sub(r"<[^>]+>", "", out)
    assert html.unescape(plain) == text  # nothing lost, nothing doubled


# -- queries on the demo workspace -----------------------------------------------------


@pytest.fixture(scope="module")
def demo(demo_workspace_template: Path) -> Workspace:
    return Workspace.open(demo_workspace_template)


def target(ws: Workspace, synthetic: str) -> ScanTarget:
    """The newest scan of ``synthetic`` (the demo scans its code sets twice: copies first, then the whole cascade)."""
    return next(t for t in results.scan_targets(ws) if t.synthetic_label == synthetic)  # newest first


def planted(ws: Workspace, dataset: str = "code-instruct") -> pd.DataFrame:
    truth = pd.read_parquet(ws.root / "demo" / "planted_truth.parquet")
    return truth[truth["dataset"] == dataset]


def must_flag(ws: Workspace, dataset: str = "code-instruct") -> set[str]:
    truth = planted(ws, dataset)
    return set(truth.loc[truth["must_flag"], "task_id"])


def test_grid_has_one_row_per_pair_with_counts(demo: Workspace) -> None:
    everything = results.grid(demo)
    assert set(zip(everything["benchmark"], everything["synthetic"])) == {
        ("humaneval@v1", "code-instruct@v1"), ("humaneval@v1", "code-instruct@v2"), ("humaneval@v1", "chat-distill@v1"),
        ("quiz@v1", "quiz-synth@v1"), *[("humaneval@v1", f"support-synth@v{i}") for i in range(1, 5)]}
    grid = everything[everything["benchmark"] == "humaneval@v1"].set_index("synthetic")
    v1 = grid.loc["code-instruct@v1"]
    benchmark_rows = len(pd.read_parquet(demo.records_path(DatasetRef("humaneval", "v1"))))
    assert v1["items"] == benchmark_rows
    assert v1["contaminated"] == len(must_flag(demo))  # every planted leak, nothing else
    assert v1["exact"] + v1["near_duplicate"] + v1["semantic"] + v1["judged"] == v1["contaminated"]
    assert v1["exact"] == v1["dirty"] + v1["partial"]  # the exact stage decides exactly the non-clean buckets
    assert v1["semantic"] >= 1  # rephrasings that only the semantic stage finds
    assert v1["contaminated_share"] == pytest.approx(v1["contaminated"] / v1["items"])
    assert grid.loc["chat-distill@v1", "contaminated"] == len(must_flag(demo, "chat-distill"))
    assert grid.loc["code-instruct@v2", "contaminated"] == 0
    assert (grid["benchmark"] == "humaneval@v1").all()


def test_scans_and_targets(demo: Workspace) -> None:
    scans = results.scans(demo)
    # the code sets twice (copies for the first page, then the whole cascade), the support tickets, the quiz
    assert sorted(scans["benchmark"]) == ["humaneval@v1", "humaneval@v1", "humaneval@v1", "quiz@v1"]
    copies, whole = sorted(scans.loc[scans["synthetic"].str.contains("code-instruct"), "scan_id"])
    assert [t for t in results.scan_targets(demo) if t.synthetic_label == "code-instruct@v1"][0].scan_id == whole
    by_scan: dict[str, list[str]] = {}
    for t in results.scan_targets(demo):
        by_scan.setdefault(t.scan_id, []).append(t.synthetic_label)
    labels = sorted(sorted(v) for v in by_scan.values())
    assert ["chat-distill@v1", "code-instruct@v1", "code-instruct@v2"] in labels
    assert [f"support-synth@v{i}" for i in range(1, 5)] in labels


def test_items_filter_and_order(demo: Workspace) -> None:
    v1 = target(demo, "code-instruct@v1")
    flagged = results.items(demo, v1)
    assert set(flagged["item_id"]) == must_flag(demo) and (flagged["verdict"] != "clean").all()
    # strongest deciding stage first; within the exact stage, highest coverage first
    strength = flagged["verdict"].map({v: i for i, v in enumerate(results.VERDICTS)})
    assert strength.is_monotonic_increasing
    exact = flagged[flagged["verdict"] == "exact"]
    assert exact["coverage"].is_monotonic_decreasing
    assert len(results.items(demo, v1, contaminated_only=False)) == 164
    assert results.items(demo, target(demo, "code-instruct@v2")).empty


def test_items_decided_by_the_semantic_stage_are_rephrasings_without_coverage(demo: Workspace) -> None:
    v1 = target(demo, "code-instruct@v1")
    semantic = results.items(demo, v1, verdicts=["semantic"])
    truth = planted(demo)
    rephrased = set(truth.loc[truth["kind"] == "rephrased", "task_id"])
    assert len(semantic) >= 1 and set(semantic["item_id"]) <= rephrased
    assert (semantic["verdict"] == "semantic").all() and (semantic["coverage"] == 0).all()
    assert semantic["cosine"].notna().all() and semantic["cosine"].is_monotonic_decreasing
    assert semantic["jaccard"].isna().all() and semantic["matched_records"].eq(0).all()
    counts = results.verdict_counts(demo, v1)
    assert list(counts) == [v for v in results.VERDICTS if v in counts]  # strongest stage first, clean last
    assert counts["semantic"] == len(semantic) and sum(counts.values()) == 164
    both = results.items(demo, v1, verdicts=["semantic", "exact"])
    assert len(both) == counts["semantic"] + counts["exact"]
    clean = results.items(demo, v1, contaminated_only=False, verdicts=["clean"])
    assert len(clean) == counts["clean"] and (clean["verdict"] == "clean").all()
    assert results.items(demo, v1, contaminated_only=True, verdicts=["clean"]).empty


def test_items_with_evidence_put_contaminated_first_and_include_later_stages(demo: Workspace) -> None:
    found = results.items_with_evidence(demo, target(demo, "code-instruct@v1"))
    contaminated = (found["verdict"] != "clean").tolist()
    assert contaminated == sorted(contaminated, reverse=True) and sum(contaminated) == len(must_flag(demo))
    semantic = found[found["verdict"] == "semantic"]
    assert len(semantic) >= 1 and (semantic["matched_records"] == 0).all()  # no n-gram, still evidence


def marked_tokens(text: str, ranges: list[tuple[int, int]]) -> list[str]:
    return [tok for a, b in ranges for tok in tokenize(text[a:b])]


def test_evidence_of_every_planted_leak_names_its_record_and_marks_it(demo: Workspace) -> None:
    truth = pd.read_parquet(demo.root / "demo" / "planted_truth.parquet")
    kinds = set()
    for leak in truth[truth["must_flag"]].itertuples():
        t = target(demo, f"{leak.dataset}@{leak.version}")
        evidence = results.item_evidence(demo, t, leak.task_id)
        assert evidence is not None and evidence.verdict["verdict"] != "clean"
        (record,) = [r for r in evidence.records if r.record_id == leak.record_id]
        assert record.ranges and record.text is not None and record.flagged
        kinds.add(record.highlight)
        item_ranges = record.item_prompt_ranges + record.item_answer_ranges
        assert item_ranges
        if record.highlight == "exact":
            # the marked words on both sides are the same words
            item_marked = [tokenize(evidence.prompt[a:b]) for a, b in record.item_prompt_ranges]
            item_marked += [tokenize(evidence.answer[a:b]) for a, b in record.item_answer_ranges]
            record_marked = " ".join(" ".join(tokenize(record.text[a:b])) for a, b in record.ranges)
            for words in item_marked:
                assert " ".join(words) in record_marked, (leak.kind, leak.task_id)
        else:
            # a rephrasing: aligned word runs, the same tokens in the same order on both sides
            assert record.highlight == "aligned" and record.coverage is None and record.method == "semantic"
            assert evidence.verdict["verdict"] == "semantic"
            item_tokens = (marked_tokens(evidence.prompt, record.item_prompt_ranges)
                           + marked_tokens(evidence.answer, record.item_answer_ranges))
            assert item_tokens == marked_tokens(record.text, record.ranges)
            assert len(item_tokens) >= 5
            assert record.cosine == pytest.approx(evidence.verdict["cosine"])
            a, b = record.window
            assert 0 <= a < b <= len(record.text)
            assert record.item_prompt_window or record.item_answer_window
        if leak.kind == "verbatim":
            assert record.coverage == 1.0 and len(record.item_prompt_ranges) == 1
            assert tokenize(evidence.prompt[slice(*record.item_prompt_ranges[0])]) == tokenize(evidence.prompt)
        if leak.kind == "answer_only":
            assert record.item_prompt_ranges == [] and record.item_answer_ranges
    assert kinds == {"exact", "aligned"}


def test_evidence_records_carry_every_stage_score(demo: Workspace) -> None:
    v1 = target(demo, "code-instruct@v1")
    rows = demo.query("SELECT item_id, record_id, coverage, jaccard, masked_jaccard, number_substituted, cosine, "
                      "method, flagged FROM evidence WHERE scan_id = ? AND synthetic = 'code-instruct' "
                      "AND synthetic_version = 'v1' AND number_substituted", [v1.scan_id])
    assert len(rows) >= 1  # the demo plants a number-substituted copy
    row = rows.iloc[0]
    evidence = results.item_evidence(demo, v1, row["item_id"])
    (record,) = [r for r in evidence.records if r.record_id == row["record_id"]]
    assert record.number_substituted is True and record.near_field in ("prompt", "answer")
    assert record.jaccard == pytest.approx(row["jaccard"]) and record.masked_jaccard == pytest.approx(
        row["masked_jaccard"])
    assert record.cosine == pytest.approx(row["cosine"]) and record.judge_score is None
    ranks = [r.rank for r in evidence.records]
    assert ranks == sorted(ranks) and ranks[0] == 1
    assert [r.flagged for r in evidence.records] == sorted((r.flagged for r in evidence.records), reverse=True)


def test_evidence_of_an_unknown_item_is_none(demo: Workspace) -> None:
    assert results.item_evidence(demo, target(demo, "code-instruct@v1"), "HumanEval/9999") is None


def test_evidence_of_a_record_that_is_gone_has_no_text(demo_ws: Path) -> None:
    """Evidence outlives a dataset version's rows only in odd cases; the viewer must still cope."""
    ws = Workspace.open(demo_ws)
    t = target(ws, "code-instruct@v1")
    truth = planted(ws)
    leak = truth[truth["kind"] == "verbatim"].iloc[0]
    records = ws.records_path(DatasetRef("code-instruct", "v1"))
    kept = pd.read_parquet(records)
    kept[kept["record_id"] != leak["record_id"]].to_parquet(records, index=False)
    evidence = results.item_evidence(ws, t, leak["task_id"])
    (record,) = [r for r in evidence.records if r.record_id == leak["record_id"]]
    assert record.text is None and record.ranges == [] and record.window is None
    assert record.item_prompt_ranges  # the item side is still marked
    assert len(evidence.records) > 1 and all(r.text is not None for r in evidence.records if r is not record)


# -- starting a scan -------------------------------------------------------------------


def test_start_scan_job_checks_its_inputs(demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    with pytest.raises(ValueError, match="at least one synthetic"):
        tasks.start_scan(ws, DatasetRef("humaneval"), [], {})
    with pytest.raises(WorkspaceError, match="no dataset named 'nope'"):
        tasks.start_scan(ws, DatasetRef("humaneval"), [DatasetRef("nope")])
    with pytest.raises(ValueError, match="unknown scan settings: ngram.size"):
        tasks.start_scan(ws, DatasetRef("humaneval"), [DatasetRef("chat-distill")], {"ngram.size": 3})
    with pytest.raises(ValueError, match="stages must include 'exact'"):
        tasks.start_scan(ws, DatasetRef("humaneval"), [DatasetRef("chat-distill")], {"stages": ["semantic"]})
    assert jobs.list_jobs(ws) == []


def test_start_scan_job_runs_with_the_given_settings(demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    overrides = {"stages": ["exact", "near_duplicate"], "ngram.ns": [10], "ngram.clean_below": 0.3,
                 "ngram.dirty_from": 0.9, "ngram.top_k": 2, "near_duplicate.flag_at": 0.6,
                 "semantic.flag_at": None}  # None: left to the workspace
    job_id = tasks.start_scan(ws, DatasetRef("humaneval"), [DatasetRef("chat-distill")], overrides)
    deadline = time.monotonic() + 120
    while (status := jobs.status(ws, job_id)).state == jobs.RUNNING and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status.state == jobs.SUCCEEDED, jobs.log_tail(ws, job_id)
    (scan_id,) = status.result["scan_ids"]
    manifest = json.loads((ws.scans_dir / scan_id / "manifest.json").read_text())
    ngram = manifest["config"]["ngram"]
    assert {k: ngram[k] for k in ("ns", "clean_below", "dirty_from", "top_k")} == {
        "ns": [10], "clean_below": 0.3, "dirty_from": 0.9, "top_k": 2}
    assert manifest["config"]["stages"] == ["exact", "near_duplicate"] and "semantic" not in manifest["config"]
    assert manifest["config"]["near_duplicate"]["flag_at"] == 0.6
    assert manifest["synthetic"] == "chat-distill@v1" and manifest["benchmark_version"] == "v1"
    newest = [t for t in results.scan_targets(ws) if t.synthetic_label == "chat-distill@v1"][0]
    assert newest.scan_id == scan_id
    assert results.grid(ws).set_index("synthetic").loc["chat-distill@v1", "scan_id"] == scan_id
    assert results.items(ws, newest, contaminated_only=False)["cosine"].isna().all()  # the semantic stage was off
