"""Typed jobs: each kind of long work as a spec of its parameters, executed by calling the engine.

A spec is a frozen dataclass with a ``kind`` and the parameters of one piece of work. The
command line runs it in the foreground (:meth:`Task.run` with a console :class:`Context`);
``--background`` and the dashboard's pages hand it to :func:`start`, which records it as
data in ``jobs/<id>/job.json`` (``{"kind": "scan", "params": {...}}``) and starts
``python -m synthscope.tasks WORKSPACE JOB_ID`` (:func:`run_job`) in its own session.
Nothing assembles a command line to start a job; the engine never sees one.

Jobs written by older versions (``job.json`` holding an ``argv``) stay listed and readable:
the job list reads ``status.json`` only.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from synthscope.compute import jobs
from synthscope.core.workspace import DatasetRef, Workspace


class Context(Protocol):
    """What a running task may tell and ask: :class:`synthscope.compute.jobs.Reporter` in a job."""

    def progress(self, done: int, total: int, message: str) -> None: ...
    def note(self, result: dict[str, Any]) -> None: ...
    def cancelled(self) -> bool: ...


class Console:
    """The context of a task run in the foreground by the CLI: progress to stderr, never cancelled."""

    def progress(self, done: int, total: int, message: str) -> None:
        print(f"[{done}/{total}] {message}", file=sys.stderr, flush=True)

    def note(self, result: dict[str, Any]) -> None:
        pass

    def cancelled(self) -> bool:
        return False


class Task(Protocol):
    kind: ClassVar[str]

    def run(self, ws: Workspace, ctx: Context) -> Any: ...
    def summary(self, outcome: Any) -> dict[str, Any]: ...


def _refs(texts: list[str]) -> list[DatasetRef]:
    return [DatasetRef.parse(t) for t in texts]


@dataclass(frozen=True)
class ScanTask:
    """``synthscope scan``: the cascade of every synthetic dataset against each benchmark."""

    kind: ClassVar[str] = "scan"
    benchmarks: list[str]
    synthetics: list[str]
    overrides: dict[str, Any] = field(default_factory=dict)  # keys of contamination.scan.OVERRIDE_FLAGS
    engine: str = "local"
    address: str | None = None
    workers: int | None = None
    inputs: str | None = None  # s3:// where the workspace was pushed: Ray workers read the records from there

    def run(self, ws: Workspace, ctx: Context) -> list[Any]:
        from synthscope.compute.engine import engine_from
        from synthscope.contamination.scan import config_from, run_scan

        config = config_from(ws, self.overrides)
        engine = engine_from(self.engine, self.address, self.workers, self.inputs, ws.root)
        stages = getattr(ctx, "stages", None)  # a job's status and the console's bars draw one bar per stage
        return [run_scan(ws, bench, _refs(self.synthetics), config, progress=ctx.progress, engine=engine,
                         stages=stages) for bench in _refs(self.benchmarks)]

    def summary(self, outcome: list[Any]) -> dict[str, Any]:
        return {"scan_ids": [s.scan_id for s in outcome]}


@dataclass(frozen=True)
class CalibrateTask:
    """``synthscope calibrate``: every stage scored on known positives and hard negatives, thresholds swept."""

    kind: ClassVar[str] = "calibrate"
    benchmark: str
    positives: str | None = None  # row i of this dataset rephrases benchmark row i ...
    truth: str | None = None  # ... or a planted-truth file (absolute path)
    target_fpr: float = 0.01
    overrides: dict[str, Any] = field(default_factory=dict)  # stages, semantic.model, semantic.device

    def run(self, ws: Workspace, ctx: Context) -> str:
        from synthscope.contamination import calibrate
        from synthscope.contamination.scan import config_from

        if (self.positives is None) == (self.truth is None):
            raise ValueError("give known positives as --positives NAME (row i rephrases benchmark row i) "
                             "or --truth FILE (dataset, version, record_id, task_id, must_flag), not both")
        config = config_from(ws, self.overrides)
        bench = DatasetRef.parse(self.benchmark)
        if self.positives:
            pairs = calibrate.aligned_pairs(ws, bench, DatasetRef.parse(self.positives))
        else:
            pairs = calibrate.truth_pairs(ws, bench, calibrate.read_truth(Path(str(self.truth))))
        return calibrate.run_calibration(ws, pairs, config, self.target_fpr, ctx.progress)

    def summary(self, outcome: str) -> dict[str, Any]:
        return {"calibration_id": outcome}


@dataclass(frozen=True)
class EvalTask:
    """``synthscope eval run``: lm-eval on a run's model, every sample imported and joined to its benchmark."""

    kind: ClassVar[str] = "eval"
    run_id: str
    tasks: list[str]
    include_path: str | None = None
    limit: float | None = None
    device: str = "auto"
    batch_size: int | str = 1
    num_fewshot: int | None = None
    trust_remote_code: bool = False
    online: bool = False
    benchmarks: list[str] = field(default_factory=list)

    def run(self, ws: Workspace, ctx: Context) -> Any:
        from synthscope.evals.lmeval import run_eval

        return run_eval(ws, self.run_id, self.tasks, include_path=self.include_path, limit=self.limit,
                        device=self.device, batch_size=self.batch_size, num_fewshot=self.num_fewshot,
                        trust_remote_code=self.trust_remote_code, online=self.online,
                        benchmarks=_refs(self.benchmarks), progress=ctx.progress)

    def summary(self, outcome: Any) -> dict[str, Any]:
        return {"eval_ids": [i.eval_id for i in outcome.imports], "output": str(outcome.output_dir)}


