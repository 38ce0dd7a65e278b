"""The workspace: atomic artefacts, lock-free reading while jobs write, crash safety."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from synthscope import cli, tasks
from synthscope.compute import jobs
from synthscope.contamination import scan as scan_module
from synthscope.contamination.scan import run_scan
from synthscope.core.workspace import (
    AREAS,
    STALE_SECONDS,
    DatasetRef,
    Workspace,
    WorkspaceError,
    atomic_write_text,
    check_name,
    collect_garbage,
)
from synthscope.evals import lmeval, runs
from synthscope.scorecard import report

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


def test_dashboard_style_reads_never_block_while_scans_write(demo_ws: Path, tmp_path: Path) -> None:
    """A reader queries views and the catalog file in a loop while a CLI process runs scans."""
    ws = Workspace.open(demo_ws)
    log = (tmp_path / "scans.log").open("w+")  # not a pipe: one that nobody drains until the end can fill
    scans_before = len(ws.query("SELECT * FROM scans"))
    pairs = len(ws.query("SELECT * FROM contamination_grid"))  # the scans below only replace some pairs' verdicts
    writer = subprocess.Popen(
        ["bash", "-c", " && ".join(
            [" ".join(CLI + ["scan", "-w", str(demo_ws), "--synthetic", "code-instruct@v1",
                             "--synthetic", "chat-distill@v1", "--benchmark", "humaneval", "--workers", "2"])] * 4)],
        stdout=subprocess.DEVNULL, stderr=log, text=True)
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
    code = writer.wait(timeout=60)
    log.seek(0)
    said = log.read()
    log.close()
    assert code == 0, said[-4000:]
    assert errors == []
    assert reads >= 5
    assert len(ws.query("SELECT * FROM scans")) == scans_before + 4


# Names and ids that must never become part of a path: they climb out, are absolute, or make odd folders.
BAD_NAMES = ["../victim", "..", "/tmp/victim", "a/b", "a\\b", ".hidden", "-flag", "v9\n", "v9\r", "a\x00b", "",
             " v1", "x" * 101, "C:victim"]


@pytest.mark.parametrize("value", BAD_NAMES)
def test_check_name_refuses_anything_but_one_plain_path_component(value: str) -> None:
    with pytest.raises(WorkspaceError, match="invalid run id") as caught:
        check_name(value, "run id")
    assert "\n" not in str(caught.value)  # one line, whatever the value holds


@pytest.mark.parametrize("value", ["v1", "v9", "gsm8k", "my-set_2.1", "20250101-120000-123-ab12", "x" * 100])
def test_check_name_accepts_plain_names(value: str) -> None:
    assert check_name(value, "name") == value


@pytest.mark.parametrize("value", BAD_NAMES)
def test_no_id_or_name_becomes_a_path_outside_its_folder(tmp_path: Path, value: str) -> None:
    ws = Workspace.init(tmp_path / "ws")
    calls = [*(lambda area=area: ws.artefact_dir(area, value) for area in AREAS),
             lambda: ws.dataset_dir(DatasetRef(value, "v1")), lambda: ws.dataset_dir(DatasetRef("set", value)),
             lambda: jobs.status(ws, value), lambda: jobs.request_cancel(ws, value), lambda: jobs.log_tail(ws, value),
             lambda: jobs.Reporter(ws, value), lambda: report.metrics(ws, value),
             lambda: report.evidence(ws, "r1", value, "pii_hits"), lambda: report.evidence(ws, "r1", "privacy", value),
             lambda: lmeval.read_errors(ws, value), lambda: runs.get_run(ws, value),
             lambda: runs.add_run(ws, "org/model", run_id=value)]
    for call in calls:
        with pytest.raises(WorkspaceError):
            call()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]
    assert not list((ws.root / "jobs").iterdir()) and not (ws.root / "runs").exists()


def test_staging_refuses_a_destination_outside_the_workspace(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="outside the workspace"), ws.staged(ws.scans_dir / ".." / ".." / "x"):
        pass
    assert not (tmp_path / "x").exists()


def test_a_version_ending_in_a_newline_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    assert cli.main(["init", str(ws)]) == 0
    source = tmp_path / "s.jsonl"
    source.write_text('{"prompt": "p", "answer": "a"}\n')
    assert cli.main(["ingest", str(source), "-w", str(ws), "--name", "s", "--kind", "synthetic",
                     "--version", "v9\n"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid version") and err.count("\n") == 1
    assert not (ws / "datasets" / "s").exists()


def test_a_job_id_given_to_the_runner_cannot_leave_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert cli.main(["init", str(ws)]) == 0
    outside = tmp_path / "victim"
    outside.mkdir()
    (outside / "status.json").write_text('{"job_id": "victim", "kind": "scan"}')
    with pytest.raises(WorkspaceError, match="invalid job id"):
        tasks.main([str(ws), "../../victim"])
    assert (outside / "status.json").read_text() == '{"job_id": "victim", "kind": "scan"}'


LEFTOVER_MAKER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from synthscope.core.workspace import Workspace, owned_name, temp_path
    ws = Workspace.open(sys.argv[1])
    with ws.staged(ws.scans_dir / sys.argv[2]) as staging:
        (staging / "part.txt").write_text("half")
        signatures = temp_path(ws.indexes_dir / "minhash" / sys.argv[2] / "sig.parquet")
        signatures.parent.mkdir(parents=True)
        signatures.write_text("half")
        catalog = ws.root / "tmp" / f"{owned_name('catalog')}.duckdb"
        catalog.write_text("half")
        Path(f"{catalog}.wal").write_text("half")
        print("ready", flush=True)
        sys.stdin.read()  # until the test closes stdin, or kills this process
""")


