"""A workspace pushed to object storage and read from it: moto's S3 server on loopback stands in for S3."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pandas as pd
import pytest

from synthscope import tasks
from synthscope.contamination.ngram import NgramConfig
from synthscope.contamination.scan import run_scan
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError
from synthscope.datasets.ingest import IngestError, ingest
from synthscope.team.push import LOCAL_ONLY, local_files, push

BUCKET = "team"  # the bucket conftest's `s3` fixture creates
VIEWS = ("datasets", "records", "scans", "verdicts", "evidence", "contamination_grid")
TOPICS = ["square numbers", "prime factors", "vowel counts", "leap years", "palindromes", "binary digits",
          "matrix traces", "word lengths"]
PROBLEMS = [f"Write a careful program about {t} that reads the input, computes the {t} and prints the {t} result."
            for t in TOPICS]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def local_ws(tmp_path: Path) -> Workspace:
    """One benchmark, one synthetic dataset copying half of it, one exact-stage scan."""
    ws = Workspace.init(tmp_path / "ws")
    bench = [{"question": q, "answer": str(i)} for i, q in enumerate(PROBLEMS)]
    synthetic = [{"instruction": q, "output": str(i)} for i, q in enumerate(PROBLEMS[:4])]
    synthetic += [{"instruction": f"Describe a sunny afternoon at the lake number {i}.", "output": "ok"}
                  for i in range(6)]
    ingest(ws, write_jsonl(tmp_path / "bench.jsonl", bench), name="bench", kind="benchmark")
    ingest(ws, write_jsonl(tmp_path / "syn.jsonl", synthetic), name="syn", kind="synthetic")
    run_scan(ws, DatasetRef("bench"), [DatasetRef("syn")], config=NgramConfig(ns=(8,)), workers=1)
    return ws


def rows(ws: Workspace, view: str) -> pd.DataFrame:
    """The view's rows in a stable order, file paths (which differ between copies) left out."""
    df = ws.query(f"SELECT * FROM {view}").drop(columns=["source"], errors="ignore")
    return df.sort_values(list(df.columns[:4])).reset_index(drop=True)


def test_pushed_workspace_reads_like_the_local_one(local_ws: Workspace, s3: object) -> None:
    report = push(local_ws, f"s3://{BUCKET}/shared")
    assert report.uploaded == report.files > 0
    shared = Workspace.open(f"s3://{BUCKET}/shared")
    assert shared.read_only and str(shared.root) == f"s3://{BUCKET}/shared"
    for view in VIEWS:
        expected = rows(local_ws, view)
        assert len(expected) > 0, view
        pd.testing.assert_frame_equal(rows(shared, view), expected, obj=view)
    assert rows(shared, "contamination_grid")["contaminated"].tolist() == [4]
    assert shared.manifests() == local_ws.manifests()
    assert shared.config() == local_ws.config()


def test_second_push_sends_only_new_artefacts_and_readers_see_them(local_ws: Workspace, s3: object,
                                                                   tmp_path: Path) -> None:
    push(local_ws, f"s3://{BUCKET}/shared")
    before = Workspace.open(f"s3://{BUCKET}/shared")
    ingest(local_ws, write_jsonl(tmp_path / "more.jsonl", [{"instruction": "Name three rivers.", "output": "x"}]),
           name="syn", kind="synthetic")
    report = push(local_ws, f"s3://{BUCKET}/shared")
    assert report.uploaded == 3  # the new version's records.parquet and manifest.json, and the settings file
    assert Workspace.open(f"s3://{BUCKET}/shared").versions("syn") == ["v1", "v2"]
    assert before.versions("syn") == ["v1"]  # an open workspace is a snapshot of the push it opened


