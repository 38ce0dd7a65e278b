"""Concurrent sessions in a real headless Chromium while a scan job runs: every page draws, none raises."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from bench.load_bench import PAGES, scan_task
from synthscope.compute import jobs
from synthscope.core.workspace import Workspace
from synthscope.tasks import start as start_job
from tests.browser.conftest import BROWSER_ARGS, serve
from tests.conftest import chromium_executable

pytestmark = pytest.mark.browser
SESSIONS = 5


@pytest.fixture
def dashboard(demo_ws: Path, tmp_path: Path) -> Iterator[str]:
    with serve(demo_ws, tmp_path / "server.log") as url:
        yield url


async def _session(browser: Browser, url: str, pages: list[str], job_id: str) -> tuple[list[str], bool]:
    """Visit ``pages`` in a tab of its own: what went wrong (nothing: none), whether its sidebar showed the job."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    problems, saw_job = [], False
    for name in pages:
        await page.goto(f"{url}/{name}")
        await page.get_by_role("heading", name=PAGES[name], exact=True).wait_for(timeout=120_000)
        await page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=120_000)
        if await page.locator('[data-testid="stException"]').count():
            problems.append(f"/{name}: {await page.locator('[data-testid=stException]').first.inner_text()}")
        saw_job = saw_job or await page.get_by_test_id("stSidebar").get_by_text(f"scan {job_id}").count() > 0
    await context.close()
    return problems, saw_job


async def _sessions(url: str, pages: list[list[str]], job_id: str) -> list[tuple[list[str], bool]]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            return await asyncio.gather(*(_session(browser, url, mine, job_id) for mine in pages))
        finally:
            await browser.close()


def test_concurrent_sessions_draw_every_page_while_a_scan_runs(dashboard: str, demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    job_id = start_job(ws, scan_task(ws, passes=3))  # every synthetic version, 3 times: it outlasts the visits
    names = list(PAGES)
    sessions = asyncio.run(_sessions(dashboard, [names[i::SESSIONS] for i in range(SESSIONS)], job_id))
    assert [problems for problems, _ in sessions] == [[]] * SESSIONS  # every page drew its title, none raised
    assert any(saw_job for _, saw_job in sessions)  # the visits ran while the scan did
    assert jobs.wait(ws, job_id, timeout=300).state == jobs.SUCCEEDED, jobs.log_tail(ws, job_id)
