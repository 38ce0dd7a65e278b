"""The workspace the dashboard shows: ``$SYNTHSCOPE_WORKSPACE``, set by ``synthscope serve``."""

from __future__ import annotations

import os

import streamlit as st

from synthscope.core.workspace import Workspace, WorkspaceError
from synthscope.dashboard.components.safe import md

ENV = "SYNTHSCOPE_WORKSPACE"


def open_workspace() -> tuple[Workspace | None, str | None]:
    """The workspace, or ``None`` and a message (Markdown) saying what is wrong and how to fix it."""
    root = os.environ.get(ENV, "").strip()
    if not root:
        return None, (f"No workspace is set: start the dashboard with `synthscope serve PATH` "
                      f"(or set {ENV} to a workspace folder). Build one to try with `synthscope demo PATH`.")
    try:
        return Workspace.open(root), None
    except WorkspaceError as exc:
        return None, f"{ENV} does not point to a workspace: {md(exc)}"


def read_only(ws: Workspace, action: str) -> bool:
    """On a workspace opened from object storage, say that ``action`` is done elsewhere and return True."""
    if ws.read_only:
        st.info(f"{action} writes to the workspace, and this one is read-only: it is a copy on object storage "
                f"({md(ws.root)}). Do it in the local workspace it was pushed from, then `synthscope push` it again.")
    return ws.read_only


def require_workspace() -> Workspace:
    """The workspace; otherwise show why there is none and stop the page."""
    ws, error = open_workspace()
    if ws is None:
        st.error(error)
        st.stop()
    return ws
