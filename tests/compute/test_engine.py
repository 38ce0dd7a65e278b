"""The Ray engine gives the same verdicts and evidence as the local one, on a corpus of several row groups."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthscope.compute.engine import LocalEngine, RayEngine, engine_from
from synthscope.contamination.scan import config_from, run_scan
from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.datasets import ingest as ingest_module
from synthscope.datasets.ingest import ingest

WORDS = ("river stone market winter lantern copper garden signal harbor meadow orchard thunder velvet canyon "
         "island mirror ladder candle forest engine silver marble planet rocket violin tunnel desert anchor").split()


@pytest.fixture(scope="module")
def ray_engine() -> Iterator[RayEngine]:
    import ray

    engine = RayEngine(num_cpus=2)
    yield engine
    ray.shutdown()


def _sentence(rng: np.random.Generator, n: int) -> str:
    return " ".join(rng.choice(WORDS, n))


def _corpus(tmp_path: Path) -> Workspace:
    """30 benchmark items; 60 synthetic records: exact copies, copies with a few words changed, unrelated text."""
    rng = np.random.default_rng(7)
    items = [{"prompt": f"Question {i}: {_sentence(rng, 30)}?", "answer": _sentence(rng, 6)} for i in range(30)]
    records = []
    for item in items[:10]:  # verbatim
        records.append({"prompt": f"Rewrite this. {item['prompt']}", "answer": item["answer"]})
    for item in items[10:20]:  # near copies: every sixth word replaced
        words = item["prompt"].split()
        words[::6] = ["zebra"] * len(words[::6])
        records.append({"prompt": " ".join(words), "answer": item["answer"]})
    records += [{"prompt": _sentence(rng, 25), "answer": _sentence(rng, 5)} for _ in range(40)]
    rng.shuffle(records)
    ws = Workspace.init(tmp_path / "ws")
    for name, kind, rows in [("bench", "benchmark", items), ("syn", "synthetic", records)]:
        path = tmp_path / f"{name}.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
        ingest(ws, path, name=name, kind=kind)
    return ws


def _scan(ws: Workspace, engine: object) -> tuple[pd.DataFrame, pd.DataFrame]:
    summary = run_scan(ws, DatasetRef("bench"), [DatasetRef("syn")],
                       config_from(ws, {"stages": ["exact", "near_duplicate", "semantic"]}), engine=engine)
    folder = ws.scans_dir / summary.scan_id
    assert json.loads((folder / "manifest.json").read_text())["engine"] == engine.name  # type: ignore[attr-defined]
    verdicts = pd.read_parquet(folder / "verdicts.parquet").drop(columns="scan_id")
    evidence = pd.read_parquet(folder / "evidence.parquet").drop(columns="scan_id")
    return (verdicts.sort_values("item").reset_index(drop=True),
            evidence.sort_values(["item", "record_id"]).reset_index(drop=True))


def test_ray_and_local_engines_give_the_same_verdicts_and_evidence(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ray_engine: RayEngine) -> None:
    monkeypatch.setattr(ingest_module, "ROW_GROUP_ROWS", 7)  # 9 row groups: 9 tasks per stage
    local_ws = _corpus(tmp_path / "local")
    ray_ws = _corpus(tmp_path / "ray")  # its own indexes: the Ray run signs and embeds everything itself
    local_verdicts, local_evidence = _scan(local_ws, LocalEngine(2))
    ray_verdicts, ray_evidence = _scan(ray_ws, ray_engine)

    counts = local_verdicts["verdict"].value_counts()
    assert counts.get("exact", 0) >= 10 and counts.get("near_duplicate", 0) >= 5, counts  # the test can fail
    pd.testing.assert_frame_equal(local_verdicts, ray_verdicts)
    pd.testing.assert_frame_equal(local_evidence, ray_evidence)
    assert (ray_ws.indexes_dir / "faiss").is_dir() and (ray_ws.indexes_dir / "minhash").is_dir()


def test_engine_from_names_the_engines() -> None:
    assert engine_from("local", workers=3) == LocalEngine(3)
    assert engine_from("ray", "auto") == RayEngine("auto", None)
    assert engine_from("ray", workers=2) == RayEngine(None, 2)
    with pytest.raises(ValueError, match="--engine ray"):
        engine_from("local", "auto")
    with pytest.raises(ValueError, match="unknown engine"):
        engine_from("spark")


def _square_and_pid(task: int) -> tuple[int, int]:
    import os
    import time

    time.sleep(0.02)
    if task < 0:
        raise ValueError(f"task {task} is planted to fail")
    return task * task, os.getpid()


def test_the_local_engine_works_here_from_the_first_task_and_in_its_workers() -> None:
    import os

    results = dict(LocalEngine(2).map(_square_and_pid, range(60)))
    assert sorted(results) == list(range(60)) and all(square == t * t for t, (square, _) in results.items())
    pids = {pid for _, pid in results.values()}
    assert os.getpid() in pids and len(pids) == 2  # this process took tasks while the worker started and after
    assert results[0][1] == os.getpid()  # the first task never waits for a worker to start


def test_workers_come_from_a_fork_server_that_imported_what_they_need_beforehand(tmp_path: Path) -> None:
    """start_fork_server imports the modules once, in the server, before any map; workers inherit them."""
    import json
    import os
    import subprocess
    import sys

    script = ("import json, os; from synthscope.compute.engine import LocalEngine, start_fork_server; "
              "start_fork_server(['tests.fixtures.preloaded']); "
              "from tests.fixtures.engine_tasks import has_preloaded; "
              "print(json.dumps([os.getpid(), dict(LocalEngine(2).map(has_preloaded, range(8)))]))")
    env = {**os.environ, "SYNTHSCOPE_TEST_PRELOAD_MARK": str(tmp_path / "imported-by"),
           "SYNTHSCOPE_TEST_GATE": str(tmp_path / "a-worker-ran")}
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    caller, results = json.loads(done.stdout)
    by_process = {pid: preloaded for pid, preloaded in results.values()}
    assert by_process.pop(caller) is False  # the caller never imported it
    assert list(by_process.values()) == [True]  # its worker had it before its first task
    importers = (tmp_path / "imported-by").read_text().split()
    assert len(importers) == 1 and int(importers[0]) not in (caller, *by_process)  # once, by the server


def _wait_for(gate: str) -> bool:
    """Runs in a worker while it unpickles the task function: wait (at most 20 s) for ``gate`` to exist."""
    import time

    deadline = time.monotonic() + 20
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return Path(gate).exists()


class _Gate:
    def __init__(self, gate: Path) -> None:
        self.gate = gate

    def __reduce__(self) -> tuple:
        return _wait_for, (str(self.gate),)


class _GatedSquare:
    """A task function that a worker cannot finish reading until this process has done a task: its pickle
    holds a wait for the gate file, then 1 MB (more than a pipe holds, so a sender blocks meanwhile)."""

    def __init__(self, gate: Path) -> None:
        self.gate, self.waited, self.payload = gate, _Gate(gate), bytes(1 << 20)

    def __call__(self, task: int) -> tuple[int, int, object]:
        import os
        import time

        joined = self.gate.with_name("joined")
        if isinstance(self.waited, _Gate):  # this process's own copy: open the gate, then go slowly until a worker runs
            self.gate.touch()
            if not joined.exists():
                time.sleep(0.02)
        else:
            joined.touch()
        return task * task, os.getpid(), self.waited


@pytest.mark.parametrize(("rows_per_group", "starts"), [(1000, False), (7, True)])
def test_a_scan_starts_the_fork_server_only_when_a_worker_could_take_a_row_group(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows_per_group: int, starts: bool) -> None:
    """A dataset of one row group is scanned here alone: the server's imports would load the other core for nothing."""
    from synthscope.contamination import scan as scan_module

    monkeypatch.setattr(ingest_module, "ROW_GROUP_ROWS", rows_per_group)
    ws = _corpus(tmp_path)
    started: list[bool] = []
    monkeypatch.setattr(scan_module, "start_fork_server", lambda: started.append(True))
    summary = run_scan(ws, DatasetRef("bench"), [DatasetRef("syn")], config_from(ws, {"stages": ["exact"]}),
                       workers=2)
    assert started == [True] * starts
    assert summary.per_synthetic[0].records == 60 and summary.per_synthetic[0].contaminated >= 10  # either way


