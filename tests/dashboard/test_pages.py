"""Every dashboard page, driven through Streamlit's AppTest against a copy of the demo workspace."""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from synthscope import tasks
from synthscope.compute import jobs
from synthscope.core.text import tokenize
from synthscope.core.workspace import DatasetRef, Workspace, atomic_write_json
from tests.fixtures.markdown import render

DATASETS = "app_pages/datasets.py"
CONTAMINATION = "app_pages/contamination.py"
CALIBRATION = "app_pages/calibration.py"



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


def must_flag(ws: Path, dataset: str = "code-instruct") -> set[str]:
    truth = pd.read_parquet(ws / "demo" / "planted_truth.parquet")
    return set(truth.loc[truth["must_flag"] & (truth["dataset"] == dataset), "task_id"])


def verdicts(ws: Path, synthetic: str = "code-instruct", version: str = "v1") -> pd.Series:
    """The newest scan's verdict per item of the demo benchmark against ``synthetic@version``."""
    return Workspace.open(ws).query(
        "SELECT item_id, verdict FROM latest_verdicts WHERE synthetic = ? AND synthetic_version = ?",
        [synthetic, version]).set_index("item_id")["verdict"]


def semantic_items(ws: Path) -> list[str]:
    """Items only the semantic stage flagged (planted rephrasings): the demo has some; sorted."""
    decided = verdicts(ws)
    items = sorted(decided[decided == "semantic"].index)
    assert items and set(items) <= set(planted(ws, "rephrased")["task_id"])
    return items


def charts(at: AppTest) -> list:
    return list(at.get("vega_lite_chart"))


def chart_data(chart) -> list[pd.DataFrame]:
    """The data sets of one Vega-Lite chart element, as frames."""
    return [pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets]


def overview_counts(at: AppTest) -> dict[str, int]:
    """The Overview's line of counts: ``{"benchmark": 2, ..., "scan": 3}``."""
    (line,) = [m.value for m in at.markdown if " synthetic version" in m.value]
    return {what: int(n.replace(",", "")) for n, what in re.findall(r"\*\*([\d,]+)\*\* (\w+?)s?\b", line)}


# -- app shell -------------------------------------------------------------------------


def test_without_a_workspace_the_app_says_how_to_start(open_app) -> None:
    at = open_app(None)
    assert any("synthscope serve" in e for e in texts(at.error))


def test_a_folder_that_is_not_a_workspace_is_named(open_app, tmp_path: Path) -> None:
    at = open_app(tmp_path)
    shown = [render(e).plain() for e in texts(at.error)]  # the path is data: escaped as Markdown
    assert any("is not a synthscope workspace" in e and str(tmp_path) in e for e in shown)


