"""The Compare page in a real headless Chromium: headline, charts, and a leaked item's drill-down."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from synthscope.core.workspace import Workspace
from tests.browser.conftest import BROWSER_ARGS, run_ended, serve
from tests.conftest import chromium_executable
from tests.fixtures.compare_ws import BASELINE, BENCHMARK, CANDIDATE, LEAKED, compare_ws_template, copy_compare_ws

pytestmark = pytest.mark.browser


@pytest.fixture
def compare_ws(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return copy_compare_ws(compare_ws_template(tmp_path_factory), tmp_path / "ws")


@pytest.fixture
def dashboard(compare_ws: Path, tmp_path: Path) -> Iterator[str]:
    """``synthscope serve`` on the compare workspace."""
    with serve(compare_ws, tmp_path / "server.log") as url:
        yield url


def test_compare_page_draws_charts_and_a_leaked_items_evidence(dashboard: str, compare_ws: Path,
                                                               tmp_path: Path) -> None:
    ws = Workspace.open(compare_ws)
    base = ws.query("SELECT doc_id, acc FROM eval_samples WHERE run_id = ?", [BASELINE]).set_index("doc_id")["acc"]
    doc_id = next(d for d in sorted(LEAKED, reverse=True) if base[d] == 0)  # not the one shown by default
    (record_id,) = ws.query("SELECT record_id FROM records WHERE dataset = ? AND doc_id = ?",
                            [BENCHMARK, doc_id])["record_id"]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            outside: list[str] = []
            page.on("request", lambda r: None if r.url.startswith(dashboard) or r.url.startswith("data:")
                    else outside.append(r.url))
            page.goto(dashboard)
            page.get_by_test_id("stSidebarNav").get_by_text("Compare", exact=True).click()
            expect(page.get_by_role("heading", name="Compare runs", exact=True)).to_be_visible(timeout=30_000)
            expect(page.get_by_role("combobox", name="Candidate run", exact=True)).to_have_value(CANDIDATE)
            expect(page.get_by_text(re.compile(r"confidence interval (excludes|includes) 0"))).to_be_visible(
                timeout=30_000)
            expect(page.get_by_test_id("stMetric").filter(has_text=re.compile(r"^Inflation"))).to_contain_text("+")

            charts = page.get_by_test_id("stVegaLiteChart")
            expect(charts).to_have_count(2, timeout=30_000)
            drawn = charts.locator("canvas, svg.marks")
            expect(drawn.first).to_be_visible(timeout=30_000)
            assert drawn.count() >= 2  # both charts rendered, not just their frames
            for i in range(2):
                box = drawn.nth(i).bounding_box()
                assert box is not None and box["width"] > 100 and box["height"] > 100
            page.screenshot(path=str(tmp_path / "compare-charts.png"), full_page=True)

            picker = page.get_by_test_id("stSelectbox").filter(has_text="Item")
            picker.scroll_into_view_if_needed()
            run_ended(page)
            picker.click()
            page.keyboard.type(f"doc {doc_id} ")
            page.get_by_role("option", name=re.compile(rf"^doc {doc_id} · {record_id} — contaminated")).click()
            expect(page.get_by_text(re.compile(rf"^doc {doc_id} of"))).to_be_visible(timeout=30_000)

            choices = page.locator("table.synthscope-choices")
            expect(choices).to_be_visible(timeout=30_000)
            expect(choices.locator("th")).to_contain_text([f"{BASELINE} log-likelihood",
                                                           f"{CANDIDATE} log-likelihood"])
            target = choices.locator("tr.synthscope-target")
            expect(target).to_have_count(1)
            expect(target).to_contain_text("✓ target")
            expect(target).to_contain_text(CANDIDATE)
            expect(target).to_contain_text("-1.500")

            expander = page.get_by_test_id("stExpander").filter(has_text="flagged by exact n-grams")
            expect(expander).to_be_visible(timeout=30_000)
            marks = expander.locator("pre.synthscope-evidence mark")
            expect(marks.first).to_be_visible()
            marked = [t for t in marks.all_inner_texts() if t.strip()]
            assert len(marked) >= 2  # the item and the synthetic record
            assert any("what is" in t for t in marked)
            page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
            assert outside == [], f"the dashboard reached outside this machine: {outside}"
        finally:
            browser.close()


def test_runs_page_lists_the_runs(dashboard: str, tmp_path: Path) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{dashboard}/runs")
            expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible(timeout=30_000)
            expect(page.get_by_test_id("stDataFrame")).to_have_count(2, timeout=30_000)  # runs, evaluations
            page.get_by_role("textbox", name="Model", exact=True).fill("org/new-model")
            page.get_by_role("textbox", name="Synthetic share", exact=True).fill("2")
            run_ended(page)
            page.get_by_role("button", name="Record run").click()
            expect(page.get_by_text("The run was not recorded")).to_be_visible(timeout=30_000)
            page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)
        finally:
            browser.close()