@dataclass(frozen=True)
class MinkTask:
    """``synthscope eval mink``: Min-K%++ of every benchmark item under a run's model."""

    kind: ClassVar[str] = "mink"
    run_id: str
    benchmarks: list[str]
    k: float = 0.2
    max_tokens: int = 512
    batch_size: int = 8
    device: str = "auto"
    trust_remote_code: bool = False
    online: bool = False

    def run(self, ws: Workspace, ctx: Context) -> list[Any]:
        from synthscope.evals.membership import score_run

        return [score_run(ws, self.run_id, bench, k=self.k, max_tokens=self.max_tokens, batch_size=self.batch_size,
                          device=self.device, trust_remote_code=self.trust_remote_code, online=self.online,
                          progress=ctx.progress) for bench in _refs(self.benchmarks)]

    def summary(self, outcome: list[Any]) -> dict[str, Any]:
        return {"score_ids": [d.score_id for d in outcome]}


@dataclass(frozen=True)
class ScoreTask:
    """``synthscope score``: the scorecard of one dataset version, graded under a policy and stored."""

    kind: ClassVar[str] = "score"
    dataset: str
    reference: str | None = None
    source: str | None = None
    holdout: str | None = None
    policy: str | None = None  # a policy file (absolute path); None: the default policy
    embeddings: bool = True

    def run(self, ws: Workspace, ctx: Context) -> Any:
        from synthscope.scorecard import policy as policymod
        from synthscope.scorecard import report

        inputs = report.Inputs(*(ws.resolve(DatasetRef.parse(v)) if v else None
                                 for v in (self.reference, self.source, self.holdout)))
        return report.build(ws, ws.resolve(DatasetRef.parse(self.dataset)), inputs,
                            policy=policymod.load(self.policy), embeddings=self.embeddings, progress=ctx.progress)

    def summary(self, outcome: Any) -> dict[str, Any]:
        return {"report_id": outcome.report_id, "status": outcome.status}


