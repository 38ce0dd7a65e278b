"""The sign-in gate: runs in ``app.py`` before ``st.navigation``, so no page runs for a visitor not let in.

Sign-in is on when the secrets hold ``[auth]``, or when ``synthscope serve`` found it on (then a secrets file
that lost its ``[auth]`` shows an error, never the workspace). Who is let in: :func:`synthscope.team.access.is_allowed`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit import config

from synthscope.dashboard.components.safe import md
from synthscope.team import access


def _secrets() -> dict[str, Any] | None:
    """The secrets as a plain dict, ``{}`` when there are none, None when they cannot be read."""
    try:
        return st.secrets.to_dict()
    except Exception:  # Streamlit raises the same error for "no file" and "a file that does not parse"
        files = config.get_option("secrets.files") or []
        return None if any(Path(f).exists() for f in files) else {}


def _refuse(title: str, message: str, button: tuple[str, Callable[[], None]] | None = None) -> None:
    """Show why the workspace is not shown (``message``: Markdown), with a sign-in or sign-out button; end this run."""
    st.title("synthscope")
    st.subheader(title)
    st.write(message)
    if button is not None:
        label, action = button
        st.button(label, on_click=action, type="primary")
    st.stop()


def require_sign_in() -> str | None:
    """Stop this run unless the visitor may see the workspace; their address when sign-in is on, else None."""
    secrets = _secrets()
    if secrets is None:
        _refuse("Sign-in is misconfigured", "The secrets file does not parse; ask whoever runs this dashboard.")
        return None
    try:
        settings = access.auth_settings(secrets)
    except access.AccessError as exc:
        _refuse("Sign-in is misconfigured", f"{md(exc)}. Ask whoever runs this dashboard.")
        return None
    if not settings.configured:
        if access.sign_in_required():
            _refuse("Sign-in is misconfigured", "This dashboard was started with sign-in, but the secrets no "
                    "longer configure it. Ask whoever runs this dashboard.")
        return None
    if not st.user.is_logged_in:
        _refuse("Sign in to open this dashboard",
                "This synthscope dashboard is shared: sign in with your organisation's account.",
                ("Sign in", st.login))
        return None
    user = st.user.to_dict()
    if not access.is_allowed(user, settings.allow):
        who = md(user.get("email") or "This account")
        _refuse("Not allowed", f"{who} is not allowed to open this dashboard. Sign out and sign in with "
                "another account, or ask whoever runs it to add you to the allow-list.", ("Sign out", st.logout))
        return None
    email = access.signed_in_email(user)
    with st.sidebar:
        st.caption(f"Signed in as {md(email)}")
        st.button("Sign out", on_click=st.logout, key="signin_sign_out")
    return email
