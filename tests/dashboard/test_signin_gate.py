"""The dashboard's sign-in gate through AppTest: what a visitor sees on each side of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from synthscope import cli
from synthscope.team import access
from tests.fixtures.markdown import render
from tests.team.test_access import secrets


@pytest.fixture
def signed(open_app, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """``signed(secrets, user, page=None)``: the app on a fresh tiny workspace, as that user sees it."""
    ws = tmp_path / "ws-private"
    assert cli.main(["init", str(ws)]) == 0
    monkeypatch.delenv(access.AUTH_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # no ./.streamlit/secrets.toml but the test's
    return lambda secrets, user, page=None: open_app(ws, page, secrets=secrets, user=user)


def shown(at: AppTest) -> str:
    """Every text the run drew, main area and sidebar, Markdown as a reader sees it."""
    parts = [render(e.value).plain() for kind in (at.title, at.subheader, at.markdown, at.caption, at.error, at.info)
             for e in kind] + [c.value for c in at.code]
    return "\n".join(str(p) for p in parts) + "\n" + "\n".join(b.label for b in at.button)


def test_without_sign_in_the_workspace_opens(signed) -> None:
    at = signed({}, {})
    assert "Overview" in [t.value for t in at.title]
    assert "ws-private" in shown(at)


@pytest.mark.parametrize("page", [None, "app_pages/datasets.py", "app_pages/compare.py"])
def test_not_signed_in_sees_only_the_sign_in_button(signed, page: str | None) -> None:
    at = signed(secrets(), {"is_logged_in": False}, page)
    assert [b.label for b in at.button] == ["Sign in"]
    assert "Sign in to open this dashboard" in shown(at)
    assert "ws-private" not in shown(at) and "Overview" not in shown(at)


def test_an_allowed_user_sees_the_workspace(signed) -> None:
    at = signed(secrets(), {"is_logged_in": True, "email": "Bob@example.org", "email_verified": True})
    assert "Overview" in [t.value for t in at.title]
    assert "Signed in as bob@example.org" in shown(at) and "ws-private" in shown(at)
    assert "Sign out" in [b.label for b in at.sidebar.button]


@pytest.mark.parametrize("user", [
    {"is_logged_in": True, "email": "stranger@evil.test"},
    {"is_logged_in": True, "email": "alice@example.com", "email_verified": False},
    {"is_logged_in": True},
])
def test_a_user_not_allowed_sees_why_and_a_sign_out_button(signed, user: dict[str, Any]) -> None:
    at = signed(secrets(), user, "app_pages/compare.py")
    assert "Not allowed" in [s.value for s in at.subheader]
    assert "is not allowed to open this dashboard" in shown(at)
    assert [b.label for b in at.button] == ["Sign out"]
    assert "ws-private" not in shown(at) and "Overview" not in shown(at)


def test_started_with_sign_in_but_the_secrets_lost_it(signed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(access.AUTH_ENV, access.AUTH_REQUIRED)
    at = signed({}, {"is_logged_in": True, "email": "alice@example.com"})
    assert "Sign-in is misconfigured" in [s.value for s in at.subheader]
    assert "ws-private" not in shown(at) and at.button.len == 0


def test_unusable_settings_let_nobody_in(signed) -> None:
    at = signed(secrets(allow=[]), {"is_logged_in": True, "email": "alice@example.com"})
    assert "Sign-in is misconfigured" in [s.value for s in at.subheader]
    assert "nobody is allowed in" in shown(at) and "ws-private" not in shown(at)