@dataclass(frozen=True)
class GenerateTask:
    """``synthscope generate``: rows from a seed pool through a template and a model, with provenance."""

    kind: ClassVar[str] = "generate"
    seeds: str
    template: str  # the template's text, kept in job.json
    output: str
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # generation.generate.Params fields
    limit: int | None = None
    device: str = "auto"
    backend: str = "transformers"
    keep_flagged_seeds: bool = False
    resume: str | None = None
    trust_remote_code: bool = False
    check: bool = False  # scan the new version against every benchmark and score it

    def run(self, ws: Workspace, ctx: Context) -> tuple[Any, dict[str, Any]]:
        from synthscope.generation import generate as gen

        result = gen.generate(ws, DatasetRef.parse(self.seeds), self.template, self.output, model=self.model,
                              params=gen.Params(**self.params), limit=self.limit, device=self.device,
                              keep_flagged_seeds=self.keep_flagged_seeds, run_id=self.resume,
                              trust_remote_code=self.trust_remote_code, progress=ctx.progress,
                              should_stop=ctx.cancelled, backend=self.backend,
                              on_start=lambda run_id: ctx.note({"run_id": run_id}))
        checks = check_generated(ws, result.dataset) if self.check and result.dataset else {}
        return result, checks

    def summary(self, outcome: tuple[Any, dict[str, Any]]) -> dict[str, Any]:
        result, checks = outcome
        return {"run_id": result.run_id, "rows": result.rows, "rejected": result.rejected, "stopped": result.stopped,
                "dataset": str(result.dataset) if result.dataset else None, "device": result.device,
                "tokens_per_second": round(result.tokens_per_second, 2), **checks}


@dataclass(frozen=True)
class DemoTask:
    """The second half of the demo (calibration, scorecards, tiny models, evaluations), resumable."""

    kind: ClassVar[str] = "demo"

    def run(self, ws: Workspace, ctx: Context) -> Any:
        from synthscope.demo.build import finish_demo

        return finish_demo(ws.root, StepsAsProgress(ctx))

    def summary(self, outcome: Any) -> dict[str, Any]:
        return {"steps_done": list(outcome.done), "seconds": dict(outcome.seconds)}


class StepsAsProgress:
    """A multi-step build's report (:class:`synthscope.demo.build.Report`) as one job's progress, 1000 per step."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.number, self.total, self.title = 0, 1, ""

    def step(self, number: int, total: int, title: str) -> None:
        self.number, self.total, self.title = number, total, title
        self.ctx.progress(1000 * (number - 1), 1000 * total, f"step {number}/{total}: {title}")

    def progress(self, done: int, total: int, message: str) -> None:
        within = min(1.0, done / total) if total else 0.0
        self.ctx.progress(int(1000 * (self.number - 1 + within)), 1000 * self.total,
                          f"step {self.number}/{self.total}: {self.title} — {message}")

    def note(self, text: str) -> None:
        """Lines between progress reports go to the job's log; the panel shows the progress message."""
        print(text, flush=True)


def check_generated(ws: Workspace, ref: DatasetRef) -> dict[str, Any]:
    """Scan a generated version against every benchmark and score it; what was found."""
    from synthscope.contamination.scan import config_from, run_scan
    from synthscope.scorecard import report

    benchmarks = [DatasetRef(m["name"], m["version"]) for m in ws.manifests() if m["kind"] == "benchmark"]
    for bench in benchmarks:
        run_scan(ws, bench, [ref], config_from(ws), workers=1)
    card = report.build(ws, ref)
    flagged = ws.query("SELECT count(*) AS n FROM latest_verdicts WHERE synthetic = ? AND synthetic_version = ? "
                       "AND verdict <> 'clean'", [ref.name, ref.version])
    return {"scanned_against": [str(b) for b in benchmarks], "contaminated_items": int(flagged["n"].iloc[0]),
            "report_id": card.report_id, "status": card.status}


TASKS: dict[str, type] = {t.kind: t for t in (ScanTask, CalibrateTask, EvalTask, MinkTask, ScoreTask, GenerateTask,
                                              DemoTask)}


def start(ws: Workspace, task: Task) -> str:
    """Record ``task`` in a new job folder and run it in its own process; returns the job id."""
    return jobs.start(ws, task.kind, dataclasses.asdict(task))  # type: ignore[call-overload]


