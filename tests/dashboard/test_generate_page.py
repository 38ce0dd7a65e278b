"""The Generate page through AppTest: preview, a template error, and a real (tiny) CPU generation job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from synthscope import cli
from synthscope.compute import jobs
from synthscope.core.workspace import DatasetRef, Workspace
from tests.fixtures.markdown import render

TASKS = ["Write a haiku about rain.", "Explain what a list is in Python.", "Give one tip for sleeping well."]


@pytest.fixture
def gen_ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    assert cli.main(["init", str(root)]) == 0
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"s{i}", "instruction": t, "output": "."}) + "\n"
                             for i, t in enumerate(TASKS)))
    assert cli.main(["ingest", str(seeds), "-w", str(root), "--name", "seeds", "--kind", "reference"]) == 0
    return root


@pytest.fixture
def page(gen_ws: Path, open_app) -> AppTest:
    return open_app(gen_ws, "app_pages/generate.py")


def test_preview_renders_five_seeds_at_most_and_a_bad_template_is_explained(page: AppTest) -> None:
    page.text_area(key="gen_template").input("Rewrite: {{ instruction }}").run()
    assert [c.value for c in page.code if c.value.startswith("Rewrite")] == [f"Rewrite: {t}" for t in TASKS]
    page.text_area(key="gen_template").input("Rewrite: {{ topic }}").run()
    assert any("'topic', which the seed rows do not have" in e.value for e in page.error)
    assert page.get("form_submit_button")[0].proto.disabled  # nothing can start


def test_a_generation_job_lands_rows_and_a_dataset_version(page: AppTest, gen_ws: Path) -> None:
    page.text_area(key="gen_template").input("Write one task like: {{ instruction }}").run()
    page.number_input(key="gen_limit").set_value(2)
    page.number_input(key="gen_max_new").set_value(6)
    page.checkbox(key="gen_check").uncheck()
    page.get("form_submit_button")[0].click().run()
    ws = Workspace.open(gen_ws)
    (job,) = jobs.list_jobs(ws, "generate")
    final = jobs.wait(ws, job.job_id, timeout=300)
    assert final.state == jobs.SUCCEEDED, jobs.log_tail(ws, job.job_id)
    page.run()
    assert any("2 rows (0 rejected) → generated@v1" in render(s.value).plain() for s in page.success)
    (rows,) = [d.value for d in page.dataframe if "seed_record_id" in d.value.columns]
    assert list(rows["seed_record_id"]) == ["s0", "s1"]
    assert ws.manifest(DatasetRef("generated", "v1"))["provenance"]["seed_pool"] == "seeds@v1"


@pytest.mark.parametrize("template, message", [
    ("{{ instruction.__class__ }}", "The template cannot run: the template is not allowed to do that (seed s0)"),
    ("{{ instruction.nosuch }}", "The template cannot run: the template uses something seed s0 does not have"),
    ("{{ 'a' * 10**10 }}", "The template cannot run: the template needs more than 512 MiB of memory"),
    ("{% for i in range(100000) %}{{ instruction }}{% endfor %}",
     "The template cannot run: the template makes a prompt longer than 100,000 characters (seed s0)"),
])
def test_a_hostile_template_is_one_error_line_and_the_server_keeps_going(page: AppTest, template: str,
                                                                          message: str) -> None:
    page.text_area(key="gen_template").input(template).run()
    assert not page.exception, [e.value for e in page.exception]
    (error,) = [render(e.value).plain().strip() for e in page.error]
    assert error.startswith(message) and "\n" not in error
    assert page.get("form_submit_button")[0].proto.disabled
    page.text_area(key="gen_template").input("Rewrite: {{ instruction }}").run()
    assert [c.value for c in page.code if c.value.startswith("Rewrite")] == [f"Rewrite: {t}" for t in TASKS]


def test_the_preview_reads_only_the_seeds_it_shows(gen_ws: Path, tmp_path: Path, page: AppTest,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps({"id": f"p{i}", "instruction": f"task {i}", "output": "."}) + "\n"
                            for i in range(200)))
    assert cli.main(["ingest", str(pool), "-w", str(gen_ws), "--name", "pool", "--kind", "reference"]) == 0
    read: list[int] = []
    real_query = Workspace.query

    def query(self: Workspace, sql: str, params: list | None = None):  # noqa: ANN202
        frame = real_query(self, sql, params)
        if "FROM records" in sql:
            read.append(len(frame))
        return frame

    monkeypatch.setattr(Workspace, "query", query)
    st.cache_data.clear()
    page.run()
    page.selectbox(key="gen_pool").set_value("pool@v1").run()
    assert not page.exception, [e.value for e in page.exception]
    assert [c.value for c in page.code if c.value.startswith("Write one")][-1].endswith("Task: task 4")
    assert read and max(read) <= 5


@pytest.mark.parametrize("output", ["../escape", "/tmp/escape", "a/b", ".hidden"])
def test_an_output_name_that_is_not_a_plain_name_starts_no_job(page: AppTest, gen_ws: Path, output: str) -> None:
    page.text_input(key="gen_output").input(output)
    page.get("form_submit_button")[0].click().run()
    assert not page.exception, [e.value for e in page.exception]
    assert any(e.value.startswith("Not started: the output dataset name") for e in page.error)
    assert jobs.list_jobs(Workspace.open(gen_ws)) == []
