"""Browser tests' shared parts: a real ``synthscope serve`` to point Chromium at, and its flags."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.fixtures.processes import free_port, stop, wait_until_healthy

REPO = Path(__file__).resolve().parents[2]
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def run_ended(page: Page) -> None:
    """Wait until the page's script run has ended. A select box opened, or a button clicked, while the page
    still runs is drawn again: the option list is lost (seen on a loaded machine: the option found but never
    visible) or the click is (seen in CI: "Start scan" clicked during the rerun a selection started, no job)."""
    expect(page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')).to_have_count(
        1, timeout=60_000)


@contextmanager
def serve(workspace: Path, log_path: Path, *options: str, port: int | None = None, python: str = sys.executable,
          cwd: Path = REPO) -> Iterator[str]:
    """``synthscope serve`` on ``workspace`` at a free loopback port; yields its URL once healthy, then stops it.

    ``options`` go to ``synthscope serve`` (``--secrets FILE``); ``port`` when the caller needs it beforehand;
    ``python`` and ``cwd`` to serve from another installation (the wheel test)."""
    port = port or free_port()
    with open(log_path, "wb") as log:
        server = subprocess.Popen([python, "-m", "synthscope.cli", "serve", str(workspace), "--port", str(port),
                                   *options],
                                  cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, server, "the dashboard", log_path)
        yield url
    finally:
        stop(server)
