"""lm-eval run and import, end to end with real lm-eval on a tiny random model, offline, on the CPU.

One module fixture builds the model, a local multiple-choice task and a
generate_until task over the same questions, ingests the multiple-choice task as a
benchmark, records a run and evaluates it (as a job, in process); tests that write
work on a copy of that workspace.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from synthscope import cli
from synthscope.compute import jobs
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError, atomic_write_json
from synthscope.evals.lmeval import (
    REQUEST_METHODS,
    EvalError,
    _bars_follow_tqdm_disable,
    doc_hash,
    find_outputs,
    import_folder,
    parse_sample,
    read_errors,
)
from synthscope.evals.runs import add_run
from synthscope.tasks import EvalTask, run_job
from tests.fixtures.tiny_lm import make_gen_task, make_mc_task, make_tiny_lm

MC, GEN = "synthscope_tiny_mc", "synthscope_tiny_gen"
LIMIT = 8


@dataclass
class Evaluated:
    root: Path  # the evaluated workspace; copy it before writing
    tasks: Path  # --include-path
    data: Path
    model: Path
    job_id: str
    env_before: dict[str, str | None]
    env_after: dict[str, str | None]


def _env() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in ("HF_HOME", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Evaluated:
    base = tmp_path_factory.mktemp("lmeval")
    model = make_tiny_lm(base / "tiny-gpt2")
    tasks, data = make_mc_task(base / "tasks", n=20, task=MC)
    make_gen_task(tasks, data, task=GEN)
    root = base / "ws"
    assert cli.main(["init", str(root)]) == 0
    assert cli.main(["ingest", MC, "-w", str(root), "--format", "lm-eval", "--include-path", str(tasks),
                     "--name", "tinymc", "--kind", "benchmark"]) == 0
    assert cli.main(["run", "add", "-w", str(root), "--model", str(model), "--id", "tiny", "--synthetic-share",
                     "0.5"]) == 0
    ws = Workspace.open(root)
    job_id = ws.new_id()
    (ws.jobs_dir / job_id).mkdir(parents=True)
    spec = EvalTask("tiny", [MC, GEN], str(tasks), LIMIT, "cpu", 8)
    atomic_write_json(ws.jobs_dir / job_id / "job.json", {"job_id": job_id, "kind": "eval", "params": asdict(spec)})
    jobs._write(ws, jobs.JobStatus(job_id, "eval"))  # what jobs.start does before it spawns the runner
    before = _env()
    assert run_job(ws, job_id) == 0  # the runner's work, in this process
    return Evaluated(root, tasks, data, model, job_id, before, _env())


@pytest.fixture
def ws(evaluated: Evaluated, tmp_path: Path) -> Workspace:
    shutil.copytree(evaluated.root, tmp_path / "ws")
    return Workspace.open(tmp_path / "ws")


def _eval_of(ws: Workspace, task: str) -> dict:
    (manifest,) = [json.loads(p.read_text()) for p in ws.evals_dir.glob("*/manifest.json")
                   if json.loads(p.read_text())["task"] == task]
    return manifest


def _output_dir(ws: Workspace) -> Path:
    (folder,) = list(ws.lmeval_dir.iterdir())
    return folder


# -- eval run ----------------------------------------------------------------------------


def test_eval_run_stores_one_typed_row_per_doc(evaluated: Evaluated) -> None:
    ws = Workspace.open(evaluated.root)
    df = ws.query("SELECT * FROM eval_samples WHERE task = ? ORDER BY doc_id", [MC])
    assert df["doc_id"].tolist() == list(range(LIMIT)) and df["run_id"].eq("tiny").all()
    assert df["filter"].eq("none").all() and df["output_type"].eq("multiple_choice").all()
    for lls, choices in zip(df["loglikelihoods"], df["choices"]):
        assert len(lls) == 4 and all(isinstance(x, float) and x < 0 for x in lls)  # floats, not strings
        assert len(choices) == 4
    assert set(df["acc"]) <= {0.0, 1.0} and set(df["acc_norm"]) <= {0.0, 1.0}
    assert df["target_index"].eq(0).all()
    # acc is whether the highest log-likelihood is the right choice; acc_norm the same per character
    assert (df["acc"] == (df["chosen"] == df["target_index"]).astype(float)).all()
    assert (df["acc_norm"] == (df["chosen_norm"] == df["target_index"]).astype(float)).all()
    assert df["prompt_hash"].str.len().eq(64).all() and df["generated"].isna().all()
    assert df["metrics"].map(lambda m: dict(m)["acc"]).tolist() == df["acc"].tolist()

    manifest = _eval_of(ws, MC)
    assert manifest["run_id"] == "tiny" and manifest["model"] == str(evaluated.model)
    assert manifest["lm_eval_version"] and manifest["samples"] == LIMIT and manifest["errors"] == 0
    assert manifest["metrics"]["acc,none"] == pytest.approx(df["acc"].mean())
    assert manifest["n_samples"] == {"original": 20, "effective": LIMIT}

    gen = ws.query("SELECT * FROM eval_samples WHERE task = ? ORDER BY doc_id", [GEN])
    assert len(gen) == LIMIT and gen["generated"].map(lambda g: isinstance(g, str)).all()
    assert set(gen["exact_match"]) <= {0.0, 1.0} and gen["loglikelihoods"].isna().all()
    assert gen["target"].tolist()[:1] == [json.loads(evaluated.data.read_text().splitlines()[0])["choices"][0]]


def test_eval_samples_join_benchmark_records_with_verified_doc_hash(evaluated: Evaluated) -> None:
    ws = Workspace.open(evaluated.root)
    joined = ws.query(
        "SELECT s.doc_id, s.doc_hash, r.doc_hash AS record_hash, r.raw, r.prompt FROM eval_samples s "
        "JOIN records r ON r.dataset = s.benchmark AND r.version = s.benchmark_version AND r.record_id = s.record_id "
        "WHERE s.task = ? ORDER BY s.doc_id", [MC])
    assert joined["doc_id"].tolist() == list(range(LIMIT))
    assert (joined["doc_hash"] == joined["record_hash"]).all()
    # the hash is lm-eval's of the doc, which ingest recomputes the same way
    assert [doc_hash(json.loads(raw)) for raw in joined["raw"]] == joined["doc_hash"].tolist()
    assert joined["prompt"].iloc[0].startswith("Question: What is")
    summary = ws.query("SELECT benchmark, benchmark_version, linked, hash_mismatches, missing_docs FROM evals "
                       "WHERE task = ?", [MC]).iloc[0].tolist()
    assert summary == ["tinymc", "v1", LIMIT, 0, 0]
    # the generate_until task has no benchmark in the workspace: not linked, and the eval says how to link it
    gen = _eval_of(ws, GEN)
    assert gen["benchmark"] is None and "--format lm-eval" in gen["link_note"]
    assert ws.query("SELECT count(*) AS n FROM eval_samples WHERE task = ? AND record_id IS NULL "
                    "AND doc_hash_ok IS NULL", [GEN])["n"][0] == LIMIT


def test_eval_run_is_a_job_offline_and_leaves_lm_eval_output_in_the_workspace(evaluated: Evaluated) -> None:
    ws = Workspace.open(evaluated.root)
    status = jobs.status(ws, evaluated.job_id)
    assert status.state == jobs.SUCCEEDED and status.done == status.total == 4
    assert sorted(status.result["eval_ids"]) == sorted(m.name for m in ws.evals_dir.iterdir())
    out = Path(status.result["output"])
    assert out.parent == ws.lmeval_dir and list((ws.root / "tmp").iterdir()) == []
    assert {o.task for o in find_outputs(out)} == {MC, GEN}
    assert (ws.indexes_dir / "hf" / "datasets").is_dir()  # the eval's HF caches stay in the workspace
    assert evaluated.env_after == evaluated.env_before  # and the environment is put back


def test_lm_eval_logs_numbers_as_strings_and_import_casts_them(evaluated: Evaluated) -> None:
    out = find_outputs(_output_dir(Workspace.open(evaluated.root)))
    (mc,) = [o for o in out if o.task == MC]
    first = json.loads(mc.samples_path.read_text().splitlines()[0])
    assert isinstance(first["filtered_resps"][0][0], str) and first["filtered_resps"][0][1] in ("True", "False")
    row = parse_sample({**first, "acc": ["1.0"], "acc_norm": "False"}, "multiple_choice", ["acc", "acc_norm"])
    assert row["acc"] == 1.0 and row["acc_norm"] == 0.0
    assert row["loglikelihoods"] == [float(x) for x, _ in first["filtered_resps"]]
    assert row["is_greedy"] == [g == "True" for _, g in first["filtered_resps"]]
    nested = parse_sample({**first, "filtered_resps": None}, "multiple_choice", [])  # falls back to resps
    assert nested["loglikelihoods"] == row["loglikelihoods"]


def test_eval_run_refuses_unknown_tasks_and_writes_nothing(ws: Workspace, evaluated: Evaluated,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    before = sorted(p.name for p in ws.evals_dir.iterdir())
    code = cli.main(["eval", "run", "-w", str(ws.root), "--run", "tiny", "--tasks", "no_such_task_xyz",
                     "--include-path", str(evaluated.tasks), "--device", "cpu"])
    assert code == 2 and "unknown lm-eval task(s): no_such_task_xyz" in capsys.readouterr().err
    assert cli.main(["eval", "run", "-w", str(ws.root), "--run", "nope", "--tasks", MC]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
    assert sorted(p.name for p in ws.evals_dir.iterdir()) == before and len(list(ws.lmeval_dir.iterdir())) == 1


# -- eval import ---------------------------------------------------------------------------


def test_reimport_returns_the_same_eval_and_another_run_gets_a_new_one(ws: Workspace, evaluated: Evaluated,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = _output_dir(ws)
    existing = _eval_of(ws, MC)["eval_id"]
    code = cli.main(["eval", "import", str(out), "-w", str(ws.root), "--run", "tiny", "--task", MC])
    assert code == 0 and "already imported" in capsys.readouterr().out
    assert len(list(ws.evals_dir.iterdir())) == 2
    (again,) = import_folder(ws, out, "tiny", tasks=[MC])
    assert (again.eval_id, again.created, again.linked) == (existing, False, LIMIT)

    add_run(ws, str(evaluated.model), run_id="other")
    (new,) = import_folder(ws, out, "other", tasks=[MC])
    assert new.created and new.eval_id != existing and new.linked == LIMIT
    assert ws.query("SELECT count(DISTINCT eval_id) AS n FROM eval_samples WHERE task = ?", [MC])["n"][0] == 2


def test_corrupted_sample_lines_are_reported_and_valid_rows_load(ws: Workspace, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(_output_dir(ws), folder)
    (mc,) = [o for o in find_outputs(folder) if o.task == MC]
    lines = mc.samples_path.read_text().splitlines()
    lines[2] = lines[2][: len(lines[2]) // 2]  # truncated mid-write
    bad = json.loads(lines[4])
    bad["filtered_resps"][1][0] = "nan-ish"
    lines[4] = json.dumps(bad)
    lines.append(lines[0])  # the same doc twice
    mc.samples_path.write_text("\n".join(lines) + "\n")

    code = cli.main(["eval", "import", str(folder), "-w", str(ws.root), "--run", "tiny", "--task", MC])
    out, err = capsys.readouterr()
    assert code == 0 and "3 sample lines were not imported" in err
    assert f"{mc.samples_path}:3: malformed JSON" in err
    assert f"{mc.samples_path}:5: filtered_resps[1]: log-likelihood 'nan-ish' is not a number" in err
    assert f"{mc.samples_path}:{LIMIT + 1}: doc_id 0 (filter none) again; first at line 1" in err
    manifest = max((json.loads(p.read_text()) for p in ws.evals_dir.glob("*/manifest.json")),
                   key=lambda m: m["eval_id"])
    assert manifest["samples"] == LIMIT - 2 and manifest["errors"] == 3 and manifest["linked"] == LIMIT - 2
    assert [e.line for e in read_errors(ws, manifest["eval_id"])] == [3, 5, LIMIT + 1]
    loaded = ws.query("SELECT doc_id FROM eval_samples WHERE eval_id = ? ORDER BY doc_id", [manifest["eval_id"]])
    assert loaded["doc_id"].tolist() == [0, 1, 3, 5, 6, 7]


def test_doc_hash_mismatch_and_missing_docs_are_reported_not_joined(ws: Workspace, evaluated: Evaluated,
                                                                     tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # Another version of the benchmark: docs 2 and 5 edited, and only 7 docs.
    rows = [json.loads(line) for line in evaluated.data.read_text().splitlines()][:7]
    rows[2]["question"] += " Think."
    rows[5]["choices"][1] = "99"
    tasks, data = make_mc_task(tmp_path / "tasks_v2", n=0, task=MC)
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["ingest", MC, "-w", str(ws.root), "--format", "lm-eval", "--include-path", str(tasks),
                     "--name", "tinymc", "--kind", "benchmark"]) == 0
    capsys.readouterr()

    add_run(ws, str(evaluated.model), run_id="other")
    code = cli.main(["eval", "import", str(_output_dir(ws)), "-w", str(ws.root), "--run", "other", "--task", MC,
                     "--benchmark", "tinymc@v2"])
    err = capsys.readouterr().err
    assert code == 0
    assert f"doc_hash differs from tinymc@v2 for 2 of {LIMIT} samples (doc_ids 2, 5)" in err
    assert "1 samples have a doc_id that tinymc@v2 does not have (doc_ids 7)" in err
    df = ws.query("SELECT doc_id, record_id, doc_hash_ok FROM eval_samples WHERE run_id = 'other' ORDER BY doc_id")
    assert df.loc[~df["doc_hash_ok"], "doc_id"].tolist() == [2, 5, 7] and df["record_id"].isna().sum() == 3
    joined = ws.query("SELECT count(*) AS n FROM eval_samples s JOIN records r ON r.dataset = s.benchmark "
                      "AND r.version = s.benchmark_version AND r.record_id = s.record_id WHERE s.run_id = 'other'")
    assert joined["n"][0] == LIMIT - 3
    (m,) = [json.loads(p.read_text()) for p in ws.evals_dir.glob("*/manifest.json")
            if json.loads(p.read_text())["run_id"] == "other"]
    assert (m["hash_mismatches"], m["mismatch_doc_ids"], m["missing_docs"]) == (2, [2, 5], 1)
    # without --benchmark the newest version ingested from the task is picked, with the same check
    add_run(ws, str(evaluated.model), run_id="third")
    (auto,) = import_folder(ws, _output_dir(ws), "third", tasks=[MC])
    assert auto.benchmark == DatasetRef("tinymc", "v2") and (auto.hash_mismatches, auto.missing_docs) == (2, 1)


def test_import_refuses_folders_that_are_not_lm_eval_output(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(EvalError, match="is not a folder"):
        import_folder(ws, tmp_path / "nowhere", "tiny")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvalError, match=r"no results_\*\.json"):
        import_folder(ws, tmp_path / "empty", "tiny")
    folder = tmp_path / "no_samples"
    shutil.copytree(_output_dir(ws), folder)
    for path in folder.rglob("samples_*.jsonl"):
        path.unlink()
    with pytest.raises(EvalError, match="--log_samples"):
        import_folder(ws, folder, "tiny")
    with pytest.raises(WorkspaceError, match="no run 'ghost'"):
        import_folder(ws, _output_dir(ws), "ghost")
    with pytest.raises(EvalError, match="has no samples for nope"):
        import_folder(ws, _output_dir(ws), "tiny", tasks=["nope"])
    with pytest.raises(WorkspaceError, match="no dataset named 'nobench'"):
        import_folder(ws, _output_dir(ws), "tiny", [DatasetRef("nobench")])
    assert len(list(ws.evals_dir.iterdir())) == 2 and list((ws.root / "tmp").iterdir()) == []


def test_lm_eval_request_bars_follow_tqdm_disable(monkeypatch: pytest.MonkeyPatch) -> None:
    """lm-eval passes ``disable`` to its request bars itself; the demo's TQDM_DISABLE must still reach them."""
    class FakeLM:
        def loglikelihood(self, requests: list[object], disable_tqdm: bool = False) -> bool:
            return disable_tqdm

        loglikelihood_rolling = generate_until = loglikelihood

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert _bars_follow_tqdm_disable(FakeLM()).loglikelihood([]) is False  # `eval run`: the bars are its progress
    monkeypatch.setenv("TQDM_DISABLE", "1")
    lm = _bars_follow_tqdm_disable(FakeLM())
    assert all(getattr(lm, name)([]) is True for name in REQUEST_METHODS)
