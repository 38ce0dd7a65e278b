"""Browsing a workspace: dataset versions, one page of a version's rows with text search, uploads.

Rows are read a page at a time with bound parameters, so browsing a dataset of
millions of rows never loads it whole; without a search the page is a range of
the ``row`` column, which Parquet row-group statistics answer without a scan.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from synthscope.core.workspace import DatasetRef, Workspace, owned_name

ROW_COLUMNS = ["row", "record_id", "source_line", "prompt", "answer"]
MAX_NAME_BYTES = 200  # file systems take 255; the rest is room for a suffix


def dataset_versions(ws: Workspace, kind: str | None = None) -> pd.DataFrame:
    """Every dataset version (of ``kind``, if given), by name then creation."""
    where, params = ("WHERE kind = ?", [kind]) if kind else ("", [])
    return ws.query(f"""
        SELECT name, kind, version, rows, errors, created_at, source, format, mapping,
               name || '@' || version AS ref
        FROM datasets {where}
        ORDER BY name, created_at, version
    """, params)


def versions_by_kind(ws: Workspace) -> pd.DataFrame:
    """Dataset versions and rows per kind."""
    return ws.query("""
        SELECT kind, count(DISTINCT name) AS datasets, count(*) AS versions, sum(rows)::BIGINT AS rows
        FROM datasets GROUP BY kind ORDER BY kind
    """)


@dataclass
class RowPage:
    rows: pd.DataFrame
    total: int  # rows matching the search (all rows without one)
    offset: int


def _like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` taken literally (escape character ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_rows(ws: Workspace, ref: DatasetRef, text: str = "", offset: int = 0, limit: int = 50) -> RowPage:
    """Rows ``offset .. offset + limit`` of ``ref`` whose prompt, answer or record id contains ``text``.

    The match is case-insensitive (``ILIKE``) and literal: ``%`` and ``_`` match themselves.
    """
    ref = ws.resolve(ref)
    offset, limit = max(int(offset), 0), max(int(limit), 1)
    columns = ", ".join(ROW_COLUMNS)
    con = ws.connect()
    try:
        if not text:
            total = int(ws.manifest(ref)["rows"])
            rows = con.execute(
                f"SELECT {columns} FROM records WHERE dataset = ? AND version = ? AND row >= ? AND row < ? "
                "ORDER BY row", [ref.name, ref.version, offset, offset + limit]).df()
            return RowPage(rows, total, offset)
        match = ("dataset = ? AND version = ? AND (prompt ILIKE ? ESCAPE '\\' OR answer ILIKE ? ESCAPE '\\' "
                 "OR record_id ILIKE ? ESCAPE '\\')")
        pattern = _like_pattern(text)
        params = [ref.name, ref.version, pattern, pattern, pattern]
        total = int(con.execute(f"SELECT count(*) FROM records WHERE {match}", params).fetchone()[0])
        rows = con.execute(f"SELECT {columns} FROM records WHERE {match} ORDER BY row LIMIT ? OFFSET ?",
                           [*params, limit, offset]).df()
        return RowPage(rows, total, offset)
    finally:
        con.close()


@contextmanager
def staged_upload(ws: Workspace, filename: str, data: bytes) -> Iterator[Path]:
    """Write uploaded bytes under the workspace's ``tmp/`` (keeping the file's name); removed afterwards.

    The name is the browser's, so anything: only its last part is kept, without NUL bytes, and a
    name no file system takes (empty, ``..``, too long) becomes ``upload`` with its short suffixes.
    """
    ws.check_writable()
    folder = ws.root / "tmp" / owned_name("upload")
    folder.mkdir(parents=True)
    try:
        path = folder / _upload_name(filename)
        path.write_bytes(data)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _upload_name(filename: str) -> str:
    name = Path(filename.replace("\\", "/").replace("\x00", "")).name
    try:
        fits = name not in ("", ".", "..") and len(os.fsencode(name)) <= MAX_NAME_BYTES
    except UnicodeEncodeError:  # a lone surrogate no file name can hold
        fits = False
    if fits:
        return name
    return "upload" + "".join(s for s in Path(name).suffixes[-2:] if len(s) <= 10 and s.isascii())