def test_the_fork_server_is_gone_before_the_semantic_stage_and_back_for_the_next_map(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its imports (about 140 MB) would otherwise sit in memory beside the model, at the scan's peak."""
    from multiprocessing import forkserver

    from synthscope.contamination import semantic

    monkeypatch.setattr(ingest_module, "ROW_GROUP_ROWS", 7)
    ws = _corpus(tmp_path)
    server_at_semantic: list[int | None] = []
    neighbours = semantic.semantic_neighbours

    def noting(*args: object, **kwargs: object) -> pd.DataFrame:
        server_at_semantic.append(forkserver._forkserver._forkserver_pid)
        return neighbours(*args, **kwargs)

    monkeypatch.setattr(semantic, "semantic_neighbours", noting)
    config = config_from(ws, {"stages": ["exact", "semantic"], "semantic.first_pass": "none"})
    summary = run_scan(ws, DatasetRef("bench"), [DatasetRef("syn")], config, workers=2)
    assert summary.per_synthetic[0].records == 60
    assert server_at_semantic == [None]
    results = dict(LocalEngine(2).map(_square_and_pid, range(20)))  # a later map starts it again
    assert all(square == t * t for t, (square, _) in results.items()) and len(results) == 20
    assert forkserver._forkserver._forkserver_pid is not None


def test_the_local_engine_does_not_wait_for_its_workers_to_read_the_task_function(tmp_path: Path) -> None:
    """Starting a worker means it unpickles the function (for a scan: importing pandas, pyarrow and the engine,
    about 0.6 s); this process works meanwhile instead of waiting for that to finish."""
    import os

    results = dict(LocalEngine(2).map(_GatedSquare(tmp_path / "gate"), range(1000)))
    assert sorted(results) == list(range(1000)) and all(square == t * t for t, (square, _, _) in results.items())
    in_worker = [waited for square, pid, waited in results.values() if pid != os.getpid()]
    assert in_worker and all(w is True for w in in_worker)  # the gate was open when the worker read the function


@pytest.mark.parametrize("failing", [0, 59])  # taken here first / handed to the worker first
def test_the_local_engine_raises_a_tasks_error_wherever_it_ran(failing: int) -> None:
    tasks = [(-1 if t == failing else t) for t in range(60)]
    with pytest.raises(ValueError, match="planted to fail"):
        list(LocalEngine(2).map(_square_and_pid, tasks))


def test_read_records_keeps_the_asked_records_in_file_order_across_row_groups(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from synthscope.compute.engine import read_records

    path = tmp_path / "records.parquet"
    ids = [f"r{i:03d}" for i in range(100)]
    pq.write_table(pa.table({"record_id": ids, "prompt": [f"p{i}" for i in range(100)],
                             "answer": [f"a{i}" for i in range(100)]}), path, row_group_size=7)
    wanted = ["r099", "r003", "r050", "r003", "r051", "missing"]  # unordered, a repeat, one not in the file
    got = read_records(path, wanted, ["prompt", "record_id"])
    assert got.column_names == ["prompt", "record_id"]
    assert got.column("record_id").to_pylist() == ["r003", "r050", "r051", "r099"]
    assert got.column("prompt").to_pylist() == ["p3", "p50", "p51", "p99"]
    none = read_records(path, ["nope"], ["record_id", "answer"])
    assert none.num_rows == 0 and none.column_names == ["record_id", "answer"]
