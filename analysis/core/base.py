"""What every layer of the workspace core shares: the marker file, the error a user can fix, time, SQL literals."""

from __future__ import annotations

from datetime import UTC, datetime

MARKER = "synthscope.toml"  # the settings file; its presence makes a folder a workspace


class WorkspaceError(Exception):
    """A problem with the workspace a user can fix; the message says how."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sql_str(value: str) -> str:
    """``value`` as a SQL string literal (for the few statements DuckDB takes no parameters in)."""
    return "'" + value.replace("'", "''") + "'"
