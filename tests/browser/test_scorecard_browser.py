"""Scorecards in a real headless Chromium: the Overview wall, and the HTML report opened from disk."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from synthscope import cli
from tests.browser.conftest import BROWSER_ARGS, serve
from tests.conftest import chromium_executable

pytestmark = pytest.mark.browser


@pytest.fixture
def dashboard(demo_ws: Path, tmp_path: Path) -> Iterator[str]:
    with serve(demo_ws, tmp_path / "server.log") as url:
        yield url


def test_overview_cards_link_to_the_privacy_evidence(dashboard: str, tmp_path: Path) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(dashboard)
            expect(page.get_by_role("heading", name="Scorecards", exact=True)).to_be_visible(timeout=60_000)
            expect(page.get_by_text("support-synth@v4", exact=True)).to_be_visible(timeout=30_000)
            page.screenshot(path=str(tmp_path / "overview.png"))
            link = page.get_by_role("link", name=re.compile(r"privacy — PII replay: [1-9]"))  # v3, the leaky one
            link.click()
            expect(page.get_by_role("heading", name="Privacy", exact=True)).to_be_visible(timeout=30_000)
            expect(page.get_by_role("combobox", name="Synthetic dataset version")).to_have_value(
                "support-synth@v3", timeout=30_000)
            expect(page.get_by_text("Replay by entity type")).to_be_visible(timeout=30_000)
            page.screenshot(path=str(tmp_path / "privacy.png"), full_page=True)
        finally:
            browser.close()


def test_html_report_opens_offline_with_its_charts(demo_ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert cli.main(["report", "support-synth@v3", "-w", str(demo_ws), "-o", str(out)]) == 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            outside: list[str] = []
            page.on("request", lambda r: None if r.url.startswith("file://") else outside.append(r.url))
            page.goto(out.as_uri())
            expect(page.get_by_role("heading", level=1)).to_contain_text("support-synth@v3")
            expect(page.locator("h1 .grade.fail")).to_have_text("FAIL")
            charts = page.locator("div.chart svg")
            assert charts.count() >= 5  # trends of the graded metrics and the topic clusters
            box = charts.first.bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 100
            expect(page.get_by_text("privacy.pii_replay_rate")).to_be_visible()
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            assert outside == [], outside
        finally:
            browser.close()
