"""Sign-in in a real headless Chromium against a local OIDC provider: nothing of the workspace before sign-in,
the Overview for an allowed address, "not allowed" for a stranger, and sign-out."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from synthscope import cli
from synthscope.dashboard.components.safe import JOINER
from tests.browser.conftest import BROWSER_ARGS, serve
from tests.conftest import chromium_executable
from tests.fixtures.oidc import oidc_provider, write_secrets
from tests.fixtures.processes import free_port

pytestmark = pytest.mark.browser

MARKER = "zebra-lantern-42"  # a record's answer: must never reach a visitor not let in
DATASET = "secret-synth"


@dataclass(frozen=True)
class Dashboard:
    url: str
    workspace: Path


@pytest.fixture
def tiny_ws(tmp_path: Path) -> Path:
    """A workspace with one small synthetic dataset: enough to tell whether a page shows the workspace."""
    ws = tmp_path / "ws-private"
    source = tmp_path / "rows.jsonl"
    source.write_text(f'{{"prompt": "What is the marker?", "answer": "{MARKER}"}}\n'
                      '{"prompt": "Another question", "answer": "another answer"}\n')
    assert cli.main(["init", str(ws)]) == 0
    assert cli.main(["ingest", str(source), "--name", DATASET, "--kind", "synthetic", "-w", str(ws)]) == 0
    return ws


@pytest.fixture
def dashboard(tiny_ws: Path, tmp_path: Path) -> Iterator[Dashboard]:
    """``synthscope serve --secrets`` with sign-in through a local OIDC provider; allowed@example.com and
    anyone @team.example are let in."""
    port, provider_port = free_port(), free_port()
    with oidc_provider(provider_port, f"http://127.0.0.1:{port}/oauth2callback", tmp_path / "oidc.log") as issuer:
        secrets_file = write_secrets(tmp_path / "secrets.toml", issuer, port, ["allowed@example.com", "@team.example"])
        with serve(tiny_ws, tmp_path / "server.log", "--secrets", str(secrets_file), port=port) as url:
            yield Dashboard(url, tiny_ws.resolve())


def assert_nothing_of_the_workspace(page: Page, ws: Path) -> None:
    body = page.content()
    for secret in (str(ws), ws.name, DATASET, MARKER):
        assert secret not in body, f"{secret!r} shown before sign-in"
    expect(page.get_by_role("heading", name="Overview")).to_have_count(0)


def sign_in(page: Page, email: str) -> None:
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"http://127\.0\.0\.1:\d+/interaction/"), timeout=30_000)
    page.get_by_placeholder("Enter any login").fill(email)
    page.get_by_placeholder("and password").fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # consent to sharing the email with the dashboard


def test_sign_in_lets_in_the_allow_list_only(dashboard: Dashboard, tmp_path: Path) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            for path in ("/", "/compare", "/datasets"):
                page.goto(dashboard.url + path)
                expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
                assert_nothing_of_the_workspace(page, dashboard.workspace)
            page.screenshot(path=str(tmp_path / "signin.png"))

            sign_in(page, "allowed@example.com")
            expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible(timeout=60_000)
            # an address is data: a word joiner after its @ keeps Markdown from making it a mailto link
            expect(page.get_by_text(f"Signed in as allowed@{JOINER}example.com")).to_be_visible()
            page.goto(dashboard.url + "/datasets")
            expect(page.get_by_role("combobox", name="Dataset version")).to_have_value(
                re.compile(DATASET), timeout=60_000)
            page.screenshot(path=str(tmp_path / "allowed.png"))

            page.get_by_role("button", name="Sign out").click()
            page.get_by_role("button", name="Yes, sign me out").click()  # the provider's own sign-out
            expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
            assert_nothing_of_the_workspace(page, dashboard.workspace)

            sign_in(page, "stranger@evil.test")
            expect(page.get_by_text(f"stranger@{JOINER}evil.test is not allowed to open this dashboard")).to_be_visible(
                timeout=60_000)
            assert_nothing_of_the_workspace(page, dashboard.workspace)
            page.goto(dashboard.url + "/compare")
            expect(page.get_by_role("heading", name="Not allowed")).to_be_visible(timeout=60_000)
            assert_nothing_of_the_workspace(page, dashboard.workspace)
            page.screenshot(path=str(tmp_path / "stranger.png"))
            expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        finally:
            browser.close()


def test_a_domain_entry_lets_in_that_domain(dashboard: Dashboard) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(dashboard.url + "/datasets")
            expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
            sign_in(page, "bob@team.example")
            expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible(timeout=60_000)
        finally:
            browser.close()


def fetch(url: str, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method, data=b"{}" if method != "GET" else None,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


SHELL = "shell"  # the frontend's HTML, the same bytes for every path: no data, that comes over the gated websocket


def test_no_route_serves_the_workspace_without_a_session(dashboard: Dashboard) -> None:
    """Every HTTP route Streamlit serves, asked without a cookie: none answers with anything of the workspace."""
    ws = dashboard.workspace
    secrets = [str(ws).encode(), ws.name.encode(), DATASET.encode(), MARKER.encode()]
    _, shell = fetch(dashboard.url + "/")
    routes: dict[tuple[str, str], int | str | None] = {
        ("GET", "/"): SHELL, ("GET", "/compare"): SHELL, ("GET", "/datasets?dataset=secret-synth"): SHELL,
        ("GET", "/_stcore/health"): 200, ("GET", "/_stcore/host-config"): 200, ("GET", "/_stcore/metrics"): 200,
        # server.enableStaticServing is off: no /app/static route, the path falls through to the shell
        ("GET", "/app/static/synthscope.toml"): SHELL,
        ("GET", "/app/static/../../" + str(ws) + "/synthscope.toml"): None,
        ("GET", "/static/..%2f..%2f..%2f" + ws.name + "%2fsynthscope.toml"): None,
        # server.enableAgentApi is off: the routes answer, but only that the API is off
        ("POST", "/_stcore/agent/interact"): 403, ("POST", "/_stcore/agent/mcp"): 400,
        ("GET", "/_stcore/agent/openapi.json"): 200,
        # uploads go into a session the caller must already hold; media only by content hash, from gated runs
        ("PUT", "/_stcore/upload_file/no-session/no-file"): None,
        ("GET", "/media/0123456789abcdef0123456789abcdef0123456789abcdef01234567.txt"): 404,
        # custom components' own files (none here), never the workspace
        ("GET", "/component/x/index.html"): 404, ("GET", "/_stcore/bidi-components/x/index.js"): 404,
        ("GET", "/_stcore/script-health-check"): None,
    }
    for (method, path), expected in routes.items():
        status, body = fetch(dashboard.url + path, method)
        if expected == SHELL:
            assert (status, body) == (200, shell), (method, path, status, body[:300])
        elif expected is not None:
            assert status == expected, (method, path, status, body[:300])
        else:
            assert status >= 400 or body == shell, (method, path, status, body[:300])
        for secret in secrets:
            assert secret not in body, (method, path, status, body[:300])
