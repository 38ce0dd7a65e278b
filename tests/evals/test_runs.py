"""Runs: a model and its training manifest, stored once, listed by the `runs` view and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthscope import cli
from synthscope.core.workspace import Workspace, WorkspaceError
from synthscope.evals.runs import add_run, get_run, list_runs


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    data = tmp_path / "synth.jsonl"
    data.write_text(json.dumps({"instruction": "say hi", "output": "hi"}) + "\n", encoding="utf-8")
    from synthscope.datasets.ingest import ingest

    ingest(ws, data, name="synth", kind="synthetic")
    ingest(ws, data, name="synth", kind="synthetic")  # v2: the newest
    return ws


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "models" / "my-ft-model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    return folder


def test_add_run_writes_a_manifest_and_the_runs_view(ws: Workspace, model_dir: Path) -> None:
    run = add_run(ws, str(model_dir), run_id="ft-1", base_model="HuggingFaceTB/SmolLM2-135M",
                  datasets=["synth", "synth@v1", "elsewhere@2024"], synthetic_share=0.25, tags=["sft", "sft", "a"],
                  date="2025-03-01", notes="first try")
    assert run["warnings"] == ["dataset 'elsewhere' is not in this workspace; recorded as given"]
    stored = json.loads((ws.runs_dir / "ft-1" / "manifest.json").read_text())
    assert stored["model"] == str(model_dir.resolve()) and stored["model_source"] == "local"
    assert stored["datasets"] == [{"name": "synth", "version": "v2"}, {"name": "synth", "version": "v1"},
                                  {"name": "elsewhere", "version": "2024"}]  # pinned where the workspace knows it
    assert stored["tags"] == ["sft", "a"] and stored["date"] == "2025-03-01" and "warnings" not in stored
    assert get_run(ws, "ft-1") == stored and [m["run_id"] for m in list_runs(ws)] == ["ft-1"]
    assert list((ws.root / "tmp").iterdir()) == []

    df = ws.query("SELECT run_id, model_source, base_model, synthetic_share, tags, date, "
                  "datasets[1].version AS first_version, len(datasets) AS n FROM runs")
    row = df.iloc[0]
    assert (row.run_id, row.model_source, row.base_model) == ("ft-1", "local", "HuggingFaceTB/SmolLM2-135M")
    assert row.synthetic_share == 0.25 and list(row.tags) == ["sft", "a"] and row.first_version == "v2" and row.n == 3


def test_hub_ids_default_ids_and_refusals(ws: Workspace, model_dir: Path, tmp_path: Path) -> None:
    hub = add_run(ws, "EleutherAI/pythia-14m")
    assert hub["model_source"] == "hub" and hub["run_id"] == "pythia-14m"
    assert add_run(ws, "EleutherAI/pythia-14m")["run_id"] == "pythia-14m-2"  # default ids never collide
    assert add_run(ws, str(model_dir))["run_id"] == "my-ft-model"

    with pytest.raises(WorkspaceError, match="already exists"):
        add_run(ws, str(model_dir), run_id="my-ft-model")
    with pytest.raises(WorkspaceError, match="neither an existing folder nor a hub id"):
        add_run(ws, str(tmp_path / "no" / "such" / "model"))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(WorkspaceError, match="is a file"):
        add_run(ws, str(tmp_path / "weights.bin"))
    with pytest.raises(WorkspaceError, match=r"between 0 and 1 \(30% is 0.3\)"):
        add_run(ws, str(model_dir), run_id="x", synthetic_share=30)
    with pytest.raises(WorkspaceError, match="YYYY-MM-DD"):
        add_run(ws, str(model_dir), run_id="x", date="March 1st")
    with pytest.raises(WorkspaceError, match="invalid run id"):
        add_run(ws, str(model_dir), run_id="../escape")
    with pytest.raises(WorkspaceError, match="has no version 'v9'"):
        add_run(ws, str(model_dir), run_id="x", datasets=["synth@v9"])
    with pytest.raises(WorkspaceError, match="runs: my-ft-model, pythia-14m, pythia-14m-2"):
        get_run(ws, "nope")
    assert not (ws.runs_dir / "x").exists() and list((ws.root / "tmp").iterdir()) == []


def test_empty_workspace_has_typed_run_and_eval_views(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    for view, column in (("runs", "synthetic_share"), ("evals", "metrics"), ("eval_samples", "loglikelihoods")):
        assert column in ws.query(f"SELECT * FROM {view}").columns
    with pytest.raises(WorkspaceError, match="record one with `synthscope run add`"):
        get_run(ws, "nope")


def test_cli_run_add_and_list(ws: Workspace, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = str(ws.root)
    assert cli.main(["run", "list", "-w", w]) == 0
    assert "no runs yet" in capsys.readouterr().out
    code = cli.main(["run", "add", "-w", w, "--model", str(model_dir), "--id", "ft", "--dataset", "synth",
                     "--synthetic-share", "0.5", "--tag", "sft", "--date", "2025-01-31"])
    assert code == 0 and "recorded run ft (local model" in capsys.readouterr().out
    assert cli.main(["run", "list", "-w", w]) == 0
    line = capsys.readouterr().out.splitlines()[2].split()
    assert line == ["ft", str(model_dir.resolve()), "-", "synth@v2", "0.50", "sft", "2025-01-31"]
    assert cli.main(["run", "add", "-w", w, "--model", str(model_dir), "--id", "ft"]) == 2
    assert "already exists" in capsys.readouterr().err
