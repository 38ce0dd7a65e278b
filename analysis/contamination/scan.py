"""A scan: one benchmark version checked against one or more synthetic dataset versions.

The stages of :mod:`synthscope.contamination.cascade` run in order (exact n-grams,
near-duplicates, embeddings, optionally a judge); output, written once into
``scans/<scan_id>/``:

* ``verdicts.parquet`` — one row per benchmark item per synthetic dataset, with
  the deciding stage as ``verdict`` and every stage's best score
  (:data:`synthscope.core.schemas.VERDICTS`);
* ``evidence.parquet`` — each item's matching synthetic records, one row per
  (item, record) with every score any stage gave the pair, matched token spans
  (exact) and best-matching windows (semantic) (:data:`synthscope.core.schemas.EVIDENCE`);
  record spans index the tokens of :func:`synthscope.core.text.record_text`;
* ``manifest.json`` — what was scanned, with which settings, how long it took.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synthscope.compute.engine import (
    Engine,
    LocalEngine,
    RowGroup,
    default_workers,
    read_records,
    read_table,
    row_groups,
    start_fork_server,
    stop_fork_server,
)
from synthscope.contamination import cascade
from synthscope.contamination.cascade import CascadeConfig
from synthscope.contamination.ngram import (
    BatchResult,
    BenchmarkIndex,
    ExactMatches,
    NgramConfig,
    scan_records,
)
from synthscope.core import schemas
from synthscope.core.base import utc_now
from synthscope.core.progress import Stages, StagesPublisher
from synthscope.core.workspace import DatasetRef, Workspace, atomic_write_json

Progress = Callable[[int, int, str], None]


# The settings a scan can override, and the ``synthscope scan`` option for each.
OVERRIDE_FLAGS = {
    "stages": "--stages", "ngram.ns": "--n", "ngram.clean_below": "--clean-below",
    "ngram.dirty_from": "--dirty-from", "ngram.top_k": "--top-k", "near_duplicate.flag_at": "--near-flag-at",
    "semantic.flag_at": "--semantic-flag-at", "semantic.likely_at": "--likely-at", "semantic.model": "--model",
    "semantic.device": "--device", "semantic.first_pass": "--first-pass", "semantic.shortlist": "--shortlist",
}
# ``--top-k`` keeps that many records per item in every stage, not only the exact one.
SHARED_FLAGS = {"ngram.top_k": ("near_duplicate.top_k", "semantic.top_k")}


def config_from(ws: Workspace, overrides: Mapping[str, Any] | None = None) -> CascadeConfig:
    """The workspace's ``[contamination]`` settings (``synthscope.toml``), then ``overrides``.

    See :func:`synthscope.contamination.cascade.config_from` for the override keys.
    """
    overrides = dict(overrides or {})
    for key, others in SHARED_FLAGS.items():
        if overrides.get(key) is not None:
            for other in others:
                overrides.setdefault(other, overrides[key])
    return cascade.config_from(ws.config().get("contamination", {}), overrides)


@dataclass
class SyntheticSummary:
    synthetic: str
    records: int
    items: int
    contaminated: int
    dirty: int
    partial: int
    seconds: float
    by_stage: dict[str, int] = field(default_factory=dict)  # counted items decided by each stage
    by_tier: dict[str, int] = field(default_factory=dict)  # items per evidence tier (confirmed, likely, candidate)
    leaked: dict[str, int] = field(default_factory=dict)  # counted items by what leaked
    expected_false: float | None = None  # counted flags expected by chance (semantic stage; None when it is off)


@dataclass
class ScanSummary:
    scan_id: str
    benchmark: str
    per_synthetic: list[SyntheticSummary] = field(default_factory=list)


def _scan_row_group(task: RowGroup, index: BenchmarkIndex, top_k: int) -> BatchResult:
    table = read_table(task, ["record_id", "prompt", "answer"])
    return scan_records(index, table.column("prompt"), table.column("answer"),
                        table.column("record_id").to_pylist(), top_k)


class _Progress:
    """One progress bar over every stage that reads the synthetic records, and one per stage in its own unit.

    The overall bar (``report``) counts each stage as the rows of the dataset it reads, so it
    ends at ``rows * passes`` over any number of datasets and never goes back; ``stages`` (when
    given) gets every stage with its own unit, count and ETA (:class:`synthscope.core.progress.Stages`).
    """

    def __init__(self, report: Progress, rows: int, passes: int, stages: StagesPublisher | None = None) -> None:
        self.report, self.total = report, max(rows * passes, 1)
        self.offset = 0
        self.board = Stages(stages)

    def stage(self, message: str, unit: str, total: int, rows: int) -> Progress:
        """A stage's report: ``(done, total, message)``, with ``total`` in its own ``unit`` (its first guess here);
        ``rows``, the records of the dataset it reads, is its share of the overall bar."""
        base = self.offset
        self.offset += rows
        self.report(base, self.total, message)
        own = self.board.begin(message, unit, total)

        def progress(done: int, total: int, msg: str = "") -> None:
            if total > 1:  # a count in the stage's unit
                own(done, total)
            elif done >= total:  # (1, 1): "done", from a stage that had nothing to count (an index reused)
                own.finish()
            self.report(base + int(rows * min(done, total) / max(total, 1)), self.total,
                        f"{message}: {msg}" if msg else message)

        return progress

    def note(self, message: str) -> None:
        """Work between the counted stages (checks, the judge): the overall bar says so and stays where it is."""
        self.report(self.offset, self.total, message)


def run_scan(ws: Workspace, benchmark: DatasetRef, synthetics: list[DatasetRef],
             config: CascadeConfig | NgramConfig | None = None, workers: int | None = None,
             progress: Progress | None = None, engine: Engine | None = None,
             stages: StagesPublisher | None = None) -> ScanSummary:
    """Run the cascade and write the scan's artefacts; returns the summary.

    ``config`` defaults to the workspace's settings; a bare :class:`NgramConfig`
    runs the exact stage alone. The n-gram, MinHash and embedding stages run on
    ``engine`` (default: :class:`LocalEngine` with ``workers`` processes); the
    verdicts do not depend on which. ``progress`` gets one figure for the whole scan;
    ``stages`` gets each stage apart, in its own unit, with an ETA.
    """
    engine = engine or LocalEngine(workers)
    if config is None:
        config = config_from(ws)
    elif isinstance(config, NgramConfig):
        config = CascadeConfig(stages=("exact",), ngram=config)
    benchmark = ws.resolve(benchmark)
    synthetics = [ws.resolve(s) for s in synthetics]
    if not synthetics:
        raise ValueError("a scan needs at least one synthetic dataset")
    tasks_by_synthetic = {s: row_groups(ws.records_path(s)) for s in synthetics}
    if (isinstance(engine, LocalEngine) and (engine.workers or default_workers()) > 1
            and any(len(tasks) > 1 for tasks in tasks_by_synthetic.values())):
        start_fork_server()  # its workers import while this process reads and indexes the benchmark
    report = progress or (lambda done, total, message: None)
    started = time.perf_counter()

    bench = pq.read_table(ws.records_path(benchmark), columns=["record_id", "prompt", "answer", "raw"]).to_pandas()
    bench = pd.DataFrame({"item": range(len(bench)), "item_id": bench["record_id"],
                          "prompt": bench["prompt"].fillna(""), "answer": bench["answer"].fillna(""),
                          "raw": bench["raw"].fillna("{}")})
    report(0, 1, f"indexing {len(bench)} items of {benchmark}")
    index = BenchmarkIndex(list(bench["prompt"]), list(bench["answer"]), config.ngram.ns)

    rows = sum(t.rows for tasks in tasks_by_synthetic.values() for t in tasks)
    passes = len([s for s in config.stages if s != "judged"]) + int(_chance_scored(config))
    bar = _Progress(report, rows, passes, stages)
    scan_id = ws.new_id()
    verdict_frames, evidence_frames, summaries = [], [], []
    for synthetic, tasks in tasks_by_synthetic.items():
        t0 = time.perf_counter()
        rows_here = sum(t.rows for t in tasks)
        exact = bar.stage(f"exact n-grams: {synthetic}", "rows", rows_here, rows_here)
        exact_verdicts, exact_evidence, scanned = _exact(index, tasks, config.ngram, engine, exact)
        verdicts, evidence = _cascade(ws, bench, synthetic, config, exact_verdicts, exact_evidence, bar, engine,
                                      rows_here)
        key = {"scan_id": scan_id, "benchmark": benchmark.name, "benchmark_version": benchmark.version,
               "synthetic": synthetic.name, "synthetic_version": synthetic.version}
        item_ids = bench["item_id"].to_numpy()
        verdict_frames.append(verdicts.assign(**key, item_id=item_ids[verdicts["item"].to_numpy(int)]))
        evidence_frames.append(evidence.assign(**key, item_id=item_ids[evidence["item"].to_numpy(int)]))
        counts, tiers = verdicts["verdict"].value_counts(), verdicts["tier"].value_counts()
        leaks = verdicts.loc[verdicts["verdict"] != "clean", "leaked"].value_counts()
        summaries.append(SyntheticSummary(
            str(synthetic), scanned, len(verdicts), int((verdicts["verdict"] != "clean").sum()),
            int((verdicts["bucket"] == "dirty").sum()), int((verdicts["bucket"] == "partial").sum()),
            time.perf_counter() - t0, {s: int(counts.get(s, 0)) for s in config.stages},
            {t: int(tiers.get(t, 0)) for t in cascade.TIERS}, {k: int(n) for k, n in leaks.items() if k},
            round(float(verdicts["chance"].sum()), 1) if verdicts["chance"].notna().any() else None))

    report(bar.total, bar.total, "writing verdicts")
    with ws.staged(ws.artefact_dir("scans", scan_id)) as tmp:
        _write(pd.concat(verdict_frames, ignore_index=True), schemas.VERDICTS, tmp / "verdicts.parquet")
        _write(pd.concat(evidence_frames, ignore_index=True), schemas.EVIDENCE, tmp / "evidence.parquet")
        atomic_write_json(tmp / "manifest.json", {
            "scan_id": scan_id, "created_at": utc_now(),
            "benchmark": benchmark.name, "benchmark_version": benchmark.version,
            "synthetic": ", ".join(str(s) for s in synthetics), "methods": ",".join(config.stages),
            "items": len(bench), "records": rows, "seconds": round(time.perf_counter() - started, 3),
            "engine": engine.name,
            "config": config.settings(),
            "summary": [s.__dict__ for s in summaries],
        })
    return ScanSummary(scan_id, str(benchmark), summaries)


def _exact(index: BenchmarkIndex, tasks: list[RowGroup], config: NgramConfig, engine: Engine,
           progress: Progress) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    matches = ExactMatches(index, config)
    fn = functools.partial(_scan_row_group, index=index, top_k=config.top_k)
    total, done = sum(t.rows for t in tasks), 0
    for task, result in engine.map(fn, tasks):
        matches.add(result)
        done += task.rows
        progress(done, total, "")
    return matches.verdicts(), matches.evidence(), matches.rows


def _cascade(ws: Workspace, bench: pd.DataFrame, synthetic: DatasetRef, config: CascadeConfig,
             exact_verdicts: pd.DataFrame, exact_evidence: pd.DataFrame,
             bar: _Progress, engine: Engine, rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stages after the exact one (over the ``rows`` of ``synthetic``), then the decision."""
    near = semantic = None
    if "near_duplicate" in config.stages:
        from synthscope.contamination.minhash import PASSES, near_duplicates

        near = near_duplicates(ws, bench, synthetic, config.near_duplicate,
                               bar.stage(f"near-duplicates: {synthetic}", "rows × 3 passes", PASSES * rows, rows),
                               engine)
    if "semantic" in config.stages:
        from synthscope.contamination.semantic import semantic_neighbours

        if isinstance(engine, LocalEngine):
            stop_fork_server()  # the model runs here; the server's imports would only add to the peak

        semantic = semantic_neighbours(ws, bench, synthetic, config.semantic,
                                       bar.stage(f"embeddings: {synthetic}", "records", rows, rows), engine)
    checks = _checks(ws, bench, synthetic, cascade.check_candidates(exact_evidence, semantic, config), bar) \
        if config.checks else None
    verdicts, evidence = cascade.decide(exact_verdicts, exact_evidence, config, near, semantic, checks=checks)
    if "judged" in config.stages:
        candidates = cascade.judge_candidates(verdicts, semantic, config)
        if len(candidates):
            from synthscope.contamination.judge import judge_pairs_with_reasons
            from synthscope.core.text import record_text

            records = read_records(ws.records_path(synthetic), candidates["record_id"],
                                   ["record_id", "prompt", "answer"]).to_pandas()
            texts = {r.record_id: record_text(r.prompt or "", r.answer or "") for r in records.itertuples()}
            items = bench.set_index("item")
            pairs = pd.DataFrame({
                "item_text": [record_text(items.at[i, "prompt"], items.at[i, "answer"]) for i in candidates["item"]],
                "record_text": [texts[r] for r in candidates["record_id"]]})
            scores, reasons = judge_pairs_with_reasons(ws, pairs, config.judge,
                                 lambda done, total, msg: bar.note(f"judging {done}/{total} pairs: {synthetic}"))
            judged = candidates.assign(judge_score=scores, judge_reason=reasons)
            verdicts, evidence = cascade.decide(exact_verdicts, exact_evidence, config, near, semantic, judged, checks)
    verdicts["chance"] = np.nan
    if _chance_scored(config):
        from synthscope.contamination.semantic import NULL_SAMPLE, chance_of_flag

        sample = min(rows, NULL_SAMPLE)
        chance = chance_of_flag(ws, bench, synthetic, config.semantic.likely_at, config.semantic,
                                progress=bar.stage(f"chance scores: {synthetic}", "sampled records", sample, rows))
        chance = cascade.chance_after_checks(evidence, chance, config)
        # A confirmed item stands on a copy or a passed identity check, which the semantic null does not produce.
        verdicts["chance"] = np.where(verdicts["tier"] == "confirmed", 0.0, verdicts["item"].map(chance).to_numpy())
    return verdicts, evidence