def test_sidebar_shows_the_workspace_and_running_jobs(open_app, demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    job = jobs.JobStatus("20990101-000000-abcdef", "scan", done=30, total=120, message="scanning code-instruct@v1",
                         pid=os.getpid())  # a live process: the job counts as running
    atomic_write_json(ws.jobs_dir / job.job_id / "status.json", asdict(job))
    at = open_app(demo_ws)
    assert str(ws.root) in [render(c.value).plain() for c in at.sidebar.caption]  # a path is data: escaped
    (bar,) = at.sidebar.get("progress")
    assert bar.value == 25 and "scanning code-instruct@v1" in bar.text


# -- overview --------------------------------------------------------------------------


def test_overview_summarises_the_workspace(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws)
    counts = overview_counts(at)
    # HumanEval with three code/chat sets and four support-ticket versions; the quiz with its leaky set.
    assert counts["benchmark"] == 2 and counts["synthetic"] == 8
    assert counts["reference"] == 2 and counts["source"] == 2
    assert counts["scan"] == 4  # the code sets twice: copies for the first page, then the whole cascade
    grid = frame(at, "contaminated_share")
    grid = grid[grid["benchmark"] == "humaneval@v1"].set_index("synthetic")
    assert grid.loc["code-instruct@v1", "contaminated"] == len(must_flag(demo_ws))
    assert grid.loc["code-instruct@v1", "semantic"] == len(semantic_items(demo_ws))
    assert grid.loc["chat-distill@v1", "contaminated"] == len(must_flag(demo_ws, "chat-distill"))
    pages = [link.proto.page for link in at.get("page_link")]
    assert pages[:3] == ["datasets", "contamination", "calibration"]
    assert len(pages) == 3 + 4 * 4  # then one card of four sections per scored support-synth version


def test_overview_of_an_empty_workspace_invites_an_import(open_app, tmp_path: Path) -> None:
    at = open_app(Workspace.init(tmp_path / "empty").root)
    assert any("No datasets yet" in i for i in texts(at.info))
    assert any("No scan yet" in i for i in texts(at.info))


# -- datasets --------------------------------------------------------------------------


def test_datasets_lists_every_version(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, DATASETS)
    versions = frame(at, "mapping")
    assert sorted(zip(versions["name"], versions["version"])) == [
        ("chat-distill", "v1"), ("code-instruct", "v1"), ("code-instruct", "v2"), ("crm-holdout", "v1"),
        ("crm-private", "v1"), ("humaneval", "v1"), ("quiz", "v1"), ("quiz-clean", "v1"), ("quiz-synth", "v1"),
        ("support-real", "v1"), *[("support-synth", f"v{i}") for i in range(1, 5)]]
    assert versions.set_index("name").loc["humaneval", "mapping"].startswith("humaneval:")


def test_row_search_filters_and_pages(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, DATASETS)
    at.selectbox(key="browse_ref").select("code-instruct@v1").run()
    assert frame(at, "source_line")["row"].tolist() == list(range(50))

    at.text_input(key="browse_search").input("LIST").run()
    records = pd.read_parquet(Workspace.open(demo_ws).records_path(DatasetRef("code-instruct", "v1")))
    expected = records[records["prompt"].str.contains("list", case=False)
                       | records["answer"].str.contains("list", case=False)]
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


def test_import_reports_bad_lines_and_keeps_the_good_rows(open_app, demo_ws: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHSCOPE_IMPORT_DIRS", str(tmp_path))  # synthscope serve --import-dir
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


def test_failed_import_shows_the_error_and_writes_nothing(open_app, demo_ws: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHSCOPE_IMPORT_DIRS", str(tmp_path))
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
    v1 = grid.loc["code-instruct@v1"]
    assert v1[["contaminated", "items"]].tolist() == [len(must_flag(demo_ws)), 164]
    assert v1["exact"] + v1["near_duplicate"] + v1["semantic"] + v1["judged"] == v1["contaminated"]
    assert v1["semantic"] == len(semantic_items(demo_ws))
    assert grid.loc["code-instruct@v2", "contaminated"] == 0
    assert grid.loc["chat-distill@v1", "contaminated"] == len(must_flag(demo_ws, "chat-distill"))
    (heatmap,) = charts(at)
    cells = pd.concat(chart_data(heatmap)).set_index("synthetic")
    assert cells.loc["code-instruct@v1", "label"].startswith(f"{len(must_flag(demo_ws))} / 164")


def test_items_are_contaminated_only_by_default_strongest_stage_first(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, CONTAMINATION)
    at.selectbox(key="cont_synthetic").select("code-instruct@v1").run()
    table = at.dataframe(key="cont_items").value
    assert set(table["item_id"]) == must_flag(demo_ws) and (table["verdict"] != "clean").all()
    assert list(dict.fromkeys(table["verdict"])) == ["exact", "semantic"]  # strongest stage first
    assert table.loc[table["verdict"] == "exact", "coverage"].is_monotonic_decreasing
    assert {"verdict", "coverage", "jaccard", "cosine", "judge_score"} <= set(table.columns)
    assert any(f"{len(table)} items with a verdict other than clean" in c for c in texts(at.caption))

    at.toggle(key="cont_only").set_value(False).run()
    assert len(at.dataframe(key="cont_items").value) == 164
    assert f"clean ({(verdicts(demo_ws) == 'clean').sum()})" in at.multiselect(key="cont_stages").options


def test_items_filtered_by_deciding_stage_show_the_semantic_rephrasings(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, CONTAMINATION)
    at.selectbox(key="cont_synthetic").select("code-instruct@v1").run()
    stages = at.multiselect(key="cont_stages")
    decided = verdicts(demo_ws)
    assert stages.options == [f"exact n-grams ({(decided == 'exact').sum()})",
                               f"semantic ({len(semantic_items(demo_ws))})"]
    at = stages.select("semantic").run()
    table = at.dataframe(key="cont_items").value
    assert sorted(table["item_id"]) == semantic_items(demo_ws)
    assert (table["verdict"] == "semantic").all()
    assert (table["coverage"] == 0).all() and table["jaccard"].isna().all()  # no n-gram, no near-duplicate
    assert table["cosine"].notna().all() and (table["cosine"] >= 0.67).all()
    assert table["cosine"].is_monotonic_decreasing
    assert any(f"{len(table)} items — " in c for c in texts(at.caption))


def evidence_html(at: AppTest) -> list[str]:
    return texts(at.get("html"))


def test_evidence_of_a_verbatim_leak_is_highlighted(open_app, demo_ws: Path) -> None:
    leak = planted(demo_ws, "verbatim").iloc[0]
    at = open_app(demo_ws, CONTAMINATION)
    at.selectbox(key="cont_synthetic").select("code-instruct@v1").run()
    at.selectbox(key="cont_item").select(leak["task_id"]).run()

    first = at.expander[0]
    assert first.label.startswith(f"#1 · {leak['record_id']} · flagged by exact n-grams · coverage 100%")
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
    assert 'class="synthscope-exact"' in item_prompt and "synthscope-aligned" not in item_prompt
    metrics = {m.label: m.value for m in first.metric}
    assert metrics["Coverage"] == "100%" and metrics["Cosine"] != "—"  # every stage's score


def test_evidence_of_a_semantic_item_marks_aligned_words_and_the_best_windows(open_app, demo_ws: Path) -> None:
    item = semantic_items(demo_ws)[0]
    (leak,) = planted(demo_ws, "rephrased").query("task_id == @item").itertuples()
    at = open_app(demo_ws, CONTAMINATION)
    at.selectbox(key="cont_synthetic").select("code-instruct@v1").run()
    label = next(o for o in at.selectbox(key="cont_item").options if o.startswith(f"{item} — "))
    assert label.startswith(f"{item} — ") and "semantic, cosine 0." in label  # after its tier
    at.selectbox(key="cont_item").select(item).run()
    assert not at.exception

    first = at.expander[0]
    assert first.label.startswith(f"#1 · {leak.record_id} · flagged by semantic · cosine 0.")
    assert "coverage" not in first.label  # no n-gram matched this pair
    metrics = {m.label: m.value for m in first.metric}
    assert metrics["Coverage"] == "—" and metrics["Jaccard"] == "—" and metrics["Cosine"].startswith("0.")
    assert any("runs of words both texts share" in c for c in texts(first.caption))
    item_prompt, item_answer, record = texts(first.get("html"))
    assert 'class="synthscope-aligned"' in item_prompt and 'class="synthscope-aligned"' in record
    assert "synthscope-exact" not in item_prompt + item_answer + record
    item_words = tokenize(" ".join(marked(item_prompt) + marked(item_answer)))
    assert len(item_words) >= 5 and item_words == tokenize(" ".join(marked(record)))  # same words, same order
    assert 'class="synthscope-window"' in record  # the best semantic window is shaded


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
    decided = verdicts(demo_ws)
    flags = [decided[o.split(" — ")[0]] != "clean" for o in options]
    n = len(must_flag(demo_ws))
    assert flags[:n] == [True] * n and not any(flags[n:])
    assert len(options) > n  # clean items with a semantic neighbour are listed too, after them


def test_a_scan_started_from_the_page_runs_and_its_results_show(open_app, demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    at = open_app(demo_ws, CONTAMINATION)
    at.selectbox(key="cont_synthetic").select("code-instruct@v1").run()
    at.multiselect(key="scan_synthetics").select("code-instruct@v1")
    at.multiselect(key="scan_ns").unselect(13)  # 8-grams only
    at.number_input(key="scan_semantic_flag_at").set_value(0.9)
    at = button(at, "Start scan").click().run()
    (started,) = [s for s in texts(at.success) if s.startswith("Started scan job")]
    job_id = started.split()[3].rstrip(";")
    recorded = json.loads((ws.jobs_dir / job_id / "job.json").read_text())
    assert recorded["kind"] == "scan"
    params = recorded["params"]
    assert (params["synthetics"], params["benchmarks"]) == (["code-instruct@v1"], ["humaneval@v1"])

    status = jobs.wait(ws, job_id, timeout=120)
    assert status.state == jobs.SUCCEEDED, jobs.log_tail(ws, job_id)
    (scan_id,) = status.result["scan_ids"]
    manifest = json.loads((ws.scans_dir / scan_id / "manifest.json").read_text())
    assert manifest["config"]["ngram"]["ns"] == [8]
    assert manifest["config"]["stages"] == ["exact", "near_duplicate", "semantic"]
    assert manifest["config"]["semantic"]["flag_at"] == 0.9

    at.run()
    assert any(f"Scan job {job_id} finished" in s for s in texts(at.success))
    scan_picker = at.selectbox(key="cont_scan")  # unless a scan was picked, the newest is shown
    assert scan_picker.value == "newest" and scan_picker.options[0] == f"newest ({scan_id})"
    grid = frame(at, "contaminated_share").set_index("synthetic")
    assert grid.loc["code-instruct@v1", "scan_id"] == scan_id
    at = button(at, "Show its results").click().run()
    assert at.selectbox(key="cont_synthetic").value == "code-instruct@v1"
    assert at.selectbox(key="cont_scan").value == scan_id
    table = at.dataframe(key="cont_items").value
    # cosine 0.9 makes no rephrasing a match by itself: what the semantic stage still counts, a code check confirmed
    semantic = table[table["verdict"] == "semantic"]
    assert len(table) >= 20 and (semantic["tier"] == "confirmed").all()
    assert semantic["reason"].str.startswith("passes HumanEval/").all()


def test_scan_form_shows_the_settings_of_the_chosen_stages(open_app, demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    at = open_app(demo_ws, CONTAMINATION)
    assert at.multiselect(key="scan_stages").value == ["exact", "near_duplicate", "semantic"]
    keys = {n.key for n in at.number_input}
    assert {"scan_near_flag_at", "scan_semantic_flag_at"} <= keys
    assert at.number_input(key="scan_semantic_flag_at").value == pytest.approx(0.67)

    at = at.multiselect(key="scan_stages").unselect("semantic").unselect("near_duplicate").run()
    keys = {n.key for n in at.number_input}
    assert "scan_near_flag_at" not in keys and "scan_semantic_flag_at" not in keys
    at.multiselect(key="scan_synthetics").select("chat-distill@v1")
    at = button(at, "Start scan").click().run()
    (started,) = [s for s in texts(at.success) if s.startswith("Started scan job")]
    job_id = started.split()[3].rstrip(";")
    overrides = json.loads((ws.jobs_dir / job_id / "job.json").read_text())["params"]["overrides"]
    assert overrides["stages"] == ["exact"]
    assert "semantic.flag_at" not in overrides and "near_duplicate.flag_at" not in overrides
    status = jobs.wait(ws, job_id, timeout=120)
    assert status.state == jobs.SUCCEEDED, jobs.log_tail(ws, job_id)
    (scan_id,) = status.result["scan_ids"]
    assert json.loads((ws.scans_dir / scan_id / "manifest.json").read_text())["config"]["stages"] == ["exact"]


def test_a_failed_scan_job_shows_its_error_and_log(open_app, demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    job_id = tasks.start(ws, tasks.ScanTask(["humaneval"], ["no-such-set"]))
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


def test_a_running_scan_job_shows_a_bar_per_stage_in_its_unit_with_an_eta(open_app, demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    stages = [{"name": "exact n-grams: code-instruct@v1", "unit": "rows", "done": 3044, "total": 3044,
               "elapsed_s": 2.0, "eta_s": 0.0},
              {"name": "embeddings: code-instruct@v1", "unit": "records", "done": 1000, "total": 3044,
               "elapsed_s": 40.0, "eta_s": 81.8},
              # a status file is workspace data: what a job never writes is left out, not a traceback
              {"name": "x", "unit": "rows", "done": 1, "total": "lots"}, "oops",
              {"name": "y", "unit": "rows", "done": 1, "total": 2, "eta_s": "soon"},
              {"name": "z", "unit": "rows", "done": 1, "total": 2, "eta_s": float("inf")}]
    job = jobs.JobStatus("20990101-000000-abcdee", "scan", done=7088, total=9132, message="embeddings",
                         pid=os.getpid(), stages=stages)
    atomic_write_json(ws.jobs_dir / job.job_id / "status.json", asdict(job))
    at = open_app(demo_ws, CONTAMINATION)
    bars = [(b.value, b.text) for b in at.main.get("progress")]
    assert bars[1:] == [(100, "exact n-grams\\: code-instruct@v1: 3,044 / 3,044 rows · done"),  # md()-escaped
                        (32, "embeddings\\: code-instruct@v1: 1,000 / 3,044 records · ETA 1:22"),
                        (50, "z: 1 / 2 rows · ETA —")]


def test_scan_form_refuses_a_scan_without_synthetic_data(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, CONTAMINATION)
    at = button(at, "Start scan").click().run()
    assert any("choose at least one synthetic dataset" in e for e in texts(at.error))
    assert not jobs.list_jobs(Workspace.open(demo_ws))


def test_contamination_page_of_a_workspace_without_scans(open_app, tmp_path: Path) -> None:
    at = open_app(Workspace.init(tmp_path / "empty").root, CONTAMINATION)
    assert any("No scan yet" in i for i in texts(at.info))
    assert any("needs a benchmark and a synthetic dataset" in i for i in texts(at.info))


# -- calibration -----------------------------------------------------------------------


def calibration_ids(ws: Path) -> list[str]:
    return sorted((p.parent.name for p in (ws / "calibrations").glob("*/manifest.json")), reverse=True)


def test_calibration_page_shows_the_demo_calibration(open_app, demo_ws: Path) -> None:
    (calibration_id,) = calibration_ids(demo_ws)
    manifest = json.loads((demo_ws / "calibrations" / calibration_id / "manifest.json").read_text())
    at = open_app(demo_ws, CALIBRATION)
    picker = at.selectbox(key="cal_id")
    assert picker.value == "newest" and picker.options[0] == f"newest ({calibration_id})"
    assert any(f"{manifest['positives']} positives, {manifest['negatives']} negatives" in o for o in picker.options)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Known positives"] == str(manifest["positives"])
    assert metrics["Hard-negative items"] == str(manifest["negative_items"]) == "164"
    assert metrics["Target item FPR"] == "0.05"
    # 164 items back a target of 5 % (60 needed): no warning, every stage recommended
    assert not any("items back the item-level FPR" in w for w in texts(at.warning))

    recs = frame(at, "current_threshold")
    stages = manifest["stages"].split(",")
    assert list(recs["stage"]) == stages
    for column in ("threshold", "recall", "item_fpr", "pair_fpr", "negative_items", "status"):
        assert column in recs.columns
    expected = Workspace.open(demo_ws).query(
        "SELECT stage, threshold, item_fpr, negative_items, current_threshold FROM calibration_recommendations "
        "WHERE calibration_id = ?", [calibration_id]).set_index("stage")
    for row in recs.itertuples():
        assert row.threshold == pytest.approx(expected.loc[row.stage, "threshold"])
        assert row.item_fpr == pytest.approx(expected.loc[row.stage, "item_fpr"])
        assert row.negative_items == expected.loc[row.stage, "negative_items"]
        assert row.current_threshold == pytest.approx(expected.loc[row.stage, "current_threshold"])
    assert any("[contamination.semantic]" in c and "likely_at = " in c for c in texts(at.code))

    drawn = charts(at)
    assert len(drawn) == 2 * len(stages)  # per stage: rates against threshold, and score distributions
    curves, rules = chart_data(drawn[0])
    assert set(curves["metric"]) == {"recall", "precision", "item_fpr", "pair_fpr"}
    first = expected.loc[stages[0]]
    assert dict(zip(rules["rule"], rules["threshold"])) == pytest.approx(
        {"recommended": first["threshold"], "current": first["current_threshold"]})
    histogram = chart_data(drawn[1])[0]
    assert set(histogram["label"]) == {"positive", "negative"}
    assert histogram.loc[histogram["label"] == "positive", "pairs"].sum() == manifest["positives"]
    assert histogram.loc[histogram["label"] == "negative", "pairs"].sum() == 164  # each item's hardest


def test_calibration_page_says_why_a_stage_is_refused(open_app, demo_ws: Path) -> None:
    from synthscope.contamination.calibrate import run_calibration, truth_pairs
    from synthscope.contamination.scan import config_from

    ws = Workspace.open(demo_ws)
    truth = pd.read_parquet(demo_ws / "demo" / "planted_truth.parquet")
    new_id = run_calibration(ws, truth_pairs(ws, DatasetRef("humaneval", "v1"), truth),
                             config_from(ws, {"stages": ["exact", "near_duplicate"]}), target_fpr=0.01)
    at = open_app(demo_ws, CALIBRATION)
    assert at.selectbox(key="cal_id").options[0] == f"newest ({new_id})"
    warnings = texts(at.warning)
    assert any("Only 164 items back the item-level FPR" in w and "at least 300" in w for w in warnings)
    for stage in ("exact n-grams", "near-duplicate"):
        assert any(w.startswith(stage) and "no threshold recommended" in w and "only 164 items" in w
                   for w in warnings), warnings
    recs = frame(at, "current_threshold")
    assert (recs["status"] == "refused").all() and recs["threshold"].isna().all()
    assert not any("clean_below" in c or "flag_at" in c for c in texts(at.code))


def test_calibration_page_of_a_workspace_without_calibrations(open_app, tmp_path: Path) -> None:
    at = open_app(Workspace.init(tmp_path / "empty").root, CALIBRATION)
    assert any("No calibration yet" in i for i in texts(at.info))
    assert any("needs a benchmark" in i for i in texts(at.info))
    assert not charts(at)


def test_calibration_form_refuses_bad_input(open_app, demo_ws: Path, tmp_path: Path) -> None:
    at = open_app(demo_ws, CALIBRATION)
    at = button(at, "Start calibration").click().run()
    assert any("exactly one" in e for e in texts(at.error))
    at.text_input(key="cal_truth").input(str(tmp_path / "missing.parquet"))
    at = button(at, "Start calibration").click().run()
    assert any("no such file" in e for e in texts(at.error))
    assert not jobs.list_jobs(Workspace.open(demo_ws))


def test_a_calibration_started_from_the_page_runs_and_shows(open_app, demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    (old_id,) = calibration_ids(demo_ws)
    at = open_app(demo_ws, CALIBRATION)
    assert any("No calibration job started from here yet" in c for c in texts(at.caption))
    at.selectbox(key="cal_id").select(old_id).run()  # a picked calibration stays put
    at.text_input(key="cal_truth").input(str(demo_ws / "demo" / "planted_truth.parquet"))
    at.number_input(key="cal_target_fpr").set_value(0.05)
    at = button(at, "Start calibration").click().run()
    (started,) = [s for s in texts(at.success) if s.startswith("Started calibration job")]
    job_id = started.split()[3].rstrip(";")
    params = json.loads((ws.jobs_dir / job_id / "job.json").read_text())["params"]
    assert params["benchmark"] == "humaneval@v1"
    assert params["target_fpr"] == 0.05 and "negatives_per_item" not in params

    status = jobs.wait(ws, job_id, timeout=180)
    assert status.state == jobs.SUCCEEDED, jobs.log_tail(ws, job_id)
    new_id = status.result["calibration_id"]
    assert calibration_ids(demo_ws) == [new_id, old_id]

    at.run()
    assert any(f"Calibration job {job_id} finished" in s and new_id in s for s in texts(at.success))
    assert at.selectbox(key="cal_id").value == old_id
    assert at.selectbox(key="cal_id").options[0] == f"newest ({new_id})"
    at = button(at, "Show it").click().run()
    assert at.selectbox(key="cal_id").value == new_id
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Target item FPR"] == "0.05"
    manifest = json.loads((demo_ws / "calibrations" / new_id / "manifest.json").read_text())
    assert metrics["Hard-negative items"] == str(manifest["negatives"])
    assert len(charts(at)) == 2 * len(manifest["stages"].split(","))


def test_a_running_calibration_job_shows_progress(open_app, demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    job = jobs.JobStatus("20990101-000000-abcdef", "calibrate", done=1, total=4,
                         message="scoring 276 pairs with the semantic stage", pid=os.getpid())
    atomic_write_json(ws.jobs_dir / job.job_id / "status.json", asdict(job))
    at = open_app(demo_ws, CALIBRATION)
    assert [(b.value, b.text) for b in at.main.get("progress")] == [
        (25, f"Calibration job {job.job_id}: scoring 276 pairs with the semantic stage")]
