"""Hostile data in a real headless Chromium: nothing is fetched from where it points, nothing is injected.

A local "beacon" server records every request that reaches it; the hostile strings' images and links point at
it. First ``md`` itself, in Streamlit's own frontend; then every page of a workspace built from hostile data
(:mod:`tests.fixtures.hostile_ws`), with the contamination evidence of hostile items opened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from synthscope.dashboard.components.safe import JOINER
from tests.browser.conftest import BROWSER_ARGS, REPO, run_ended, serve
from tests.conftest import chromium_executable
from tests.fixtures.hostile_ws import SYNTHETIC, SYNTHETIC_VERSION, build_hostile_ws, file_payload, markers, payloads
from tests.fixtures.processes import free_port, stop, wait_until_healthy

pytestmark = pytest.mark.browser

# Containers Streamlit renders Markdown into: bodies, captions, alerts, and every label, help and metric.
MARKDOWN = '[data-testid="stMarkdownContainer"], [data-testid="stCaptionContainer"]'
# What Markdown made of data would add: none of it may sit in a container that shows hostile data. (A badge
# may: st.badge draws one around its label. A badge made of data leaves its label's text short, and fails so.)
INJECTED = ("img, a, svg, .katex, [role=img], h1, h2, h3, h4, h5, h6, ul, ol, li, blockquote, table, hr, del, em, "
            "[class*=stMarkdownColor]")
# In the sidebar, the page's title, and hostile text it draws last (None: only the sidebar's running job).
PAGES = [("Overview", "Overview", f"{SYNTHETIC}@{SYNTHETIC_VERSION}"), ("Datasets", "Datasets", None),
         ("Contamination", "Contamination", "HXj6"), ("Calibration", "Calibration", "HXj2"),
         ("Quality & Bias", "Quality & Bias", "HXj5"), ("Privacy", "Privacy", "synthetic copy HX1"),
         ("Trends", "Trends", SYNTHETIC_VERSION), ("Generate", "Generate", "HXj3"), ("Runs", "Runs", None),
         ("Compare", "Compare runs", None)]


class _Beacon(BaseHTTPRequestHandler):
    hits: list[str]

    def _record(self) -> None:
        self.hits.append(f"{self.command} {self.path}")
        self.send_response(204)
        self.end_headers()

    do_GET = do_HEAD = do_POST = do_OPTIONS = _record

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def beacon() -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.1 that answers every request with nothing and records it: ``(its URL, hits)``."""
    hits: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Beacon", (_Beacon,), {"hits": hits}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def _launch(p: Playwright) -> Browser:
    return p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)


def _watch(page: Page, origin: str) -> list[str]:
    """Every request the page makes outside ``origin`` (data: and blob: URLs are the page's own)."""
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((origin, "data:", "blob:")) else outside.append(r.url))
    return outside


def _shown_as_text(page: Page, beacon: str, hostile: dict[str, str]) -> set[str]:
    """The markers of the hostile strings the page shows; fails where one of them is not plain text."""
    host = beacon.removeprefix("http://")
    assert page.locator(f'[src*="{host}"], [href*="{host}"], [srcset*="{host}"]').count() == 0
    containers = page.locator(MARKDOWN).evaluate_all("""(els, injected) => els.map(e => ({
        text: e.innerText,
        injected: [...e.querySelectorAll(injected)].map(x => x.outerHTML.slice(0, 200)),
        code: [...e.querySelectorAll('code')].map(x => x.innerText),
    }))""", INJECTED)
    seen, problems = set(), []
    for box in containers:
        text = " ".join(box["text"].replace(JOINER, "").split())
        found = {m for m in hostile if m in text}
        seen |= found
        if found and box["injected"]:
            problems.append(f"{text!r} holds {box['injected']}")
        problems += [f"{text!r} has {t!r} as code" for t in box["code"] if any(m in t for m in hostile)]
        problems += [f"{hostile[m]!r} shown as {text!r}" for m in found if hostile[m] not in text]
    assert not problems, "\n".join(problems)
    return seen


# -- md() in Streamlit's own frontend -------------------------------------------------------------------------