def _chance_scored(config: CascadeConfig) -> bool:
    """Whether the scan estimates each item's chance of a false flag (a pass over a sample of the records)."""
    return "semantic" in config.stages and "likely" in config.count


def _checks(ws: Workspace, bench: pd.DataFrame, synthetic: DatasetRef, candidates: pd.DataFrame,
            bar: _Progress) -> pd.DataFrame | None:
    """The task-aware checks (:mod:`.checks`) of the pairs that a check can promote."""
    if candidates.empty:
        return None
    from synthscope.contamination.checks import Pair, run_checks
    from synthscope.core.text import record_text

    bar.note(f"task-aware checks of {len(candidates)} pairs: {synthetic}")
    records = read_records(ws.records_path(synthetic), candidates["record_id"],
                           ["record_id", "prompt", "answer"]).to_pandas()
    texts = {r.record_id: record_text(r.prompt or "", r.answer or "") for r in records.itertuples()}
    items = bench.set_index("item")
    raws: dict[int, dict[str, Any]] = {}
    pairs = []
    for row in candidates.itertuples():
        if row.item not in raws:
            try:
                raws[row.item] = json.loads(items.at[row.item, "raw"])
            except ValueError:
                raws[row.item] = {}
        span = row.record_span if isinstance(row.record_span, (list, tuple, np.ndarray)) else None
        pairs.append(Pair(str(items.at[row.item, "item_id"]), raws[row.item], items.at[row.item, "prompt"],
                          items.at[row.item, "answer"], texts.get(row.record_id, ""), span))
    results = run_checks(pairs)
    return candidates[["item", "record_id"]].assign(
        check=[r.check for r in results], check_passed=[r.passed for r in results],
        check_reason=[r.reason for r in results], answer_leaked=[r.answer_leaked for r in results])


def _write(df: pd.DataFrame, schema: pa.Schema, path: Any) -> None:
    pq.write_table(schemas.to_table(df, schema), path, compression="zstd")
