"""The command line, end to end in the same process (and once as a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import cli


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
    # records, items, contaminated, share, then the items each stage decided
    assert _rows(out)["s@v1"] == ["2", "1", "1", "1.000", "1", "0", out.split("s@v1")[1].split()[6]]
    assert "most contaminated items:" in out and "dirty" in out
    assert "rows" in err  # the progress bar

    code, out, _ = run(capsys, "sql", "-w", ws, "SELECT synthetic, contaminated FROM contamination_grid")
    assert code == 0 and out.splitlines()[2].split() == ["s", "1"]


def _rows(out: str) -> dict[str, list[str]]:
    """The summary table of a scan: synthetic -> the other cells."""
    lines = out.split("most contaminated items:")[0].splitlines()
    return {line.split()[0]: line.split()[1:] for line in lines if "@" in line.split(" ")[0]}


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
    monkeypatch.setattr(cli.os, "execve", lambda exe, argv, env: calls.append((argv, env)))
    assert cli.main(["serve", str(demo_ws)]) == 0
    argv, env = calls[0]
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    assert env["SYNTHSCOPE_WORKSPACE"] == str(demo_ws.resolve())
    assert "http://127.0.0.1:8501" in capsys.readouterr().out
    assert cli.main(["serve", str(demo_ws), "--host", "0.0.0.0"]) == 2  # no sign-in: refused
    assert "anyone who can reach this machine" in capsys.readouterr().err
    assert len(calls) == 1


def test_console_script_runs(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "analysis.cli", "init", str(tmp_path / "w")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "workspace ready" in proc.stdout