def test_interrupted_push_leaves_readers_on_the_previous_push(local_ws: Workspace, s3: object, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    push(local_ws, f"s3://{BUCKET}/shared")
    expected = rows(Workspace.open(f"s3://{BUCKET}/shared"), "verdicts")
    run_scan(local_ws, DatasetRef("bench"), [DatasetRef("syn")], config=NgramConfig(ns=(8,)), workers=1)
    ingest(local_ws, write_jsonl(tmp_path / "more.jsonl", [{"instruction": "Name three rivers.", "output": "x"}]),
           name="syn", kind="synthetic")

    sent: list[str] = []

    def flaky_clients() -> tuple[boto3.Session, object]:
        """A session whose S3 client loses the network after two uploads."""
        session = boto3.Session()
        client = session.client("s3")
        upload = client.upload_file

        def fail_after_two(filename: str, bucket: str, key: str, **kwargs) -> None:
            if len(sent) == 2:
                raise ConnectionError("network gone")
            sent.append(key)
            upload(filename, bucket, key, **kwargs)

        client.upload_file = fail_after_two
        return session, client

    with monkeypatch.context() as patch, pytest.raises(ConnectionError):
        patch.setattr("synthscope.team.push.clients", flaky_clients)
        push(local_ws, f"s3://{BUCKET}/shared")
    assert len(sent) == 2  # part of the new scan or dataset version is on the server ...
    shared = Workspace.open(f"s3://{BUCKET}/shared")
    assert shared.versions("syn") == ["v1"]  # ... but readers see none of it
    assert len(shared.query("SELECT * FROM scans")) == 1
    pd.testing.assert_frame_equal(rows(shared, "verdicts"), expected)
    push(local_ws, f"s3://{BUCKET}/shared")  # the next push completes it
    assert len(Workspace.open(f"s3://{BUCKET}/shared").query("SELECT * FROM scans")) == 2


def test_shared_workspace_refuses_writes_with_a_clear_error(local_ws: Workspace, s3: object, tmp_path: Path) -> None:
    push(local_ws, f"s3://{BUCKET}/shared")
    shared = Workspace.open(f"s3://{BUCKET}/shared")
    with pytest.raises(IngestError, match="read-only workspace on object storage.*synthscope push"):
        ingest(shared, write_jsonl(tmp_path / "x.jsonl", [{"instruction": "a b c", "output": "d"}]),
               name="x", kind="synthetic")
    with pytest.raises(WorkspaceError, match="read-only"):
        tasks.start(shared, tasks.ScanTask(["bench"], ["syn"]))
    assert set(local_files(local_ws)) | {"index.json"} == {
        o["Key"].removeprefix("shared/") for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}


def test_opening_a_location_without_a_push_says_how_to_publish(s3: object) -> None:
    with pytest.raises(WorkspaceError, match="no published workspace.*synthscope push"):
        Workspace.open(f"s3://{BUCKET}/nothing-here")


def test_push_publishes_no_local_state_or_credentials(local_ws: Workspace, s3: object) -> None:
    jobs_dir = local_ws.jobs_dir / "some-job"
    jobs_dir.mkdir(parents=True)
    (jobs_dir / "status.json").write_text("{}")
    published = set(local_files(local_ws))
    assert published and not {p for p in published if p.split("/")[0] in LOCAL_ONLY}
    assert "catalog.duckdb" not in published
    push(local_ws, f"s3://{BUCKET}/shared")
    for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"]:
        assert b"team-secret" not in s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()



def test_dashboard_shows_the_shared_workspace_like_the_local_one(local_ws: Workspace, s3: object, open_app) -> None:
    push(local_ws, f"s3://{BUCKET}/shared")
    local = open_app(str(local_ws.root), "app_pages/contamination.py")
    shared = open_app(f"s3://{BUCKET}/shared", "app_pages/contamination.py")
    assert len(shared.dataframe) == len(local.dataframe) == 2  # the grid and the contaminated items
    for remote_table, local_table in zip(shared.dataframe, local.dataframe, strict=True):
        pd.testing.assert_frame_equal(remote_table.value, local_table.value)
    assert shared.dataframe[0].value["contaminated"].tolist() == [4]
    assert "read-only" in shared.sidebar.caption[0].value
    assert not [b for b in shared.button if b.label == "Start scan"]
    assert any("A scan writes to the workspace, and this one is read-only" in i.value for i in shared.info)
    assert [b for b in local.button if b.label == "Start scan"]


@pytest.mark.parametrize("page", ["app_pages/overview.py", "app_pages/datasets.py", "app_pages/calibration.py",
                                  "app_pages/quality.py", "app_pages/privacy.py", "app_pages/trends.py",
                                  "app_pages/generate.py", "app_pages/runs.py", "app_pages/compare.py"])
def test_every_page_renders_over_object_storage(local_ws: Workspace, s3: object, open_app, page: str) -> None:
    push(local_ws, f"s3://{BUCKET}/shared")
    open_app(f"s3://{BUCKET}/shared", page)  # no exception on the page


def test_cli_push_then_sql_over_the_url(local_ws: Workspace, s3: object, capsys: pytest.CaptureFixture) -> None:
    from synthscope.cli import main

    assert main(["push", str(local_ws.root), f"s3://{BUCKET}/cli"]) == 0
    assert f"serve it with `synthscope serve s3://{BUCKET}/cli`" in capsys.readouterr().out
    assert main(["sql", "-w", f"s3://{BUCKET}/cli", "SELECT count(*) AS n FROM verdicts"]) == 0
    assert "8" in capsys.readouterr().out
    assert main(["push", str(local_ws.root), "s3://no-such-bucket/cli"]) == 2
    assert "readers still see the previous push" in capsys.readouterr().err


def test_the_arrow_filesystem_follows_credentials_that_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ray scan can outlive temporary credentials: each read resolves them again, so it never reuses
    a filesystem built with expired ones, and while they hold it reuses the same one."""
    from types import SimpleNamespace

    from synthscope.core import storage

    issued = [("AKIA1", "secret1", "token1")]

    class Credentials:  # what boto3's refreshable credentials give: the current set, renewed near expiry
        def get_frozen_credentials(self) -> SimpleNamespace:
            key, secret, token = issued[-1]
            return SimpleNamespace(access_key=key, secret_key=secret, token=token)

    session = SimpleNamespace(get_credentials=Credentials)
    s3 = SimpleNamespace(meta=SimpleNamespace(endpoint_url="https://s3.eu-west-1.amazonaws.com",
                                              region_name="eu-west-1"))
    monkeypatch.setattr(storage, "clients", lambda: (session, s3))

    def options(filesystem: object) -> dict:
        return filesystem.__reduce__()[1][0]

    first = storage.arrow_filesystem()
    assert storage.arrow_filesystem() is first
    assert options(first)["access_key"] == "AKIA1" and options(first)["region"] == "eu-west-1"
    issued.append(("AKIA2", "secret2", "token2"))  # boto3 renewed them
    renewed = storage.arrow_filesystem()
    assert renewed is not first
    assert (options(renewed)["access_key"], options(renewed)["session_token"]) == ("AKIA2", "token2")
