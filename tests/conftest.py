"""Shared fixtures: a demo workspace built once per session, and the real-data folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from synthscope.core import hub
from synthscope.demo.build import build_demo

REAL_DATA = Path(os.environ.get("SYNTHSCOPE_REAL_DATA")
                 or Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real")

hub.configure(None)  # the test suite never reaches a model or dataset hub


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
    return build_demo(tmp_path_factory.mktemp("demo") / "ws")


@pytest.fixture
def demo_ws(demo_workspace_template: Path, tmp_path: Path) -> Path:
    """A private copy of the demo workspace that a test may write to."""
    from synthscope.core.workspace import Workspace

    target = tmp_path / "ws"
    shutil.copytree(demo_workspace_template, target)
    Workspace.open(target).refresh_catalog()
    return target


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
