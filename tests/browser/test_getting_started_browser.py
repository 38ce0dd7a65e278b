"""A newcomer's own data, end to end in Chromium: serve a new folder, upload, pick HumanEval, scan, read the result."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from synthscope.demo.build import humaneval_problems
from tests.browser.conftest import BROWSER_ARGS, serve
from tests.conftest import chromium_executable

pytestmark = pytest.mark.browser


def test_a_new_folder_guides_from_upload_to_scan_results(tmp_path: Path) -> None:
    leaked = next(p for p in humaneval_problems() if p["task_id"] == "HumanEval/13")
    rows = [{"instruction": leaked["prompt"], "output": leaked["canonical_solution"]},  # a verbatim leak
            {"instruction": "Write a haiku about the sea.", "output": "Waves fold into foam"},
            {"instruction": "Name three primary colours.", "output": "Red, yellow and blue."}]
    upload = tmp_path / "my-synthetic.jsonl"
    upload.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    workspace = tmp_path / "new-folder"  # does not exist: serve creates an empty workspace

    with serve(workspace, tmp_path / "server.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            expect(page.get_by_role("heading", name="Your own data in three steps")).to_be_visible(timeout=60_000)

            step1 = page.get_by_test_id("stForm").filter(has_text="Upload a file")
            step1.locator("input[type=file]").set_input_files(str(upload))
            expect(step1.get_by_text("my-synthetic.jsonl")).to_be_visible(timeout=30_000)  # uploaded
            step1.get_by_role("button", name="Import").click()
            # md() puts a word joiner after "@" so that no name turns into a mail link
            expect(page.get_by_text(re.compile("Imported 3 rows into my-synthetic@\u2060?v1"))).to_be_visible(
                timeout=60_000)
            expect(page.get_by_text(re.compile("Done: synthetic my-synthetic@\u2060?v1"))).to_be_visible()

            step2 = page.get_by_test_id("stForm").filter(has_text="lm-eval tasks, by name")
            expect(step2.get_by_role("checkbox", name="HumanEval (ships with synthscope)")).to_be_checked()
            step2.get_by_role("button", name="Add benchmarks").click()
            expect(page.get_by_text(re.compile("Done: benchmarks humaneval@\u2060?v1"))).to_be_visible(timeout=60_000)

            page.get_by_role("button", name="Start the scan").click()
            # the scan runs as a job; when it ends the Contamination page opens on it
            expect(page.get_by_role("heading", name="Contamination", exact=True)).to_be_visible(timeout=300_000)
            expect(page.get_by_role("combobox", name="Synthetic dataset", exact=True)).to_have_value(
                "my-synthetic@v1", timeout=30_000)
            expect(page.get_by_text("1 items with a verdict other than clean")).to_be_visible(timeout=30_000)
            page.screenshot(path=str(tmp_path / "getting-started.png"), full_page=True)
        finally:
            browser.close()
