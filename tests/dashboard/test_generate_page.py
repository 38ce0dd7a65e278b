"""The Generate page through AppTest: preview, a template error, and a real (tiny) CPU generation job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from analysis import cli, jobs
from analysis.workspace import DatasetRef, Workspace
from tests.fixtures.markdown import render

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
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
def page(gen_ws: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AppTest:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("SYNTHSCOPE_WORKSPACE", str(gen_ws))
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=90).run()
    at.switch_page("app_pages/generate.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


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
