"""The workspace the dashboard shows: ``$SYNTHSCOPE_WORKSPACE``, set by ``synthscope serve``."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from synthscope.core.workspace import Workspace, WorkspaceError
from synthscope.dashboard.components.safe import md

ENV = "SYNTHSCOPE_WORKSPACE"
T = TypeVar("T")


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


def change_stamp(ws: Workspace) -> int | None:
    """When the workspace's artefacts last changed: the time ``catalog.duckdb`` was written, which every artefact
    landing rewrites (:meth:`Workspace.staged`), from this process or any other. None where there is no such
    file to read (a workspace on object storage, one not yet catalogued): then nothing is cached."""
    if ws.read_only:
        return None
    try:
        return (ws.root / "catalog.duckdb").stat().st_mtime_ns
    except OSError:
        return None


def cached(read: Callable[..., T], ws: Workspace, *args: Any) -> T:
    """``read(ws, *args)``, kept until the workspace changes (:func:`change_stamp`) and shared by every session.

    For the reads a page draws first (counts, scorecards, the grid): each opens DuckDB over every artefact,
    tens of milliseconds apiece, and a page drawn again after nothing changed should not wait for them.
    ``args`` must be hashable by Streamlit (strings, numbers).
    """
    stamp = change_stamp(ws)
    if stamp is None:
        return read(ws, *args)
    return _cached_read(f"{read.__module__}.{read.__qualname__}", str(ws.root), stamp, args, read, ws)


@st.cache_data(show_spinner=False, max_entries=256)
def _cached_read(name: str, root: str, stamp: int, args: tuple[Any, ...], _read: Callable[..., Any],
                 _ws: Workspace) -> Any:
    return _read(_ws, *args)
