"""A scan: one benchmark version checked against one or more synthetic dataset versions.

Output, written once into ``scans/<scan_id>/``:

* ``verdicts.parquet`` — one row per benchmark item per synthetic dataset
  (:data:`analysis.schemas.VERDICTS`);
* ``evidence.parquet`` — each item's top matching synthetic records with their
  scores and matched token spans (:data:`analysis.schemas.EVIDENCE`); record
  spans index the tokens of :func:`analysis.text.record_text`;
* ``manifest.json`` — what was scanned, with which settings, how long it took.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis import schemas
from analysis.contamination.ngram import BatchResult, BenchmarkIndex, ExactMatches, NgramConfig, scan_records
from analysis.engine import RowGroup, map_local, read_table, row_groups
from analysis.workspace import DatasetRef, Workspace, atomic_write_json, utc_now

Progress = Callable[[int, int, str], None]


def config_from(ws: Workspace, overrides: Mapping[str, Any] | None = None) -> NgramConfig:
    """The workspace's ``[contamination.ngram]`` settings, then ``overrides`` (non-None values)."""
    settings = dict(ws.config().get("contamination", {}).get("ngram", {}))
    settings.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if "ns" in settings:
        settings["ns"] = tuple(int(n) for n in settings["ns"])
    known = set(NgramConfig.__dataclass_fields__)
    unknown = set(settings) - known
    if unknown:
        raise ValueError(f"unknown [contamination.ngram] settings: {', '.join(sorted(unknown))}")
    return NgramConfig(**settings)


@dataclass
class SyntheticSummary:
    synthetic: str
    records: int
    items: int
    contaminated: int
    dirty: int
    partial: int
    seconds: float


@dataclass
class ScanSummary:
    scan_id: str
    benchmark: str
    per_synthetic: list[SyntheticSummary] = field(default_factory=list)


def _scan_row_group(task: RowGroup, index: BenchmarkIndex, top_k: int) -> BatchResult:
    table = read_table(task, ["record_id", "prompt", "answer"])
    return scan_records(index, table.column("prompt"), table.column("answer"),
                        table.column("record_id").to_pylist(), top_k)


def run_scan(ws: Workspace, benchmark: DatasetRef, synthetics: list[DatasetRef],
             config: NgramConfig | None = None, workers: int | None = None,
             progress: Progress | None = None) -> ScanSummary:
    """Run the exact n-gram stage and write the scan's artefacts; returns the summary."""
    config = config or config_from(ws)
    benchmark = ws.resolve(benchmark)
    synthetics = [ws.resolve(s) for s in synthetics]
    if not synthetics:
        raise ValueError("a scan needs at least one synthetic dataset")
    report = progress or (lambda done, total, message: None)
    started = time.perf_counter()

    bench = pq.read_table(ws.records_path(benchmark), columns=["record_id", "prompt", "answer"])
    item_ids = bench.column("record_id").to_pylist()
    report(0, 1, f"indexing {len(item_ids)} items of {benchmark}")
    index = BenchmarkIndex([p or "" for p in bench.column("prompt").to_pylist()],
                           [a or "" for a in bench.column("answer").to_pylist()], config.ns)

    tasks_by_synthetic = {s: row_groups(ws.records_path(s)) for s in synthetics}
    total = sum(t.rows for tasks in tasks_by_synthetic.values() for t in tasks)
    done = 0
    scan_id = ws.new_id()
    verdict_frames, evidence_frames, summaries = [], [], []
    for synthetic, tasks in tasks_by_synthetic.items():
        t0 = time.perf_counter()
        matches = ExactMatches(index, config)
        fn = functools.partial(_scan_row_group, index=index, top_k=config.top_k)
        report(done, total, f"scanning {synthetic}")
        for task, result in map_local(fn, tasks, workers):
            matches.add(result)
            done += task.rows
            report(done, total, f"scanning {synthetic}")
        key = {"scan_id": scan_id, "benchmark": benchmark.name, "benchmark_version": benchmark.version,
               "synthetic": synthetic.name, "synthetic_version": synthetic.version}
        verdicts = matches.verdicts().assign(**key)
        verdicts["item_id"] = [item_ids[i] for i in verdicts["item"]]
        evidence = matches.evidence().assign(**key)
        evidence["item_id"] = [item_ids[i] for i in evidence["item"]]
        verdict_frames.append(verdicts)
        evidence_frames.append(evidence)
        summaries.append(SyntheticSummary(
            str(synthetic), matches.rows, len(verdicts), int((verdicts["verdict"] != "clean").sum()),
            int((verdicts["bucket"] == "dirty").sum()), int((verdicts["bucket"] == "partial").sum()),
            time.perf_counter() - t0))

    report(total, total, "writing verdicts")
    with ws.staged(ws.scans_dir / scan_id) as tmp:
        _write(pd.concat(verdict_frames, ignore_index=True), schemas.VERDICTS, tmp / "verdicts.parquet")
        _write(pd.concat(evidence_frames, ignore_index=True), schemas.EVIDENCE, tmp / "evidence.parquet")
        atomic_write_json(tmp / "manifest.json", {
            "scan_id": scan_id, "created_at": utc_now(),
            "benchmark": benchmark.name, "benchmark_version": benchmark.version,
            "synthetic": ", ".join(str(s) for s in synthetics), "methods": "exact",
            "items": len(item_ids), "records": total, "seconds": round(time.perf_counter() - started, 3),
            "config": {"ngram": {"ns": list(config.ns), "clean_below": config.clean_below,
                                 "dirty_from": config.dirty_from, "top_k": config.top_k}},
            "summary": [s.__dict__ for s in summaries],
        })
    return ScanSummary(scan_id, str(benchmark), summaries)


def _write(df: pd.DataFrame, schema: pa.Schema, path: Any) -> None:
    table = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    pq.write_table(table, path, compression="zstd")