def start_scan(ws: Workspace, benchmark: DatasetRef, synthetics: Sequence[DatasetRef],
               overrides: Mapping[str, Any] | None = None) -> str:
    """Check the datasets and settings, then start a scan job; returns the job id.

    ``overrides`` maps keys of :data:`synthscope.contamination.scan.OVERRIDE_FLAGS`
    (``"stages"``, ``"semantic.flag_at"``, ...) to values; everything else comes
    from the workspace's ``synthscope.toml``. A bad value raises here, at once,
    rather than in the job: :class:`synthscope.core.workspace.WorkspaceError` for an
    unknown dataset, ``ValueError`` for a bad setting or no synthetic dataset.
    """
    from synthscope.contamination.scan import OVERRIDE_FLAGS, config_from

    if not synthetics:
        raise ValueError("choose at least one synthetic dataset to scan")
    benchmark = ws.resolve(benchmark)
    resolved = [ws.resolve(s) for s in synthetics]
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(overrides) - set(OVERRIDE_FLAGS)
    if unknown:
        raise ValueError(f"unknown scan settings: {', '.join(sorted(unknown))}")
    config_from(ws, overrides)  # raises ValueError on a bad value
    return start(ws, ScanTask([str(benchmark)], [str(s) for s in resolved], overrides))


def start_calibration(ws: Workspace, benchmark: DatasetRef, positives: DatasetRef | None = None,
                      truth: str | Path | None = None, target_fpr: float = 0.01,
                      stages: Sequence[str] | None = None) -> str:
    """Check the inputs, then start a calibration job; returns the job id.

    Known positives come either from ``positives`` (row ``i`` is known
    contamination of benchmark row ``i``) or from a planted-truth file
    ``truth``, exactly one of them; every other item and candidate is a hard
    negative. Raises ``ValueError`` for a bad setting or truth file and
    :class:`synthscope.core.workspace.WorkspaceError` for an unknown dataset.
    """
    from synthscope.contamination.calibrate import read_truth
    from synthscope.contamination.cascade import STAGES

    if (positives is None) == (truth is None or not str(truth).strip()):
        raise ValueError("give known positives as a dataset or as a planted-truth file, exactly one of them")
    if not 0 < target_fpr < 1:
        raise ValueError(f"the target false-positive rate must lie between 0 and 1; got {target_fpr}")
    chosen = list(stages or [])
    unknown = set(chosen) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stages: {', '.join(sorted(unknown))}")
    if chosen and "exact" not in chosen:
        raise ValueError("the stages must include 'exact'")
    benchmark = ws.resolve(benchmark)
    truth_path = None
    if positives is None:
        path = Path(str(truth).strip()).expanduser().resolve()
        read_truth(path)  # raises ValueError on a missing or malformed file, here rather than in the job
        truth_path = str(path)
    overrides = {"stages": [s for s in STAGES if s in chosen]} if chosen else {}
    return start(ws, CalibrateTask(str(benchmark), str(ws.resolve(positives)) if positives is not None else None,
                                   truth_path, float(target_fpr), overrides))


def spec_of(ws: Workspace, job_id: str) -> Task:
    """The typed spec a job folder records."""
    recorded = jobs.spec(ws, job_id)
    if "params" not in recorded:
        raise ValueError(f"job {job_id} was recorded by an older synthscope (a command line, not a spec)")
    kind = recorded["kind"]
    if kind not in TASKS:
        raise ValueError(f"job {job_id} is of an unknown kind {kind!r}")
    return TASKS[kind](**recorded["params"])


def run_job(ws: Workspace, job_id: str) -> int:
    """Run a job's recorded spec in this process, publishing progress and its result or error."""
    reporter = jobs.Reporter(ws, job_id)
    try:
        task = spec_of(ws, job_id)
        print(f"synthscope {task.kind} job {job_id}: {dataclasses.asdict(task)}", flush=True)  # type: ignore[call-overload]
        reporter.succeed(task.summary(task.run(ws, reporter)))
    except Exception as exc:
        reporter.fail(f"{type(exc).__name__}: {exc}")
        raise
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m synthscope.tasks WORKSPACE JOB_ID", file=sys.stderr)
        return 2
    from synthscope.core import hub

    ws = Workspace.open(args[0])
    hub.configure(ws.root)
    return run_job(ws, args[1])


if __name__ == "__main__":
    os.nice(jobs.NICENESS)  # the dashboard that started the job keeps the CPU first
    sys.exit(main())
