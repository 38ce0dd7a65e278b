"""The gate: a dataset version's scorecard graded under a policy, reduced to pass / warn / fail.

``synthscope gate`` and :func:`synthscope.gate` use it; CI reads :attr:`GateResult.result` as JSON.
A stored scorecard is re-graded under any policy; a version without one measured against
the given inputs is scored first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.scorecard import policy as policymod
from synthscope.scorecard import report

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class GateResult:
    ref: DatasetRef
    status: str  # policy.PASS, WARN or FAIL
    policy: policymod.Policy
    graded: pd.DataFrame  # one row per metric: section, key, value, grade, rule, detail
    result: dict[str, Any]  # the JSON document `synthscope gate --json` writes

    @property
    def failed(self) -> bool:
        return self.status == policymod.FAIL


def gate(ws: Workspace, dataset: DatasetRef, inputs: report.Inputs | None = None, *,
         policy: str | Path | None = None, rebuild: bool = False, progress: Progress | None = None,
         on_build: Callable[[DatasetRef], None] | None = None) -> GateResult:
    """Grade ``dataset`` (its latest scorecard with these inputs, built when missing) under ``policy``.

    ``on_build`` is told before a scorecard has to be built (it takes a while).
    """
    inputs = inputs or report.Inputs()
    ref = ws.resolve(dataset)
    manifest = None if rebuild else report.latest(ws, ref)
    wanted = {k: v for k, v in inputs.as_dict().items() if v}
    if manifest is not None and any(manifest.get(k) != v for k, v in wanted.items()):
        manifest = None  # measured against other data: measure again
    if manifest is None:
        if on_build:
            on_build(ref)
        card = report.build(ws, ref, inputs, progress=progress)
        manifest = report.latest(ws, ref)
        assert manifest is not None and manifest["report_id"] == card.report_id
    stored = report.metrics(ws, manifest["report_id"])
    pol = policymod.load(policy, known_keys=set(stored["key"]))
    graded = report.grade(stored.drop(columns=["grade", "rule"]), pol)
    status = policymod.worst(list(graded["grade"]))
    result = {
        "dataset": ref.name, "version": ref.version, "status": status, "report_id": manifest["report_id"],
        "report_created_at": manifest["created_at"], "policy": pol.source, "policy_digest": pol.digest,
        "inputs": {k: manifest.get(k) for k in ("reference", "source", "holdout")},
        "sections": {s: policymod.worst(list(graded.loc[graded["section"] == s, "grade"])) for s in report.SECTIONS},
        "failed": sorted(graded.loc[graded["grade"] == policymod.FAIL, "key"]),
        "warned": sorted(graded.loc[graded["grade"] == policymod.WARN, "key"]),
        "metrics": [{"key": g.key, "section": g.section, "value": None if g.value != g.value else g.value,
                     "grade": g.grade, "rule": g.rule or None, "detail": g.detail} for g in graded.itertuples()],
    }
    return GateResult(ref, status, pol, graded, result)
