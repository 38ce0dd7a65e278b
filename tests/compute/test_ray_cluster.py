"""A Ray cluster of several nodes reads the records from object storage, not from the driver's disk.

The cluster is Ray's own multi-process local cluster (a head node and a worker
node, each its own raylet and temp folder, one CPU each), started before the S3
variables are set: the workers know the loopback S3 server (moto) only through
the configuration the driver sends with the job, as `synthscope push` uses it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ray import cloudpickle
from test_engine import _corpus, _scan

from synthscope.compute.engine import LocalEngine, RayEngine, RowGroup, engine_from, read_table, row_groups
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError
from synthscope.datasets import ingest as ingest_module
from synthscope.datasets.ingest import ingest
from synthscope.team.push import push

URL = "s3://team/pushed"


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """Two Ray nodes on this machine; yields the head's address."""
    import ray
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # as RayEngine does: nothing sent, no metrics asked for
    base = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "temp_dir": str(base / "head")})
    nodes.add_node(num_cpus=1, temp_dir=str(base / "worker"))
    nodes.wait_for_nodes()
    yield nodes.address
    ray.shutdown()
    nodes.shutdown()
    shutil.rmtree(base, ignore_errors=True)


def _where(task: RowGroup) -> dict[str, Any]:
    """What a worker was handed, where it ran, and the ids it read."""
    import ray

    return {"path": task.path, "node": ray.get_runtime_context().get_node_id(),
            "ids": read_table(task, ["record_id"]).column("record_id").to_pylist()}


def test_a_cluster_reading_from_s3_gives_the_local_verdicts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster: str, s3: object) -> None:
    monkeypatch.setattr(ingest_module, "ROW_GROUP_ROWS", 7)  # 9 row groups: 9 tasks per stage
    ws = _corpus(tmp_path / "local")
    local_verdicts, local_evidence = _scan(ws, LocalEngine(1))

    pushed = _corpus(tmp_path / "pushed")  # its own indexes: the cluster signs and embeds everything itself
    push(pushed, URL)
    engine = engine_from("ray", cluster, inputs=URL, root=pushed.root)
    assert isinstance(engine, RayEngine)

    tasks = row_groups(pushed.records_path(pushed.resolve(DatasetRef("syn"))))
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    seen = [result for _, result in engine.map(_where, tasks)]
    assert all(s["path"].startswith(f"{URL}/datasets/") for s in seen)  # no worker was handed a local path
    assert len({s["node"] for s in seen}) == 2  # both nodes read
    here = [i for t in tasks for i in read_table(t, ["record_id"]).column("record_id").to_pylist()]
    assert sorted(i for s in seen for i in s["ids"]) == sorted(here)

    verdicts, evidence = _scan(pushed, engine)
    pd.testing.assert_frame_equal(local_verdicts, verdicts)
    pd.testing.assert_frame_equal(local_evidence, evidence)
    assert (pushed.indexes_dir / "faiss").is_dir() and (pushed.indexes_dir / "minhash").is_dir()

    # A dataset added after the push is not where the workers would look: a clear error, before any work.
    path = tmp_path / "late.jsonl"
    path.write_text('{"prompt": "a record added after the push", "answer": "x"}\n', encoding="utf-8")
    ingest(pushed, path, name="late", kind="synthetic")
    late = row_groups(pushed.records_path(pushed.resolve(DatasetRef("late"))))
    with pytest.raises(WorkspaceError, match="synthscope push"):
        next(engine.map(_where, late))


def test_inputs_need_the_ray_engine_and_a_local_workspace(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--engine ray"):
        engine_from("local", inputs=URL)
    with pytest.raises(ValueError, match="local workspace"):
        engine_from("ray", inputs=URL)
    ws = Workspace.init(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="s3://bucket/prefix"):
        engine_from("ray", inputs="/not/a/url", root=ws.root)