def _leftover_maker(root: Path, name: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([*CLI[:1], "-c", LEFTOVER_MAKER, str(root), name], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*"))


def test_what_a_killed_process_left_is_removed_and_what_a_running_one_writes_is_kept(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = Workspace.init(tmp_path / "ws")
    killed, running = _leftover_maker(ws.root, "killed"), _leftover_maker(ws.root, "running")
    killed.kill()
    killed.wait()
    running_files = [p for p in (ws.root / "tmp").iterdir() if f"-{running.pid}-" in p.name]
    assert len(running_files) == 3 and len(list((ws.root / "tmp").iterdir())) == 6  # staging, catalog, .wal each

    Workspace.open(ws.root)  # opening removes the killed process's tmp/ leftovers, and only those
    assert sorted((ws.root / "tmp").iterdir()) == sorted(running_files)
    assert _names(ws.indexes_dir / "minhash" / "killed") != []  # hidden temporaries elsewhere: left to gc

    assert cli.main(["gc", "-w", str(ws.root)]) == 0
    out = capsys.readouterr().out
    assert "removed indexes/minhash/killed/.sig.parquet~" in out and "kept 4 that a running process may" in out
    assert _names(ws.indexes_dir / "minhash" / "killed") == []
    assert sorted((ws.root / "tmp").iterdir()) == sorted(running_files)
    assert len(_names(ws.indexes_dir / "minhash" / "running")) == 1

    running.communicate("")  # the writer finishes: its staging folder becomes scans/running
    assert running.returncode == 0 and (ws.scans_dir / "running" / "part.txt").read_text() == "half"
    assert not (ws.scans_dir / "killed").exists()
    garbage = collect_garbage(ws)  # what it left without cleaning up (it ended) goes now
    assert len(garbage.removed) == 3 and list((ws.root / "tmp").iterdir()) == []
    assert _names(ws.indexes_dir / "minhash" / "running") == []


def test_leftovers_whose_owner_cannot_be_checked_go_only_when_stale(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    old_style = [ws.root / "tmp" / ("a" * 32), ws.root / "tmp" / "catalog-0123.duckdb",
                 ws.indexes_dir / "embeddings" / "m" / ".x.parquet.0123abcd.tmp",
                 ws.root / "tmp" / "stage~00000000-1-0123456789ab~"]  # another machine's
    for path in old_style:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("?")
    recent = ws.root / "tmp" / ("b" * 32)
    recent.mkdir()
    (recent / "part").write_text("being written")
    week_ago = time.time() - STALE_SECONDS - 60
    for path in [*old_style, recent]:
        os.utime(path, (week_ago, week_ago))
    garbage = collect_garbage(ws)
    assert sorted(garbage.removed) == sorted(str(p.relative_to(ws.root)) for p in old_style)
    assert garbage.kept == [f"tmp/{'b' * 32}"] and (recent / "part").exists()  # a file in it changed lately


def test_a_copied_workspace_rebuilds_its_catalog_for_its_own_folder(tmp_path: Path) -> None:
    original = tmp_path / "original"
    assert cli.main(["init", str(original)]) == 0
    source = tmp_path / "s.jsonl"
    source.write_text('{"prompt": "p", "answer": "a"}\n')
    assert cli.main(["ingest", str(source), "-w", str(original), "--name", "s", "--kind", "synthetic"]) == 0
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    shutil.rmtree(original)
    Workspace.open(copy)
    con = duckdb.connect(str(copy / "catalog.duckdb"), read_only=True)
    assert con.execute("SELECT dataset, prompt FROM records").fetchall() == [("s", "p")]
    con.close()
    assert (copy / "catalog.root").read_text() == str(copy.resolve())
