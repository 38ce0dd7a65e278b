"""Readable at a glance, in a real headless Chromium on the demo: grades are words, no emoji stands for anything,
the contamination grid's labels are drawn whole, and trend charts are large enough to read.

Chromium here has no emoji font: an emoji would draw as an empty box, so the page text may hold none.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from synthscope.contamination import results
from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.dashboard.components.grid import grid_cells
from synthscope.scorecard import report
from tests.browser.conftest import BROWSER_ARGS, serve
from tests.conftest import chromium_executable

pytestmark = pytest.mark.browser

GRADES = {"pass", "warn", "fail"}
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F]")
PAGES = ["Overview", "Datasets", "Contamination", "Calibration", "Quality & Bias", "Privacy", "Trends", "Generate",
         "Runs", "Compare"]
# Playwright's default width, and the narrowest at which the Overview's cards are meant to show their lines whole.
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture
def dashboard(demo_ws: Path, tmp_path: Path) -> Iterator[str]:
    with serve(demo_ws, tmp_path / "server.log") as url:
        yield url


def _cut_labels(page: Page) -> list[str]:
    """Page links whose label does not fit (page links never wrap): their text."""
    return page.get_by_test_id("stPageLink-NavLink").evaluate_all("""links => links
        .filter(a => a.offsetParent !== null)
        .map(a => a.querySelector(':scope > span:last-child') || a)
        .filter(s => s.scrollWidth > s.clientWidth + 1).map(s => s.innerText)""")


def _svg_texts(chart, role: str) -> list[dict]:
    """The texts of one role in a Vega chart drawn as SVG (``axis-label``, ``title-text``, ``mark``), with boxes."""
    return chart.evaluate("""(c, role) => [...c.querySelectorAll(`g.role-${role} text`)].map(t => {
        const b = t.getBoundingClientRect();
        return {text: t.textContent, left: b.left, right: b.right, top: b.top, bottom: b.bottom};
    })""", role)


def test_grades_read_as_words_and_the_grid_labels_are_whole(dashboard: str, demo_ws: Path, tmp_path: Path) -> None:
    ws = Workspace.open(demo_ws)
    cards = report.scorecards(ws)
    cells = grid_cells(results.grid(ws))
    trends = report.version_trends(ws)
    trends = trends[(trends["dataset"] == "support-synth") & trends["value"].notna()]
    policy = report.policy_of(report.latest(ws, DatasetRef("support-synth")))
    graded = set(trends["key"]) & set(policy.rules)  # the metrics the Trends page charts by default
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(dashboard)
            main = page.get_by_test_id("stMain")
            expect(main.get_by_text(cards["ref"].iloc[-1], exact=True)).to_be_visible(timeout=60_000)

            # Overview: each card's grade, and each of its lines', is a word in a badge
            for row in cards.itertuples():
                header = main.get_by_test_id("stMarkdownContainer").filter(has_text=f"{row.ref} ·")
                expect(header.locator(".stMarkdownBadge")).to_have_text(row.status)
            lines = main.get_by_test_id("stPageLink").filter(has_text=" — ")
            expect(lines).to_have_count(4 * len(cards), timeout=30_000)
            badges = [b.strip() for b in lines.locator(".stMarkdownBadge:visible").all_inner_texts()]
            assert len(badges) == 4 * len(cards) and set(badges) <= GRADES and "fail" in badges, badges
            assert _cut_labels(page) == []
            sidebar = page.get_by_test_id("stSidebarNav").get_by_role("link")
            assert [" ".join(t.split()) for t in sidebar.all_inner_texts()] == PAGES  # titles, no icon
            assert not EMOJI.findall(page.locator("body").inner_text())
            page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

            # Contamination: one labelled cell per scanned pair, every name and count drawn whole
            page.get_by_test_id("stSidebarNav").get_by_text("Contamination", exact=True).click()
            chart = page.get_by_test_id("stVegaLiteChart").first
            expect(chart.locator("svg g.role-axis-label text").first).to_be_visible(timeout=60_000)
            chart.scroll_into_view_if_needed()
            axis = _svg_texts(chart, "axis-label")
            headers = _svg_texts(chart, "title-text")
            labels = [t for t in _svg_texts(chart, "mark") if t["text"]]
            assert sorted(t["text"] for t in axis) == sorted(cells["synthetic"])
            assert sorted(t["text"] for t in headers) == sorted(set(cells["benchmark"]))
            assert sorted(t["text"] for t in labels) == sorted(cells["label"])
            rects = chart.evaluate("""c => [...c.querySelectorAll('g.role-mark path')].map(p => {
                const b = p.getBoundingClientRect(); return {left: b.left, right: b.right}; })""")
            cell_left, cell_right = min(r["left"] for r in rects), max(r["right"] for r in rects)
            for text in labels:  # inside its cell, with room to spare
                assert cell_left < text["left"] and text["right"] < cell_right, text
            for text in axis:  # left of the cells, none on top of another
                assert text["right"] <= cell_left, text
            rows = sorted((t["top"], t["bottom"]) for t in axis)
            assert all(a[1] <= b[0] + 0.5 for a, b in zip(rows, rows[1:], strict=False)), rows
            page.screenshot(path=str(tmp_path / "grid.png"))

            # Trends: the versions' grades as words; every chart tall enough to read
            page.get_by_test_id("stSidebarNav").get_by_text("Trends", exact=True).click()
            expect(page.get_by_role("heading", name="Trends", exact=True)).to_be_visible(timeout=30_000)
            values = page.get_by_test_id("stMetricValue")
            expect(values.first).to_be_visible(timeout=30_000)
            assert {v.strip() for v in values.all_inner_texts()} <= GRADES
            charts = page.get_by_test_id("stVegaLiteChart")
            expect(charts).to_have_count(len(graded), timeout=30_000)
            expect(charts.last.locator("canvas, svg.marks")).to_be_attached(timeout=30_000)
            heights = [c.bounding_box()["height"] for c in charts.all()]
            assert len(heights) >= 8 and min(heights) >= 320, heights
            assert not EMOJI.findall(page.locator("body").inner_text())
            page.screenshot(path=str(tmp_path / "trends.png"), full_page=True)
        finally:
            browser.close()
