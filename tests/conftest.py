"""Shared fixtures: a demo workspace built once per session, and the real-data folder."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import streamlit as st

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

from synthscope.core import hub
from synthscope.demo.build import build_demo

REAL_DATA = Path(os.environ.get("SYNTHSCOPE_REAL_DATA")
                 or Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real")

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"

hub.configure(None)  # the test suite never reaches a model or dataset hub
# The demo's trained models are cached per session, not in the user's ~/.cache (synthscope.demo.tinylm.model_cache).
os.environ["SYNTHSCOPE_CACHE"] = tempfile.mkdtemp(prefix="synthscope-test-cache-")


@pytest.fixture(scope="session")
def demo_workspace_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo workspace, built once; copy it (``demo_ws``) before writing to it.

    ``SYNTHSCOPE_TEST_DEMO`` names an already-built demo workspace to copy instead (a developer's shortcut
    while iterating on tests that do not change the demo; CI never sets it).
    """
    prebuilt = os.environ.get("SYNTHSCOPE_TEST_DEMO")
    if prebuilt:
        target = tmp_path_factory.mktemp("demo") / "ws"
        shutil.copytree(prebuilt, target)
        from synthscope.core.workspace import Workspace

        Workspace.open(target).refresh_catalog()
        return target
    with own_time_budget(DEMO_BUILD_BUDGET_S):
        return build_demo(tmp_path_factory.mktemp("demo") / "ws")


DEMO_BUILD_BUDGET_S = 2400  # the whole demo on 2 busy cores (tiny models, lm-eval, four scorecards, semantic scans)


@contextmanager
def own_time_budget(seconds: float) -> Iterator[None]:
    """Give a session fixture's one-off build its own time limit instead of eating the first test's.

    pytest-timeout (``timeout = 600`` in pyproject.toml, method ``signal``) counts fixture setup
    in the test that first asks for it; building the demo takes longer than a test may. The
    alarm is set to ``seconds`` for the build and to what the test had left afterwards.
    """
    left, interval = signal.getitimer(signal.ITIMER_REAL)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, left, interval)


@pytest.fixture
def demo_ws(demo_workspace_template: Path, tmp_path: Path) -> Path:
    """A private copy of the demo workspace that a test may write to."""
    from synthscope.core.workspace import Workspace

    target = tmp_path / "ws"
    shutil.copytree(demo_workspace_template, target)
    Workspace.open(target).refresh_catalog()
    return target


@pytest.fixture
def open_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., AppTest]:
    """``open_app(ws, page=None, *, dataset=None, secrets=None, user=None)``: the dashboard in AppTest.

    ``ws`` is the workspace (a folder or an ``s3://`` URL; None: none configured). The app
    runs once, then switches to ``page`` (``"app_pages/compare.py"``); with ``secrets`` or
    ``user`` (the sign-in tests) it opens ``page`` directly, as a link would. Caches are
    cleared first: nothing cached for one test's workspace may leak into the next.
    """
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an import must not point HF_HOME at a test folder
    st.cache_data.clear()
    st.cache_resource.clear()

    def open_app(ws: str | Path | None, page: str | None = None, *, dataset: str | None = None,
                 secrets: dict[str, Any] | None = None, user: dict[str, Any] | None = None) -> AppTest:
        if ws is None:
            monkeypatch.delenv("SYNTHSCOPE_WORKSPACE", raising=False)
        else:
            monkeypatch.setenv("SYNTHSCOPE_WORKSPACE", str(ws))
        at = AppTest.from_file(APP, default_timeout=90)
        if dataset:
            at.query_params["dataset"] = dataset
        signing_in = secrets is not None or user is not None
        if signing_in:
            at.secrets, at.user = secrets or {}, user or {}
            if page:
                at.switch_page(page)
        at.run()
        if page and not signing_in:
            at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_app


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not present at {REAL_DATA} (it is in CI; a user's machine does not have it)")
    return REAL_DATA


def chromium_executable() -> str:
    """The Chromium the browser tests drive; a missing one is an error, never a skip."""
    candidate = os.environ.get("SYNTHSCOPE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(candidate).exists():
        raise RuntimeError(
            "the browser tests need Chromium: install it (Debian/Ubuntu: apt-get install chromium; "
            "`make test` does this when run as root) or set SYNTHSCOPE_CHROMIUM"
        )
    return candidate


S3_BUCKET = "team"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3 server, in this process, on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A fresh bucket ``team``, and the standard AWS variables pointing every client at the server."""
    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "team-key", "AWS_SECRET_ACCESS_KEY": "team-secret",
                       "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_server}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3")
    client.create_bucket(Bucket=S3_BUCKET)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=S3_BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=S3_BUCKET)