SCRIPT = """
import json, sys
import streamlit as st
from synthscope.dashboard.components.safe import for_badge, md

for i, text in enumerate(json.loads(sys.argv[1])):
    st.markdown(md(text))
    st.caption(md(text))
    st.info(md(text))
    with st.expander(md(text), expanded=True):
        st.metric(md(text), md(text), help=md(text))
    st.badge(for_badge(md(text)))
    st.progress(0.5, text=md(text))
    st.radio(md(text), [md(text)], key=f"radio-{i}")
    st.text_input(md(text), key=f"input-{i}", help=md(text))
st.write("done")
"""


def test_md_renders_hostile_strings_as_text_in_streamlit(beacon: tuple[str, list[str]], tmp_path: Path) -> None:
    url, hits = beacon
    strings = [*payloads(url), file_payload()]
    script = tmp_path / "md_page.py"
    script.write_text(SCRIPT, encoding="utf-8")
    port = free_port()
    log_path = tmp_path / "streamlit.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port), "--server.headless",
             "true", "--browser.gatherUsageStats", "false", "--", json.dumps(strings)],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log, stderr=subprocess.STDOUT)
    try:
        origin = f"http://127.0.0.1:{port}"
        wait_until_healthy(origin, server, "streamlit", log_path)
        with sync_playwright() as p:
            browser = _launch(p)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 1000})
                outside = _watch(page, origin)
                page.goto(origin)
                expect(page.get_by_text("done", exact=True)).to_be_visible(timeout=60_000)
                hostile = markers(url)
                seen = _shown_as_text(page, url, hostile)
                for icon in page.get_by_test_id("stTooltipHoverTarget").all()[:3]:  # help draws on hover
                    icon.hover()
                    expect(page.get_by_test_id("stTooltipContent")).to_be_visible()
                    seen |= _shown_as_text(page, url, hostile)
                assert {m for s in strings for m in hostile if s.startswith(m)} <= seen
                page.screenshot(path=str(tmp_path / "md.png"), full_page=True)
                assert outside == [] and hits == [], (outside, hits)
            finally:
                browser.close()
    finally:
        stop(server)


# -- every page of a hostile workspace ------------------------------------------------------------------------


def _open(page: Page, nav: str, title: str, last: str | None) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(nav, exact=True).click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stSidebar").get_by_text("HXj1", exact=False)).to_be_visible(timeout=30_000)
    if last:
        expect(page.get_by_test_id("stMain").get_by_text(last, exact=False).first).to_be_attached(timeout=30_000)


def _pick(page: Page, label: str, option: str, typed: str) -> None:
    """Choose ``option`` in selectbox ``label``, typing ``typed`` to filter the options first."""
    box = page.get_by_test_id("stSelectbox").filter(has_text=label)
    box.scroll_into_view_if_needed()
    run_ended(page)
    box.click()
    page.keyboard.type(typed)
    page.get_by_role("option", name=option).first.click()


def test_every_page_of_a_hostile_workspace_fetches_nothing_and_injects_nothing(
        beacon: tuple[str, list[str]], tmp_path: Path) -> None:
    url, hits = beacon
    ws = build_hostile_ws(tmp_path / "hostile", url)
    hostile = markers(url)
    with serve(ws, tmp_path / "server.log") as dashboard, sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            outside = _watch(page, dashboard)
            page.goto(dashboard)
            seen: set[str] = set()
            for nav, title, last in PAGES:
                _open(page, nav, title, last)
                if nav == "Datasets":
                    search = page.get_by_label("Search prompt, answer and record id (case-insensitive)")
                    search.fill(payloads(url)[0])
                    search.press("Enter")
                    expect(page.get_by_text("Rows 1–1 of 1 matching", exact=False)).to_be_visible(timeout=30_000)
                if nav == "Contamination":
                    ref = f"{SYNTHETIC}@{SYNTHETIC_VERSION}"
                    _pick(page, "Synthetic dataset", ref, "HXs")
                    expect(page.get_by_test_id("stExpander").first).to_be_visible(timeout=30_000)
                    seen |= _shown_as_text(page, url, hostile)
                    _pick(page, "Benchmark item", payloads(url)[3], "HX4")  # the backtick break-out
                    expect(page.get_by_test_id("stExpander").filter(has_text="copy HX4")).to_be_visible(
                        timeout=30_000)
                    page.screenshot(path=str(tmp_path / "contamination.png"), full_page=True)
                seen |= _shown_as_text(page, url, hostile)
            assert {f"HX{i}" for i in range(1, 9)} | {"HXs", "HXv", "HXb", "HXj1"} <= seen
            assert outside == [] and hits == [], (outside, hits)
        finally:
            browser.close()
