"""The dashboard in a real headless Chromium: from the sidebar to highlighted evidence."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import expect, sync_playwright

from analysis.workspace import Workspace
from tests.conftest import chromium_executable

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dashboard(demo_ws: Path, tmp_path: Path) -> Iterator[str]:
    """``synthscope serve`` on the demo workspace; yields its URL and stops it afterwards."""
    port = free_port()
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed in teardown
    server = subprocess.Popen([sys.executable, "-m", "analysis.cli", "serve", str(demo_ws), "--port", str(port)],
                              cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise AssertionError(f"the dashboard exited: {(tmp_path / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the dashboard did not start: {(tmp_path / 'server.log').read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


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

            page.get_by_test_id("stSelectbox").filter(has_text="Synthetic dataset").click()
            page.get_by_role("option", name="code-instruct@v1").click()
            expect(page.get_by_text("26 items with a verdict other than clean")).to_be_visible(timeout=30_000)

            page.get_by_test_id("stSelectbox").filter(has_text="Benchmark item").click()
            page.keyboard.type(leak["task_id"])  # the option list is virtual: filter it to the item
            page.get_by_role("option", name=f"{leak['task_id']} — dirty").click()

            expander = page.get_by_test_id("stExpander").filter(has_text=f"#1 · {leak['record_id']}")
            expect(expander).to_be_visible(timeout=30_000)
            marks = expander.locator("pre.synthscope-evidence mark")
            expect(marks.first).to_be_visible()
            assert marks.count() >= 3  # item prompt, item answer, synthetic record
            marked = marks.all_inner_texts()
            assert all(text.strip() for text in marked)
            assert sum(signature in text for text in marked) == 2  # the same signature, marked on both sides
            expander.locator("mark").first.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "contamination.png"))
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
            picker.click()
            page.get_by_role("option", name="code-instruct@v2").click()  # not the pair shown by default
            page.keyboard.press("Escape")
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
