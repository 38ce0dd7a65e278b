"""The Python API: what a notebook or script calls; :mod:`synthscope` re-exports it.

Each function is a thin call into the engine, the same one the CLI and the dashboard
make, so every number has a command that reproduces it. A workspace argument is a
:class:`Workspace` or the path of one; a dataset is a :class:`DatasetRef` or its text
(``"name"`` for the latest version, ``"name@v2"`` for one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthscope.core import hub
from synthscope.core.workspace import DatasetRef, Workspace

if TYPE_CHECKING:
    from synthscope.contamination.scan import ScanSummary
    from synthscope.datasets.ingest import IngestOptions, IngestReport
    from synthscope.evals.compare import Comparison
    from synthscope.scorecard.gate import GateResult
    from synthscope.scorecard.report import Scorecard
    from synthscope.team.push import PushReport

Progress = Callable[[int, int, str], None]


def online(enabled: bool = True) -> None:
    """Let Hugging Face libraries reach the hub (``enabled=False`` goes back offline).

    synthscope is offline by default (``import synthscope`` sets the ``HF_*_OFFLINE``
    variables; ``SYNTHSCOPE_ONLINE=1`` starts online). The libraries read them when they
    are first imported, so switch before the first model or dataset loads.
    """
    hub.configure(None, online=enabled)


def _ws(workspace: Workspace | str | Path) -> Workspace:
    return workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)


def _ref(dataset: DatasetRef | str) -> DatasetRef:
    return dataset if isinstance(dataset, DatasetRef) else DatasetRef.parse(dataset)


def ingest(workspace: Workspace | str | Path, source: str | Path, *, name: str, kind: str,
           version: str | None = None, options: IngestOptions | None = None) -> IngestReport:
    """Import a file (JSONL, JSON, CSV, Parquet, ``.gz``), a saved Hugging Face dataset or an lm-eval task
    as a new version of ``name``; rows that cannot be read are reported by ``file:line``, never fatal."""
    from synthscope.datasets.ingest import ingest as run

    return run(_ws(workspace), source, name=name, kind=kind, version=version, options=options)


def scan(workspace: Workspace | str | Path, benchmark: DatasetRef | str, synthetic: Sequence[DatasetRef | str], *,
         overrides: Mapping[str, Any] | None = None, progress: Progress | None = None) -> ScanSummary:
    """Check ``synthetic`` datasets against one benchmark with the workspace's cascade (``overrides`` as the
    CLI's flags: ``{"stages": ["exact"], "semantic.threshold": 0.7}``); the verdicts are stored in the workspace."""
    from synthscope.contamination.scan import config_from, run_scan

    ws = _ws(workspace)
    return run_scan(ws, _ref(benchmark), [_ref(s) for s in synthetic], config_from(ws, overrides), progress=progress)


def calibrate(workspace: Workspace | str | Path, benchmark: DatasetRef | str, positives: DatasetRef | str, *,
              target_fpr: float = 0.01, progress: Progress | None = None) -> str:
    """Measure every stage on known positives (row i of ``positives`` rephrases benchmark row i) and hard
    negatives (every item against every other item and row, as a scan compares it); returns the calibration
    id (``calibrations/<id>/``: sweeps, FPR curves, and each stage's recommended threshold or why there is none)."""
    from synthscope.contamination import calibrate as cal
    from synthscope.contamination.scan import config_from

    ws = _ws(workspace)
    pairs = cal.aligned_pairs(ws, _ref(benchmark), _ref(positives))
    return cal.run_calibration(ws, pairs, config_from(ws), target_fpr, progress)


def score(workspace: Workspace | str | Path, dataset: DatasetRef | str, *, reference: DatasetRef | str | None = None,
          source: DatasetRef | str | None = None, holdout: DatasetRef | str | None = None,
          policy: str | Path | None = None, progress: Progress | None = None) -> Scorecard:
    """Quality, bias, privacy and contamination of one dataset version, graded under ``policy`` and stored."""
    from synthscope.scorecard import policy as policymod
    from synthscope.scorecard import report

    ws = _ws(workspace)
    inputs = report.Inputs(*(ws.resolve(_ref(d)) if d else None for d in (reference, source, holdout)))
    return report.build(ws, ws.resolve(_ref(dataset)), inputs, policy=policymod.load(policy), progress=progress)


def gate(workspace: Workspace | str | Path, dataset: DatasetRef | str, *, policy: str | Path | None = None,
         reference: DatasetRef | str | None = None, source: DatasetRef | str | None = None,
         holdout: DatasetRef | str | None = None) -> GateResult:
    """Pass / warn / fail of a dataset version under ``policy`` (scored first when it has no scorecard)."""
    from synthscope.scorecard import report
    from synthscope.scorecard.gate import gate as run

    ws = _ws(workspace)
    inputs = report.Inputs(*(ws.resolve(_ref(d)) if d else None for d in (reference, source, holdout)))
    return run(ws, _ref(dataset), inputs, policy=policy)


def compare(workspace: Workspace | str | Path, baseline: str, candidate: str, task: str, *,
            metric: str = "acc") -> Comparison:
    """Run ``candidate`` against ``baseline`` on an lm-eval task, split by the contamination verdicts."""
    from synthscope.evals.compare import compare as run

    return run(_ws(workspace), baseline, candidate, task, metric=metric)


def push(workspace: Workspace | str | Path, url: str) -> PushReport:
    """Publish a local workspace to ``s3://bucket/prefix``; readers open it with ``Workspace.open(url)``."""
    from synthscope.team.push import push as run

    return run(_ws(workspace), url)
