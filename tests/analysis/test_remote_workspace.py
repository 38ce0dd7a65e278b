"""A workspace pushed to object storage and read from it: moto's S3 server on loopback stands in for S3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pandas as pd
import pytest
from moto.server import ThreadedMotoServer

from analysis import remote
from analysis.contamination.ngram import NgramConfig
from analysis.contamination.scan import run_scan
from analysis.ingest import ingest
from analysis.workspace import DatasetRef, Workspace

BUCKET = "team"
APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
VIEWS = ("datasets", "records", "scans", "verdicts", "evidence", "contamination_grid")
TOPICS = ["square numbers", "prime factors", "vowel counts", "leap years", "palindromes", "binary digits",
          "matrix traces", "word lengths"]
PROBLEMS = [f"Write a careful program about {t} that reads the input, computes the {t} and prints the {t} result."
            for t in TOPICS]


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3 server, in this process, on a free loopback port; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A fresh bucket, and the standard AWS variables pointing every client at the server."""
    for key, value in {"AWS_ACCESS_KEY_ID": "team-key", "AWS_SECRET_ACCESS_KEY": "team-secret",
                       "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_server}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


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
    report = remote.push(local_ws, f"s3://{BUCKET}/shared")
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
