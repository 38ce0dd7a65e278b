"""The dashboard in a real headless Chromium: from the sidebar to highlighted evidence."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import expect, sync_playwright

from synthscope.core.workspace import Workspace
from tests.browser.conftest import BROWSER_ARGS, run_ended, serve
from tests.conftest import chromium_executable

pytestmark = pytest.mark.browser


@pytest.fixture
def dashboard(demo_ws: Path, tmp_path: Path) -> Iterator[str]:
    """``synthscope serve`` on the demo workspace."""
    with serve(demo_ws, tmp_path / "server.log") as url:
        yield url


def contaminated(demo_ws: Path, dataset: str = "code-instruct") -> int:
    truth = pd.read_parquet(demo_ws / "demo" / "planted_truth.parquet")
    return int((truth["must_flag"] & (truth["dataset"] == dataset)).sum())


def test_contaminated_item_shows_highlighted_evidence(dashboard: str, demo_ws: Path, tmp_path: Path) -> None:
    truth = pd.read_parquet(demo_ws / "demo" / "planted_truth.parquet")
    leak = truth[(truth["kind"] == "verbatim") & (truth["dataset"] == "code-instruct")].iloc[0]
    prompt = Workspace.open(demo_ws).query(
        "SELECT prompt FROM records WHERE dataset = 'humaneval' AND record_id = ?", [leak["task_id"]])["prompt"][0]
    signature = next(line for line in prompt.splitlines() if line.startswith("def "))

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            outside: list[str] = []
            page.on("request", lambda r: None if r.url.startswith(dashboard) or r.url.startswith("data:")
                    else outside.append(r.url))
            page.goto(dashboard)

            nav = page.get_by_test_id("stSidebarNav")
            nav.get_by_text("Contamination", exact=True).click()
            expect(page.get_by_role("heading", name="Contamination", exact=True)).to_be_visible(timeout=30_000)
            run_ended(page)

            page.get_by_test_id("stSelectbox").filter(has_text="Synthetic dataset").click()
            page.keyboard.type("code-instruct@v1")  # filter the option list: the support tickets are scanned too
            page.get_by_role("option", name="code-instruct@v1").click()
            expect(page.get_by_text(f"{contaminated(demo_ws)} items with a verdict other than clean")).to_be_visible(
                timeout=30_000)
            run_ended(page)

            page.get_by_test_id("stSelectbox").filter(has_text="Benchmark item").click()
            page.keyboard.type(leak["task_id"])  # the option list is virtual: filter it to the item
            page.get_by_role("option", name=f"{leak['task_id']} — confirmed: exact (dirty)").click()

            expander = page.get_by_test_id("stExpander").filter(has_text=f"#1 · {leak['record_id']}")
            expect(expander).to_be_visible(timeout=30_000)
            marks = expander.locator("pre.synthscope-evidence mark")
            expect(marks.first).to_be_visible()
            assert marks.count() >= 3  # item prompt, item answer, synthetic record
            marked = marks.all_inner_texts()
            assert all(text.strip() for text in marked)
            assert sum(signature in text for text in marked) == 2  # the same signature, marked on both sides
            page.screenshot(path=str(tmp_path / "contamination.png"), full_page=True)
            assert outside == [], f"the dashboard reached outside this machine: {outside}"
        finally:
            browser.close()


def test_a_scan_started_in_the_browser_reports_progress_and_its_results(dashboard: str, tmp_path: Path) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{dashboard}/contamination")
            picker = page.get_by_test_id("stMultiSelect").filter(has_text="Synthetic dataset(s)")
            picker.scroll_into_view_if_needed()
            run_ended(page)
            picker.click()
            page.get_by_role("option", name="code-instruct@v2").click()  # not the pair shown by default
            page.keyboard.press("Escape")
            run_ended(page)
            page.get_by_role("button", name="Start scan").click()
            expect(page.get_by_text("Started scan job")).to_be_visible(timeout=30_000)
            # the job panel polls on its own: no reload, no click
            finished = page.get_by_text(re.compile(r"Scan job \S+ finished at"))
            expect(finished).to_be_visible(timeout=60_000)
            scan_id = finished.inner_text().rsplit("scan ", 1)[1].strip()

            page.get_by_role("button", name="Show its results").click()
            expect(page.get_by_role("combobox", name="Scan", exact=True)).to_have_value(
                f"{scan_id} (newest)", timeout=30_000)
            expect(page.get_by_role("combobox", name="Synthetic dataset", exact=True)).to_have_value("code-instruct@v2")
            expect(page.get_by_text("0 items with a verdict other than clean")).to_be_visible()
            page.screenshot(path=str(tmp_path / "scan-finished.png"))

            page.reload()  # the job lives in the workspace, not in the page
            expect(page.get_by_text(re.compile(r"Scan job \S+ finished at"))).to_be_visible(timeout=30_000)
        finally:
            browser.close()


def test_a_semantic_item_shows_aligned_marks_on_both_sides(dashboard: str, demo_ws: Path, tmp_path: Path) -> None:
    decided = Workspace.open(demo_ws).query(
        "SELECT item_id, tier FROM latest_verdicts WHERE synthetic = 'code-instruct' AND synthetic_version = 'v1' "
        "AND verdict = 'semantic' ORDER BY item_id")
    tiers = dict(zip(decided["item_id"], decided["tier"]))
    decided = decided["item_id"].tolist()
    assert decided, "the demo plants rephrasings that only the semantic stage finds"
    truth = pd.read_parquet(demo_ws / "demo" / "planted_truth.parquet")
    item = decided[0]
    (record_id,) = truth.loc[(truth["task_id"] == item) & (truth["kind"] == "rephrased"), "record_id"]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            outside: list[str] = []
            page.on("request", lambda r: None if r.url.startswith(dashboard) or r.url.startswith("data:")
                    else outside.append(r.url))
            page.goto(f"{dashboard}/contamination")
            run_ended(page)
            page.get_by_test_id("stSelectbox").filter(has_text="Synthetic dataset").click()
            page.keyboard.type("code-instruct@v1")  # filter the option list: the support tickets are scanned too
            page.get_by_role("option", name="code-instruct@v1").click()
            expect(page.get_by_text(f"{contaminated(demo_ws)} items with a verdict other than clean")).to_be_visible(
                timeout=30_000)
            run_ended(page)

            page.get_by_test_id("stSelectbox").filter(has_text="Benchmark item").click()
            page.keyboard.type(item)
            page.get_by_role("option", name=f"{item} — {tiers[item]}: semantic, cosine").click()

            expander = page.get_by_test_id("stExpander").filter(has_text=f"#1 · {record_id} · flagged by semantic")
            expect(expander).to_be_visible(timeout=30_000)
            # how strong the proof is, and how many flags chance alone would give
            expect(page.get_by_text(re.compile(r"\d+ flagged · expected false ≈ \d+\.\d at this threshold"))
                   ).to_be_visible()
            if tiers[item] == "confirmed":  # the demo's rephrasings carry new code that passes the item's tests
                expect(expander.get_by_text(re.compile(rf"Why: passes {re.escape(item)}'s tests with \w+\(\)"))
                       ).to_be_visible()
            expect(expander.get_by_text("runs of words both texts share")).to_be_visible()
            blocks = expander.locator("pre.synthscope-evidence")
            expect(blocks).to_have_count(3)  # item prompt, item answer | synthetic record
            item_marks = expander.locator("pre.synthscope-evidence").nth(0).locator("mark.synthscope-aligned")
            record_marks = blocks.nth(2).locator("mark.synthscope-aligned")
            expect(item_marks.first).to_be_visible()
            expect(record_marks.first).to_be_visible()
            item_text = " ".join(item_marks.all_inner_texts()
                                 + blocks.nth(1).locator("mark.synthscope-aligned").all_inner_texts())
            record_text = " ".join(record_marks.all_inner_texts())
            words = re.findall(r"\w+", item_text.lower())
            assert len(words) >= 5 and words == re.findall(r"\w+", record_text.lower())  # same words, same order
            assert blocks.nth(2).locator("span.synthscope-window").count() >= 1  # the best window, shaded
            page.screenshot(path=str(tmp_path / "semantic-evidence.png"), full_page=True)
            assert outside == [], f"the dashboard reached outside this machine: {outside}"
        finally:
            browser.close()


def test_calibration_page_draws_its_charts_and_table(dashboard: str, demo_ws: Path, tmp_path: Path) -> None:
    (manifest,) = [json.loads(p.read_text()) for p in (demo_ws / "calibrations").glob("*/manifest.json")]
    stages = manifest["stages"].split(",")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            outside: list[str] = []
            page.on("request", lambda r: None if r.url.startswith(dashboard) or r.url.startswith("data:")
                    else outside.append(r.url))
            page.goto(dashboard)
            page.get_by_test_id("stSidebarNav").get_by_text("Calibration", exact=True).click()
            expect(page.get_by_role("heading", name="Calibration", exact=True)).to_be_visible(timeout=30_000)
            expect(page.get_by_role("combobox", name="Calibration", exact=True)).to_have_value(
                f"newest ({manifest['calibration_id']})", timeout=30_000)
            # the demo calibrates at a 5 % item FPR, which its 164 items can back: a recommendation, no warning
            expect(page.get_by_test_id("stMetric").filter(has_text="Hard-negative items")).to_contain_text(
                str(manifest["negatives"]))
            expect(page.get_by_text("no threshold is recommended")).to_have_count(0)

            table = page.get_by_test_id("stDataFrame")
            expect(table).to_have_count(1)
            expect(table).to_be_visible()
            expect(page.get_by_text("flag_at = ", exact=False).first).to_be_visible()  # the toml to paste

            charts = page.get_by_test_id("stVegaLiteChart")
            expect(charts).to_have_count(2 * len(stages), timeout=30_000)
            drawn = charts.locator("canvas, svg.marks")
            expect(drawn.first).to_be_visible(timeout=30_000)
            assert drawn.count() >= 2 * len(stages)  # every chart rendered, not just its frame
            box = drawn.first.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 100
            page.screenshot(path=str(tmp_path / "calibration.png"), full_page=True)
            assert outside == [], f"the dashboard reached outside this machine: {outside}"
        finally:
            browser.close()


def test_demo_compare_shows_the_model_side_and_runs_show_scores_over_time(dashboard: str, tmp_path: Path) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{dashboard}/compare")
            expect(page.get_by_role("heading", name="Model side", exact=True)).to_be_visible(timeout=60_000)
            charts = page.get_by_test_id("stVegaLiteChart")
            expect(charts).to_have_count(3, timeout=30_000)  # subsets, ConTAM, Min-K%++ scatter
            scatter = charts.nth(2)
            scatter.scroll_into_view_if_needed()
            drawn = scatter.locator("canvas, svg.marks")
            expect(drawn.first).to_be_visible(timeout=30_000)
            box = drawn.first.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 100
            table = page.get_by_test_id("stDataFrame").filter(has_text="AUROC")
            expect(table).to_be_visible()
            page.screenshot(path=str(tmp_path / "model-side.png"))

            page.goto(f"{dashboard}/runs")
            expect(page.get_by_role("heading", name="Scores over time", exact=True)).to_be_visible(timeout=60_000)
            trend = page.get_by_test_id("stVegaLiteChart")
            expect(trend).to_have_count(1, timeout=30_000)
            trend.scroll_into_view_if_needed()
            expect(trend.locator("canvas, svg.marks").first).to_be_visible(timeout=30_000)
            expect(page.get_by_text(re.compile(r"Contaminated = flagged by the latest scan"))).to_be_visible()
            page.screenshot(path=str(tmp_path / "trends.png"), full_page=True)
        finally:
            browser.close()
