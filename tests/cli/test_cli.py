"""The command line, end to end in the same process (and once as a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from synthscope import cli
from synthscope.core import allowed
from synthscope.core.workspace import Workspace


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_ingest_scan_sql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = str(tmp_path / "ws")
    assert run(capsys, "init", ws)[0] == 0
    bench = tmp_path / "bench.jsonl"
    text = "write a function that returns the sum of all even numbers in a list of integers please"
    bench.write_text(json.dumps({"question": text, "answer": "sum evens"}) + "\n")
    synth = tmp_path / "synth.jsonl"
    synth.write_text(json.dumps({"instruction": text.upper(), "output": "ok"}) + "\n"
                     + "{broken\n" + json.dumps({"instruction": "unrelated", "output": "fine"}) + "\n")
    assert run(capsys, "ingest", str(bench), "-w", ws, "--name", "b", "--kind", "benchmark")[0] == 0
    code, out, err = run(capsys, "ingest", str(synth), "-w", ws, "--name", "s", "--kind", "synthetic")
    assert code == 0 and "imported 2 rows into s@v1" in out
    assert f"{synth}:2: malformed JSON" in err

    code, out, _ = run(capsys, "datasets", "-w", ws)
    assert code == 0 and "b     v1       benchmark" in out

    code, out, err = run(capsys, "scan", "-w", ws, "--synthetic", "s", "--benchmark", "b", "--workers", "1",
                         "--stages", "exact", "near_duplicate")
    assert code == 0
    # records, items, contaminated, share, confirmed, likely, candidates, expected false (no semantic stage: -)
    assert _rows(out)["s@v1"][:8] == ["2", "1", "1", "1.000", "1", "0", "0", "-"]
    assert "most contaminated items:" in out and "confirmed" in out and "copied: n-grams cover the item" in out
    assert "rows" in err  # the progress bar

    code, out, _ = run(capsys, "sql", "-w", ws, "SELECT synthetic, contaminated FROM contamination_grid")
    assert code == 0 and out.splitlines()[2].split() == ["s", "1"]


def _rows(out: str) -> dict[str, list[str]]:
    """The summary table of a scan: synthetic -> the other cells."""
    lines = out.split("most contaminated items:")[0].splitlines()
    return {line.split()[0]: line.split()[1:] for line in lines if "@" in line.split(" ")[0]}


def test_away_from_a_terminal_the_progress_bars_draw_a_bounded_amount(capsys: pytest.CaptureFixture[str]) -> None:
    """A log file or a pipe gets each bar when it appears and when it ends, not one line per report."""
    from synthscope.cli.progress import ProgressBar

    def report(bar: ProgressBar) -> None:
        for done in range(1, 5001):
            bar.progress(done, 10_000, "exact n-grams")
            bar.stages([{"name": "exact", "unit": "rows", "done": done, "total": 5000},
                        {"name": "embeddings", "unit": "records", "done": 0, "total": 10}])
        for done in range(5001, 10_001):
            bar.progress(done, 10_000, "embeddings")
            bar.stages([{"name": "exact", "unit": "rows", "done": 5000, "total": 5000},
                        {"name": "embeddings", "unit": "records", "done": done // 500 - 10, "total": 10}])

    with ProgressBar("rows", interval=3600) as bar:
        report(bar)
    quiet = capsys.readouterr().err
    with ProgressBar("rows", interval=0) as bar:
        report(bar)
    every = capsys.readouterr().err
    assert len(quiet) < 2_000 < 100 * len(quiet) < len(every)
    for shown in ("5000/5000 rows", "10/10 records", "10.0k/10.0k"):  # every bar's end is there
        assert shown in quiet


def test_user_errors_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "datasets", "-w", str(tmp_path / "nowhere"))
    assert code == 2 and "is not a synthscope workspace" in err and "synthscope init" in err
    ws = str(tmp_path / "ws")
    run(capsys, "init", ws)
    code, _, err = run(capsys, "scan", "-w", ws, "--synthetic", "x", "--benchmark", "y")
    assert code == 2 and "no dataset named 'y'" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, _, err = run(capsys, "ingest", str(empty), "-w", ws, "--name", "e", "--kind", "synthetic")
    assert code == 2 and "is empty" in err


@pytest.mark.parametrize("query, message", [
    ("SELEC 1", 'error: the query failed: Parser Error: syntax error at or near "SELEC"\n'),
    ("SELECT * FROM nosuch", "error: the query failed: Catalog Error: Table with name nosuch does not exist!\n"),
])
def test_a_bad_query_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], query: str, message: str) -> None:
    run(capsys, "init", str(tmp_path / "ws"))
    code, out, err = run(capsys, "sql", "-w", str(tmp_path / "ws"), query)
    assert code == 2 and err == message and out == ""


def test_a_model_that_cannot_be_found_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = str(tmp_path / "ws")
    run(capsys, "init", ws)
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"instruction": "Say hello.", "output": "Hello."}) + "\n")
    run(capsys, "ingest", str(seeds), "-w", ws, "--name", "seeds", "--kind", "synthetic")
    template = tmp_path / "t.j2"
    template.write_text("{{ prompt }}")
    code, _, err = run(capsys, "generate", "-w", ws, "--seeds", "seeds", "--template", str(template), "--output", "g",
                       "--model", str(tmp_path / "no-such-model.gguf~"))
    assert code == 2 and err.startswith("error: no model ") and err.count("\n") == 1


def test_scan_thresholds_from_flags_and_workspace_config(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = demo_ws / "synthscope.toml"
    toml.write_text(toml.read_text().replace("clean_below = 0.20", "clean_below = 0.99"))
    code, out, _ = run(capsys, "scan", "-w", str(demo_ws), "--synthetic", "code-instruct@v1",
                       "--benchmark", "humaneval", "--dirty-from", "1.0", "--workers", "1", "--stages", "exact")
    assert code == 0
    # With the workspace's clean_below 0.99 and --dirty-from 1.0, only fully covered items stay
    # flagged: 8 verbatim + 6 whitespace/case + 6 answer-only leaks; the renamings drop out.
    rows = _rows(out)
    assert rows["code-instruct@v1"][:4] == ["3044", "164", "20", "0.122"]


def test_serve_binds_to_loopback_by_default(demo_ws: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    calls = []
    monkeypatch.setattr("os.execve", lambda exe, argv, env: calls.append((argv, env)))
    assert cli.main(["serve", str(demo_ws)]) == 0
    argv, env = calls[0]
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    assert env["SYNTHSCOPE_WORKSPACE"] == str(demo_ws.resolve())
    assert "http://127.0.0.1:8501" in capsys.readouterr().out
    assert cli.main(["serve", str(demo_ws), "--host", "0.0.0.0"]) == 2  # no sign-in: refused
    assert "anyone who can reach this machine" in capsys.readouterr().err
    assert len(calls) == 1


def test_ingest_prints_every_lost_row_and_notes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = str(tmp_path / "ws")
    run(capsys, "init", ws)
    src = tmp_path / "q.csv"
    src.write_text('prompt,answer\n"two\nlines",1\nok,2\n"never closed,3\nlost,4\nlost too,5\n', encoding="utf-8")
    code, out, err = run(capsys, "ingest", str(src), "-w", ws, "--name", "q", "--kind", "reference")
    assert code == 0 and "imported 2 rows" in out
    assert "note: 1 records span several lines" in out and "lines 2-3" in out
    assert "3 rows were not imported" in err and f"{src}:5-7: " in err


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A workspace, an empty secrets file, and ``serve`` with its exec recorded instead of run."""
    calls: list[dict[str, str]] = []
    monkeypatch.setattr("os.execve", lambda exe, argv, env: calls.append(env))
    secrets = tmp_path / "secrets" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_text("")
    return {"ws": str(Workspace.init(tmp_path / "ws").root), "secrets": str(secrets), "calls": calls}


