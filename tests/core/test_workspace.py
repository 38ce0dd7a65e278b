"""The workspace: atomic artefacts, lock-free reading while jobs write, crash safety."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from synthscope.contamination import scan as scan_module
from synthscope.contamination.scan import run_scan
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError, atomic_write_text

CLI = [sys.executable, "-m", "synthscope.cli"]


def test_init_is_idempotent_and_refuses_foreign_folders(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    assert (ws.root / "synthscope.toml").is_file() and (ws.root / "catalog.duckdb").is_file()
    Workspace.init(tmp_path / "ws")  # again: fine
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(WorkspaceError, match="non-empty folder"):
        Workspace.init(tmp_path / "other")
    with pytest.raises(WorkspaceError, match="synthscope init"):
        Workspace.open(tmp_path / "other")


def test_views_exist_and_are_empty_before_any_artefact(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    for view in ("datasets", "records", "scans", "verdicts", "evidence", "latest_verdicts", "contamination_grid"):
        assert len(ws.query(f"SELECT * FROM {view}")) == 0


def test_catalog_file_serves_external_duckdb_clients(demo_ws: Path) -> None:
    con = duckdb.connect(str(demo_ws / "catalog.duckdb"), read_only=True)
    rows = con.execute("SELECT synthetic, contaminated FROM contamination_grid ORDER BY synthetic, "
                       "synthetic_version").fetchall()
    con.close()
    assert rows == [("chat-distill", 2), ("code-instruct", 32), ("code-instruct", 0), ("quiz-synth", 100),
                    *[("support-synth", 0)] * 4]


def test_atomic_write_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_staged_artefact_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    final = ws.scans_dir / "x"
    with pytest.raises(RuntimeError), ws.staged(final) as tmp:
        (tmp / "verdicts.parquet").write_text("half")
        raise RuntimeError("crash while writing")
    assert not final.exists() and list((ws.root / "tmp").iterdir()) == []
    with ws.staged(final) as tmp:
        (tmp / "a").write_text("whole")
    assert (final / "a").read_text() == "whole"
    with pytest.raises(WorkspaceError, match="never overwritten"), ws.staged(final):
        pass


def test_scan_that_fails_midway_writes_nothing(demo_ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.open(demo_ws)
    scans_before = sorted(p.name for p in ws.scans_dir.iterdir())
    real_write = scan_module._write
    calls = []

    def write_then_crash(df, schema, path):  # noqa: ANN001
        real_write(df, schema, path)
        calls.append(path)
        raise OSError("disk full")

    monkeypatch.setattr(scan_module, "_write", write_then_crash)
    with pytest.raises(OSError, match="disk full"):
        run_scan(ws, DatasetRef("humaneval"), [DatasetRef("code-instruct", "v1")], workers=1)
    assert calls  # it did get as far as writing a file
    assert sorted(p.name for p in ws.scans_dir.iterdir()) == scans_before
    assert list((ws.root / "tmp").iterdir()) == []


def test_killed_scan_process_leaves_no_visible_artefact(demo_ws: Path) -> None:
    ws = Workspace.open(demo_ws)
    verdicts_before = len(ws.query("SELECT * FROM verdicts"))
    scans_before = sorted(p.name for p in ws.scans_dir.iterdir())
    # A hard crash (SIGKILL) right after the first file of the scan is written.
    script = textwrap.dedent(f"""
        import os, signal
        from synthscope.contamination import scan
        from synthscope.core.workspace import Workspace, DatasetRef
        real = scan._write
        def write_and_die(df, schema, path):
            real(df, schema, path)
            os.kill(os.getpid(), signal.SIGKILL)
        scan._write = write_and_die
        scan.run_scan(Workspace.open({str(demo_ws)!r}), DatasetRef("humaneval"),
                      [DatasetRef("code-instruct", "v1")], workers=1)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    assert sorted(p.name for p in ws.scans_dir.iterdir()) == scans_before
    assert len(ws.query("SELECT * FROM verdicts")) == verdicts_before
    staging = list((ws.root / "tmp").iterdir())
    assert len(staging) == 1 and (staging[0] / "verdicts.parquet").exists()  # the half-written artefact...
    # ...lies only in the staging area, which no view reads; the next scan works as usual.
    run_scan(ws, DatasetRef("humaneval"), [DatasetRef("code-instruct", "v1")], workers=1)
    assert len(ws.query("SELECT * FROM verdicts")) == verdicts_before + 164


def test_dashboard_style_reads_never_block_while_scans_write(demo_ws: Path) -> None:
    """A reader queries views and the catalog file in a loop while a CLI process runs scans."""
    ws = Workspace.open(demo_ws)
    scans_before = len(ws.query("SELECT * FROM scans"))
    pairs = len(ws.query("SELECT * FROM contamination_grid"))  # the scans below only replace some pairs' verdicts
    writer = subprocess.Popen(
        ["bash", "-c", " && ".join(
            [" ".join(CLI + ["scan", "-w", str(demo_ws), "--synthetic", "code-instruct@v1",
                             "--synthetic", "chat-distill@v1", "--benchmark", "humaneval", "--workers", "2"])] * 4)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    reads, errors = 0, []
    deadline = time.monotonic() + 300
    while writer.poll() is None and time.monotonic() < deadline:
        try:
            grid = ws.query("SELECT * FROM contamination_grid")
            assert len(grid) == pairs
            ws.query("SELECT count(*) FROM evidence JOIN records USING (record_id)")
            con = duckdb.connect(str(demo_ws / "catalog.duckdb"), read_only=True)
            con.execute("SELECT count(*) FROM latest_verdicts").fetchall()
            con.close()
            reads += 1
        except Exception as exc:  # any lock or partial-file error fails the test below
            errors.append(repr(exc))
    assert writer.wait(timeout=60) == 0, writer.stderr.read() if writer.stderr else ""
    assert errors == []
    assert reads >= 5
    assert len(ws.query("SELECT * FROM scans")) == scans_before + 4
