"""Every dashboard page, driven through Streamlit's AppTest against a copy of the demo workspace."""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analysis import jobs
from analysis.text import tokenize
from analysis.workspace import DatasetRef, Workspace, atomic_write_json

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
DATASETS = "app_pages/datasets.py"
CONTAMINATION = "app_pages/contamination.py"


@pytest.fixture
def open_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """``open_app(ws, page=None)``: the app on workspace ``ws``, run once (on ``page`` if given)."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an import must not point HF_HOME at a test folder

    def open_app(ws: Path | None, page: str | None = None) -> AppTest:
        if ws is None:
            monkeypatch.delenv("SYNTHSCOPE_WORKSPACE", raising=False)
        else:
            monkeypatch.setenv("SYNTHSCOPE_WORKSPACE", str(ws))
        at = AppTest.from_file(APP, default_timeout=60).run()
        if page:
            at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_app


def button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert len(matches) == 1, [b.label for b in at.button]
    return matches[0]


def frame(at: AppTest, column: str) -> pd.DataFrame:
    """The one table on the page with ``column``."""
    (match,) = [d.value for d in at.dataframe if column in d.value.columns]
    return match


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def marked(fragment: str) -> list[str]:
    """The texts inside <mark> in an evidence block, unescaped."""
    return [html.unescape(m) for m in re.findall(r"<mark[^>]*>(.*?)</mark>", fragment, re.S)]


def planted(ws: Path, kind: str, dataset: str = "code-instruct") -> pd.DataFrame:
    truth = pd.read_parquet(ws / "demo" / "planted_truth.parquet")
    return truth[(truth["kind"] == kind) & (truth["dataset"] == dataset)]


# -- app shell -------------------------------------------------------------------------


def test_without_a_workspace_the_app_says_how_to_start(open_app) -> None:
    at = open_app(None)
    assert any("synthscope serve" in e for e in texts(at.error))


def test_a_folder_that_is_not_a_workspace_is_named(open_app, tmp_path: Path) -> None:
    at = open_app(tmp_path)
    assert any("is not a synthscope workspace" in e and str(tmp_path) in e for e in texts(at.error))


def test_sidebar_shows_the_workspace_and_running_jobs(open_app, demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    job = jobs.JobStatus("20990101-000000-abcdef", "scan", done=30, total=120, message="scanning code-instruct@v1",
                         pid=os.getpid())  # a live process: the job counts as running
    atomic_write_json(ws.jobs_dir / job.job_id / "status.json", asdict(job))
    at = open_app(demo_ws)
    assert str(ws.root) in [c.value for c in at.sidebar.code]
    (bar,) = at.sidebar.get("progress")
    assert bar.value == 25 and "scanning code-instruct@v1" in bar.text


# -- overview --------------------------------------------------------------------------


def test_overview_summarises_the_workspace(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["benchmark versions"] == "1" and metrics["synthetic versions"] == "3"
    assert metrics["scans"] == "1"
    grid = frame(at, "contaminated_share").set_index("synthetic")
    assert grid.loc["code-instruct@v1", "contaminated"] == 26
    assert grid.loc["chat-distill@v1", "contaminated"] == 2
    assert [link.proto.page for link in at.get("page_link")] == ["datasets", "contamination"]


def test_overview_of_an_empty_workspace_invites_an_import(open_app, tmp_path: Path) -> None:
    at = open_app(Workspace.init(tmp_path / "empty").root)
    assert any("No datasets yet" in i for i in texts(at.info))
    assert any("No scan yet" in i for i in texts(at.info))


# -- datasets --------------------------------------------------------------------------


def test_datasets_lists_every_version(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, DATASETS)
    versions = frame(at, "mapping")
    assert sorted(zip(versions["name"], versions["version"])) == [
        ("chat-distill", "v1"), ("code-instruct", "v1"), ("code-instruct", "v2"), ("humaneval", "v1")]
    assert versions.set_index("name").loc["humaneval", "mapping"].startswith("humaneval:")


def test_row_search_filters_and_pages(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, DATASETS)
    at.selectbox(key="browse_ref").select("code-instruct@v1").run()
    assert frame(at, "source_line")["row"].tolist() == list(range(50))

    at.text_input(key="browse_search").input("MEDIAN").run()
    records = pd.read_parquet(Workspace.open(demo_ws).records_path(DatasetRef("code-instruct", "v1")))
    expected = records[records["prompt"].str.contains("median", case=False)
                       | records["answer"].str.contains("median", case=False)]
    assert 50 < len(expected) < len(records)
    rows = frame(at, "source_line")
    assert rows["record_id"].tolist() == expected["record_id"].head(50).tolist()
    assert any(f"of {len(expected):,} matching" in c for c in texts(at.caption))

    at.get("pagination")[0].set_value(2).run()
    rows = frame(at, "source_line")
    assert rows["record_id"].tolist() == expected["record_id"].iloc[50:100].tolist()

    at.text_input(key="browse_search").input("no such text anywhere").run()
    assert frame(at, "source_line").empty


def import_from_path(at: AppTest, path: Path, name: str, kind: str = "synthetic") -> AppTest:
    at.text_input(key="imp_path").input(str(path))
    at.text_input(key="imp_name").input(name)
    at.selectbox(key="imp_kind").select(kind)
    return button(at, "Import").click().run()


def test_import_reports_bad_lines_and_keeps_the_good_rows(open_app, demo_ws: Path, tmp_path: Path) -> None:
    source = tmp_path / "mine.jsonl"
    source.write_text('{"instruction": "add two numbers", "output": "a + b"}\n'
                      '{"instruction": broken\n'
                      '{"instruction": "reverse a list", "output": "xs[::-1]"}\n', encoding="utf-8")
    at = import_from_path(open_app(demo_ws, DATASETS), source, "mine")
    assert not at.exception
    assert any("Imported 2 rows into mine@v1" in s and "alpaca" in s for s in texts(at.success))
    assert f"{source}:2: malformed JSON" in "\n".join(texts(at.code))
    assert "mine" in frame(at, "mapping")["name"].tolist()
    manifest = json.loads((demo_ws / "datasets" / "mine" / "v1" / "manifest.json").read_text())
    assert manifest["rows"] == 2 and manifest["errors"] == 1
    # the browser now shows the new version, with its stored errors
    assert at.selectbox(key="browse_ref").value == "mine@v1"
    assert frame(at, "source_line")["prompt"].tolist() == ["add two numbers", "reverse a list"]
    assert any("not imported (1)" in e.label for e in at.expander)


def test_import_of_an_upload(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, DATASETS)
    at.file_uploader(key="imp_upload").set_value(
        ("bench.csv", b"question,answer\nWhat is two plus two?,four\n", "text/csv"))
    at.text_input(key="imp_name").input("tiny-bench")
    at.selectbox(key="imp_kind").select("benchmark")
    at.text_input(key="imp_version").input("2024-06")
    at = button(at, "Import").click().run()
    assert any("Imported 1 rows into tiny-bench@2024-06 (benchmark" in s for s in texts(at.success))
    ws = Workspace.open(demo_ws)
    assert ws.versions("tiny-bench") == ["2024-06"]
    assert not list((ws.root / "tmp").glob("upload-*")), "the staged upload is removed"


def test_failed_import_shows_the_error_and_writes_nothing(open_app, demo_ws: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    at = import_from_path(open_app(demo_ws, DATASETS), empty, "nothing")
    assert any("Nothing was imported" in e and "is empty" in e for e in texts(at.error))
    assert not (demo_ws / "datasets" / "nothing").exists()
    assert not at.success


def test_import_needs_exactly_one_source(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, DATASETS)
    at.text_input(key="imp_name").input("x")
    at = button(at, "Import").click().run()
    assert any("either a path" in e for e in texts(at.error))


# -- contamination ---------------------------------------------------------------------


def test_grid_counts_contaminated_items_per_pair(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, CONTAMINATION)
    grid = frame(at, "contaminated_share").set_index("synthetic")
    assert grid.loc["code-instruct@v1", ["contaminated", "items"]].tolist() == [26, 164]
    assert grid.loc["code-instruct@v2", "contaminated"] == 0
    assert grid.loc["chat-distill@v1", "contaminated"] == 2


def test_items_are_contaminated_only_by_default_and_sorted_by_coverage(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, CONTAMINATION)
    at.selectbox(key="cont_synthetic").select("code-instruct@v1").run()
    table = at.dataframe(key="cont_items").value
    assert len(table) == 26 and (table["verdict"] != "clean").all()
    assert table["coverage"].is_monotonic_decreasing
    flagged = set(planted(demo_ws, "verbatim")["task_id"]) | set(planted(demo_ws, "answer_only")["task_id"])
    assert flagged <= set(table["item_id"])

    at.toggle(key="cont_only").set_value(False).run()
    assert len(at.dataframe(key="cont_items").value) == 164


def evidence_html(at: AppTest) -> list[str]:
    return texts(at.get("html"))


def test_evidence_of_a_verbatim_leak_is_highlighted(open_app, demo_ws: Path) -> None:
    leak = planted(demo_ws, "verbatim").iloc[0]
    at = open_app(demo_ws, CONTAMINATION)
    at.selectbox(key="cont_synthetic").select("code-instruct@v1").run()
    at.selectbox(key="cont_item").select(leak["task_id"]).run()

    first = at.expander[0]
    assert first.label.startswith(f"#1 · {leak['record_id']} · coverage 100%")
    blocks = texts(first.get("html"))
    assert len(blocks) == 3  # item prompt, item answer | synthetic record
    item_prompt, item_answer, record = blocks
    prompt = Workspace.open(demo_ws).query(
        "SELECT prompt FROM records WHERE dataset = 'humaneval' AND record_id = ?", [leak["task_id"]])["prompt"][0]
    assert tokenize(" ".join(marked(item_prompt))) == tokenize(prompt)  # the whole prompt is marked
    assert marked(item_answer)
    record_marks = " ".join(marked(record))
    assert " ".join(tokenize(prompt)) in " ".join(tokenize(record_marks))
    assert "<script" not in record and "&lt;" not in prompt  # text is escaped, never raw HTML


def test_evidence_of_an_answer_only_leak_marks_the_answer_not_the_prompt(open_app, demo_ws: Path) -> None:
    leak = planted(demo_ws, "answer_only").iloc[0]
    at = open_app(demo_ws, CONTAMINATION)
    at.selectbox(key="cont_synthetic").select("code-instruct@v1").run()
    at.selectbox(key="cont_item").select(leak["task_id"]).run()
    item_prompt, item_answer, record = texts(at.expander[0].get("html"))
    assert not marked(item_prompt) and marked(item_answer) and marked(record)
    assert leak["record_id"] in at.expander[0].label


def test_item_selector_lists_contaminated_items_first(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, CONTAMINATION)
    at.selectbox(key="cont_synthetic").select("code-instruct@v1").run()
    options = at.selectbox(key="cont_item").options
    verdicts = Workspace.open(demo_ws).query(
        "SELECT item_id, verdict FROM latest_verdicts WHERE synthetic = 'code-instruct' "
        "AND synthetic_version = 'v1'").set_index("item_id")["verdict"]
    flags = [verdicts[o.split(" — ")[0]] != "clean" for o in options]
    assert flags[:26] == [True] * 26 and not any(flags[26:])


def test_a_scan_started_from_the_page_runs_and_its_results_show(open_app, demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    at = open_app(demo_ws, CONTAMINATION)
    at.selectbox(key="cont_synthetic").select("code-instruct@v1").run()
    at.multiselect(key="scan_synthetics").select("code-instruct@v1")
    at.multiselect(key="scan_ns").unselect(13)  # 8-grams only
    at = button(at, "Start scan").click().run()
    (started,) = [s for s in texts(at.success) if s.startswith("Started scan job")]
    job_id = started.split()[3].rstrip(";")
    assert json.loads((ws.jobs_dir / job_id / "job.json").read_text())["argv"][:5] == [
        "scan", "--synthetic", "code-instruct@v1", "--benchmark", "humaneval@v1"]

    status = jobs.wait(ws, job_id, timeout=120)
    assert status.state == jobs.SUCCEEDED, jobs.log_tail(ws, job_id)
    (scan_id,) = status.result["scan_ids"]
    manifest = json.loads((ws.scans_dir / scan_id / "manifest.json").read_text())
    assert manifest["config"]["ngram"]["ns"] == [8]

    at.run()
    assert any(f"Scan job {job_id} finished" in s for s in texts(at.success))
    scan_picker = at.selectbox(key="cont_scan")  # unless a scan was picked, the newest is shown
    assert scan_picker.value == "newest" and scan_picker.options[0] == f"newest ({scan_id})"
    grid = frame(at, "contaminated_share").set_index("synthetic")
    assert grid.loc["code-instruct@v1", "scan_id"] == scan_id
    at = button(at, "Show its results").click().run()
    assert at.selectbox(key="cont_synthetic").value == "code-instruct@v1"
    assert at.selectbox(key="cont_scan").value == scan_id
    assert len(at.dataframe(key="cont_items").value) >= 26


def test_a_failed_scan_job_shows_its_error_and_log(open_app, demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    job_id = jobs.start(ws, "scan", ["scan", "--synthetic", "no-such-set", "--benchmark", "humaneval"])
    assert jobs.wait(ws, job_id, timeout=120).state == jobs.FAILED
    at = open_app(demo_ws, CONTAMINATION)
    assert any(job_id in e and "no dataset named 'no-such-set'" in e for e in texts(at.error))
    assert any("no-such-set" in c for c in texts(at.code))


def test_a_running_scan_job_shows_progress(open_app, demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    job = jobs.JobStatus("20990101-000000-abcdef", "scan", done=3, total=4, message="scanning code-instruct@v1",
                         pid=os.getpid())
    atomic_write_json(ws.jobs_dir / job.job_id / "status.json", asdict(job))
    at = open_app(demo_ws, CONTAMINATION)
    main_bars = at.main.get("progress")
    assert [(b.value, b.text) for b in main_bars] == [(75, f"Scan job {job.job_id}: scanning code-instruct@v1")]


def test_scan_form_refuses_a_scan_without_synthetic_data(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, CONTAMINATION)
    at = button(at, "Start scan").click().run()
    assert any("choose at least one synthetic dataset" in e for e in texts(at.error))
    assert not jobs.list_jobs(Workspace.open(demo_ws))


def test_contamination_page_of_a_workspace_without_scans(open_app, tmp_path: Path) -> None:
    at = open_app(Workspace.init(tmp_path / "empty").root, CONTAMINATION)
    assert any("No scan yet" in i for i in texts(at.info))
    assert any("needs a benchmark and a synthetic dataset" in i for i in texts(at.info))