def test_serve_names_the_folders_the_dashboard_may_read(tmp_path: Path, served: dict[str, Any],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a", "b", "tasks"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv(allowed.IMPORT_DIRS_ENV, "/")  # inherited settings never widen what the dashboard reads
    monkeypatch.setenv(allowed.TASK_DIRS_ENV, "/")
    code, out, _ = run(capsys, "serve", served["ws"], "--secrets", served["secrets"], "--import-dir",
                       str(tmp_path / "a"), "--import-dir", str(tmp_path / "b" / ".." / "b"),
                       "--task-dir", str(tmp_path / "tasks"))
    assert code == 0
    env = served["calls"][-1]
    assert env[allowed.IMPORT_DIRS_ENV] == f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"
    assert env[allowed.TASK_DIRS_ENV] == str(tmp_path / "tasks")
    assert f"the import form reads files under: {tmp_path / 'a'}, {tmp_path / 'b'}" in out

    code, out, _ = run(capsys, "serve", served["ws"], "--secrets", served["secrets"])
    env = served["calls"][-1]
    assert code == 0 and allowed.IMPORT_DIRS_ENV not in env and allowed.TASK_DIRS_ENV not in env
    assert "uploads only" in out and "--import-dir" in out


def test_serve_refuses_folders_that_are_missing_hold_the_secrets_or_overlap_the_workspace(
        tmp_path: Path, served: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "serve", served["ws"], "--secrets", served["secrets"],
                       "--import-dir", str(tmp_path / "nowhere"))
    assert code == 2 and "no such folder" in err
    code, _, err = run(capsys, "serve", served["ws"], "--secrets", served["secrets"], "--import-dir", str(tmp_path))
    assert code == 2 and "holds the sign-in secrets" in err
    for tasks in (tmp_path, Path(served["ws"]) / "tmp"):  # uploads are staged in the workspace's tmp/
        code, _, err = run(capsys, "serve", served["ws"], "--secrets", served["secrets"], "--task-dir", str(tasks))
        assert code == 2 and "overlaps the workspace" in err
    assert served["calls"] == []


def test_ingest_help_says_a_task_file_runs_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["ingest", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "An lm-eval task YAML is code" in text and "as lm-eval itself does" in text


def test_console_script_runs(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "synthscope.cli", "init", str(tmp_path / "w")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "workspace ready" in proc.stdout


def test_a_preset_takes_an_id_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = str(tmp_path / "ws")
    run(capsys, "init", ws)
    humaneval = tmp_path / "he.jsonl"
    humaneval.write_text("".join(json.dumps({"task_id": f"HumanEval/{i}", "uid": f"u{i}", "prompt": f"def f{i}():",
                                             "canonical_solution": "    return 1"}) + "\n" for i in range(2)))
    mmlu = tmp_path / "mmlu.csv"
    mmlu.write_text("q1,a,b,c,d,B,m1\nq2,a,b,c,d,C,m2\n")  # headerless: the id column is not a choice
    chat = tmp_path / "chat.jsonl"
    chat.write_text("".join(json.dumps({"conv": f"c{i}", "id": "same", "messages": [
        {"role": "user", "content": f"hi {i}"}, {"role": "assistant", "content": "hello"}]}) + "\n" for i in range(2)))
    for source, preset, id_field, ids in ((humaneval, "humaneval", "uid", ["u0", "u1"]),
                                          (mmlu, "mmlu", "col6", ["m1", "m2"]),
                                          (chat, "chat", "conv", ["c0", "c1"])):
        code, out, err = run(capsys, "ingest", str(source), "-w", ws, "--name", preset, "--kind", "benchmark",
                             "--preset", preset, "--id-field", id_field)
        assert code == 0, err
        assert f"id={id_field}" in out
        rows = Workspace.open(ws).query(f"SELECT record_id, answer FROM records WHERE dataset = '{preset}' "
                                        "ORDER BY source_line")
        assert rows["record_id"].tolist() == ids
    assert rows["answer"].tolist() == ["hello", "hello"]
    assert Workspace.open(ws).query("SELECT answer FROM records WHERE dataset = 'mmlu' ORDER BY source_line")[
        "answer"].tolist() == ["b", "c"]
    # without a preset the id field goes with the detected mapping; an answer field still needs a prompt field
    code, out, _ = run(capsys, "ingest", str(humaneval), "-w", ws, "--name", "auto", "--kind", "benchmark",
                       "--id-field", "uid")
    assert code == 0 and "id=uid" in out
    code, _, err = run(capsys, "ingest", str(humaneval), "-w", ws, "--name", "x", "--kind", "benchmark",
                       "--answer-field", "canonical_solution")
    assert code == 2 and "--prompt-field" in err
    code, _, err = run(capsys, "ingest", str(humaneval), "-w", ws, "--name", "x", "--kind", "benchmark",
                       "--preset", "humaneval", "--answer-field", "uid")
    assert code == 2 and "--preset humaneval" in err and "--prompt-field" in err


SQL_TYPES = ("SELECT * FROM (VALUES ('a', 2, 1.5::DOUBLE, 1.25), ('b', NULL, NULL, NULL), ('c,\"q\"', 3, 2.0, 1.0)) "
             "t(name, n, x, d) ")


def test_sql_prints_integers_as_integers_and_writes_csv_or_json(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    ws = str(tmp_path / "ws")
    run(capsys, "init", ws)
    # sum() of integers is a HUGEINT, which a pandas frame held as a float (3.000)
    code, out, _ = run(capsys, "sql", "-w", ws, f"SELECT sum(n) AS total, count(*) AS rows FROM ({SQL_TYPES})")
    assert code == 0 and out.splitlines()[2].split() == ["5", "3"]
    code, out, _ = run(capsys, "sql", "-w", ws, SQL_TYPES + "ORDER BY name")
    assert code == 0 and [line.split()[1:] for line in out.splitlines()[2:]] == [
        ["2", "1.500", "1.25"], ["NULL", "NULL", "NULL"], ["3", "2.000", "1.00"]]

    code, out, err = run(capsys, "sql", "-w", ws, "--format", "csv", SQL_TYPES + "ORDER BY name")
    assert code == 0 and err == ""
    assert out == 'name,n,x,d\na,2,1.5,1.25\nb,,,\n"c,""q""",3,2.0,1.00\n'
    code, out, err = run(capsys, "sql", "-w", ws, "--format", "json", SQL_TYPES + "ORDER BY name")
    assert code == 0 and err == ""
    assert json.loads(out) == [{"name": "a", "n": 2, "x": 1.5, "d": 1.25},
                               {"name": "b", "n": None, "x": None, "d": None},
                               {"name": 'c,"q"', "n": 3, "x": 2.0, "d": 1.0}]
    assert '"n": 2,' in out and '"d": 1.25' in out  # numbers, not strings
    code, out, _ = run(capsys, "sql", "-w", ws, "--format", "json",
                       "SELECT TIMESTAMP '2024-01-02 03:04:05' AS t, [1, 2] AS l, 'nan'::DOUBLE AS nan")
    assert json.loads(out) == [{"t": "2024-01-02T03:04:05", "l": [1, 2], "nan": None}]
    # --limit cuts every format; csv and json say so on stderr, so stdout stays data
    code, out, err = run(capsys, "sql", "-w", ws, "--format", "csv", "--limit", "1", SQL_TYPES + "ORDER BY name")
    assert out == "name,n,x,d\na,2,1.5,1.25\n" and "2 more rows" in err
    code, out, err = run(capsys, "sql", "-w", ws, "--format", "json", "SELECT 1 AS a, 2 AS a")
    assert code == 2 and "two columns named a" in err


@pytest.mark.parametrize("container, published, code, said", [
    (True, "127.0.0.1", 0, "published on 127.0.0.1 only"),
    (True, "::1", 0, "published on ::1 only"),
    (True, None, 2, "-e SYNTHSCOPE_PUBLISHED_ON=127.0.0.1"),  # the container's own hint: what to add
    (True, "0.0.0.0", 2, "without sign-in"),
    (True, "192.168.1.5", 2, "without sign-in"),
    (True, "127.0.0.1:8501", 2, "address only"),
    (False, "127.0.0.1", 2, "not a container"),  # outside a container the variable opens nothing
])
def test_serve_in_a_container_binds_everywhere_only_when_told_its_port_is_published_on_loopback(
        served: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        container: bool, published: str | None, code: int, said: str) -> None:
    from synthscope.cli import dashboard

    marker = tmp_path / ".dockerenv"
    if container:
        marker.touch()
    monkeypatch.setattr(dashboard, "CONTAINER_MARKERS", (marker,))
    if published is None:
        monkeypatch.delenv(dashboard.PUBLISHED_ENV, raising=False)
    else:
        monkeypatch.setenv(dashboard.PUBLISHED_ENV, published)
    result, out, err = run(capsys, "serve", served["ws"], "--secrets", served["secrets"], "--host", "0.0.0.0")
    assert result == code and said in out + err
    assert len(served["calls"]) == (1 if code == 0 else 0)
    # on loopback, as without a container, the variable changes nothing
    assert run(capsys, "serve", served["ws"], "--secrets", served["secrets"])[0] == 0
