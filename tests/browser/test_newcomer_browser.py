"""A newcomer's first minutes in Chromium: the demo's first half served at once, then every page of the full demo.

Screenshots land in ``artifacts/newcomer/`` at the repository root (ignored by git), for a person to look at.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from synthscope.demo.build import build_demo
from synthscope.demo.state import read_state
from tests.browser.conftest import BROWSER_ARGS, REPO, serve
from tests.conftest import chromium_executable

pytestmark = pytest.mark.browser
ARTIFACTS = REPO / "artifacts" / "newcomer"
PAGE_BUDGET_S = 45.0  # per page, first visit, on a busy 2-core CI machine (BENCHMARKS.md "First run" has real times)
PAGES = {"Overview": "Overview", "Datasets": "Datasets", "Contamination": "Contamination",  # sidebar: heading
         "Calibration": "Calibration", "Quality & Bias": "Quality & Bias", "Privacy": "Privacy", "Trends": "Trends",
         "Generate": "Generate", "Runs": "Runs", "Compare": "Compare runs"}


def test_every_page_opens_from_the_sidebar_whole(demo_ws: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    with serve(demo_ws, tmp_path / "server.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            nav = page.get_by_test_id("stSidebarNav")
            expect(nav).to_be_visible(timeout=60_000)
            for title, heading in PAGES.items():
                started = time.perf_counter()
                nav.get_by_text(title, exact=True).click()
                expect(page.get_by_role("heading", name=heading, exact=True).first).to_be_visible(
                    timeout=PAGE_BUDGET_S * 1000)
                seconds[title] = time.perf_counter() - started
                page.wait_for_timeout(1500)  # let the page settle: late elements, placeholders
                expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=PAGE_BUDGET_S * 1000)
                assert page.get_by_test_id("stException").count() == 0, f"{title}: an exception on the page"
                slug = re.sub(r"\W+", "-", title.lower()).strip("-")
                page.screenshot(path=str(ARTIFACTS / f"{slug}.png"), full_page=True)
        finally:
            browser.close()
    (ARTIFACTS / "seconds.json").write_text(json.dumps(seconds, indent=2) + "\n", encoding="utf-8")
    assert set(seconds) == set(PAGES)


def test_the_contamination_page_works_while_the_rest_of_the_demo_is_missing(tmp_path: Path) -> None:
    """What `make run` serves first: the demo's datasets and their copies, the rest announced, not silently absent."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ws = build_demo(tmp_path / "demo", evals=False, rest="later")  # the first half, no job: as after a Ctrl-C
    state = read_state(ws)
    assert state is not None and state.pending == ["semantic", "calibration", "scorecards"]
    with serve(ws, tmp_path / "server.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{url}/contamination")
            expect(page.get_by_role("heading", name="Contamination", exact=True)).to_be_visible(timeout=60_000)
            expect(page.get_by_text(re.compile(r"[1-9]\d* items with a verdict other than clean"))).to_be_visible(
                timeout=60_000)  # the planted leaks are there
            expect(page.get_by_text(re.compile("The demo's second half is not finished"))).to_be_visible()
            expect(page.get_by_text(re.compile(
                r"Calibration, Contamination \(rephrasings\), Privacy, Quality & Bias, Trends have no data yet"))
                   ).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "first-half-contamination.png"), full_page=True)
        finally:
            browser.close()
