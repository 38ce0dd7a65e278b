"""Library progress bars and load logs stay out of the command line's output; synthscope's own progress stays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from synthscope import cli
from synthscope.cli.quiet import QUIET_ENV, only_own_bars, quiet_libraries
from synthscope.core.workspace import Workspace
from synthscope.demo.state import read_state, write_state


def _environment_without_quiet_settings() -> dict[str, str]:
    """This environment less the variables the CLI sets (an in-process CLI test may have set them here)."""
    return {k: v for k, v in os.environ.items() if k not in {*QUIET_ENV, "TQDM_DISABLE"}}


def test_a_semantic_scan_prints_its_own_progress_and_no_library_bars(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws").root
    text = "write a python function number {} that sorts a list of integers in descending order and returns it"
    for name, kind in (("b", "benchmark"), ("s", "synthetic")):
        source = tmp_path / f"{name}.jsonl"
        source.write_text("".join(json.dumps({"question": text.format(i), "answer": "x"}) + "\n" for i in range(3)))
        cli.main(["ingest", str(source), "-w", str(ws), "--name", name, "--kind", kind])
    proc = subprocess.run([sys.executable, "-m", "synthscope.cli", "scan", "-w", str(ws), "--synthetic", "s",
                           "--benchmark", "b", "--stages", "exact", "semantic", "--workers", "1"],
                          capture_output=True, text=True, timeout=300, env=_environment_without_quiet_settings())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "embeddings: s@v1" in proc.stderr  # synthscope's own bar, which loaded the embedding model
    # and a bar per stage, in its own unit, finished, with the time it took (the ETA while it ran)
    assert "exact n-grams: s@v1: 100%" in proc.stderr and "3/3 rows" in proc.stderr
    assert "embeddings: s@v1: 100%" in proc.stderr and "3/3 records" in proc.stderr
    assert "Loading weights" not in proc.stderr and "LOAD REPORT" not in proc.stderr, proc.stderr[-3000:]
    assert "contaminated" in proc.stdout


def test_the_user_can_have_them_back_and_serve_leaves_the_dashboard_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in QUIET_ENV:  # set, then removed: the test's end restores whatever was there before
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("os.execve", lambda exe, argv, env: calls.append(env))
    assert cli.main(["serve", str(Workspace.init(tmp_path / "ws").root)]) == 0
    assert not set(QUIET_ENV) & set(calls[0]) and not set(QUIET_ENV) & set(os.environ)

    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")
    quiet_libraries()
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info" and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "0"
    assert os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] == "1"


def test_the_demo_draws_its_step_bars_and_no_lm_eval_bars(demo_ws: Path) -> None:
    """The demo's shortest step with lm-eval in it (evaluating both tiny models: under a minute), run again."""
    state = read_state(demo_ws)
    assert state is not None and "evaluations" in state.done
    state.done.remove("evaluations")
    write_state(demo_ws, state)
    proc = subprocess.run([sys.executable, "-m", "synthscope.cli", "demo", str(demo_ws), "--resume"],
                          capture_output=True, text=True, timeout=300, env=_environment_without_quiet_settings())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "evaluating both models with lm-eval" in proc.stderr and "tiny-candidate: lm-eval" in proc.stderr
    for chatter in ("Running loglikelihood requests", "Tokenizing inputs", "it/s]", "Loading weights"):
        assert chatter not in proc.stderr, proc.stderr[-3000:]
    assert "demo workspace at" in proc.stdout and read_state(demo_ws).complete  # type: ignore[union-attr]


def test_the_demo_leaves_a_users_tqdm_disable_alone_and_its_own_setting_behind(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    with only_own_bars() as hide_own:
        assert os.environ["TQDM_DISABLE"] == "1" and hide_own is False
    assert "TQDM_DISABLE" not in os.environ  # a test running the command line in its process gets it back bare
    monkeypatch.setenv("TQDM_DISABLE", "1")
    with only_own_bars() as hide_own:
        assert hide_own is True
    assert os.environ["TQDM_DISABLE"] == "1"
