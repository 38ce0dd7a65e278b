"""The Generate page's template preview in a real headless Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from synthscope import cli
from tests.browser.conftest import BROWSER_ARGS, serve
from tests.conftest import chromium_executable

pytestmark = pytest.mark.browser
TASKS = ["Write a haiku about rain.", "Explain what a list is in Python.", "Give one tip for sleeping well."]


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "ws"
    assert cli.main(["init", str(root)]) == 0
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"s{i}", "instruction": t}) + "\n" for i, t in enumerate(TASKS)))
    assert cli.main(["ingest", str(seeds), "-w", str(root), "--name", "seeds", "--kind", "reference"]) == 0
    with serve(root, tmp_path / "server.log") as url:
        yield url


def test_the_preview_follows_the_template_as_it_is_typed(dashboard: str, tmp_path: Path) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{dashboard}/generate")
            expect(page.get_by_role("heading", name="Generate", exact=True)).to_be_visible(timeout=60_000)
            editor = page.get_by_role("textbox", name="Prompt template (Jinja)")
            editor.fill("Rewrite this task for a child: {{ instruction }}")
            editor.press("Control+Enter")  # apply the text area
            for task in TASKS:
                expect(page.get_by_text(f"Rewrite this task for a child: {task}")).to_be_visible(timeout=30_000)
            editor.fill("{{ instruction.__class__ }}")  # refused by the server's bounded renderer, in one line
            editor.press("Control+Enter")
            expect(page.get_by_text("the template is not allowed to do that (seed s0)")).to_be_visible(timeout=30_000)
            editor.fill("About {{ topic }}")
            editor.press("Control+Enter")
            expect(page.get_by_text("The template cannot run")).to_be_visible(timeout=30_000)
            # Until the rerun ends, the previous run's (stale) button is still on the page beside the new one.
            expect(page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')).to_have_count(
                1, timeout=30_000)
            expect(page.get_by_role("button", name="Generate")).to_be_disabled()
            page.screenshot(path=str(tmp_path / "generate.png"), full_page=True)
        finally:
            browser.close()
