"""Scorecards: contamination, quality, bias and privacy of one synthetic dataset version, graded by a policy.

A scorecard is ``reports/<report_id>/``: ``metrics.parquet`` (one row per metric:
section, key, value, direction, the numbers behind it in words, its evidence table,
its grade under the policy it was built with), ``evidence/<section>.<table>.parquet``
(the rows behind the metrics) and ``manifest.json`` (the dataset version, the
reference, source and holdout versions it was measured against, the policy, the
grades, the notes on what could not be measured). Written once, atomically; the
views ``reports`` and ``report_metrics`` read them, ``latest_report_metrics`` keeps
the newest scorecard of each dataset version.

Sections and what they need:

* contamination — the latest scans of the version against every benchmark
  (:mod:`synthscope.contamination`); nothing is scanned here;
* quality (:mod:`synthscope.scorecard.quality`) and bias (:mod:`synthscope.scorecard.bias`) — a reference
  dataset of real data for structure, fidelity and skew;
* privacy (:mod:`synthscope.scorecard.privacy`) — the private source the generator saw, and a
  holdout of the same population it did not see, for replay, near-copies, the
  distance-to-closest-record baseline and the membership-inference check.

Record vectors come from the semantic stage's model and windows
(:func:`synthscope.compute.embeddings.record_vectors`), so a version already scanned costs no
new embedding. :func:`grade` re-grades stored metrics under any policy: the gate
does not need to recompute anything to apply a different policy.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from synthscope.core import schemas
from synthscope.core.base import utc_now
from synthscope.core.text import record_text
from synthscope.core.workspace import (
    DatasetRef,
    Workspace,
    WorkspaceError,
    atomic_write_json,
    atomic_write_parquet,
    check_name,
)
from synthscope.scorecard import policy as policymod
from synthscope.scorecard.metrics import Metric, Section

Progress = Callable[[int, int, str], None]
SECTIONS = ("contamination", "quality", "bias", "privacy")
MAX_EVIDENCE_ROWS = 5000  # per table; a scorecard is for reading, the full data stays in the datasets


@dataclass
class Inputs:
    """What a synthetic version is measured against (each optional)."""

    reference: DatasetRef | None = None  # real data of the kind the synthetic set imitates
    source: DatasetRef | None = None  # private data the generator saw
    holdout: DatasetRef | None = None  # private data of the same population the generator did not see

    def as_dict(self) -> dict[str, str | None]:
        return {k: str(v) if v else None for k, v in
                (("reference", self.reference), ("source", self.source), ("holdout", self.holdout))}


@dataclass
class Scorecard:
    report_id: str
    dataset: DatasetRef
    inputs: Inputs
    sections: list[Section]
    grades: pd.DataFrame  # key, section, value, grade, rule
    status: str
    notes: list[str] = field(default_factory=list)

    def section_status(self) -> dict[str, str]:
        return {s: policymod.worst(list(self.grades.loc[self.grades["section"] == s, "grade"])) for s in SECTIONS}


def _texts(ws: Workspace, ref: DatasetRef) -> tuple[list[str], list[str]]:
    rows = ws.query("SELECT record_id, prompt, answer FROM records WHERE dataset = ? AND version = ? ORDER BY row",
                    [ref.name, ref.version])
    return ([record_text(p or "", a or "") for p, a in zip(rows["prompt"], rows["answer"], strict=True)],
            list(rows["record_id"]))


def contamination_section(ws: Workspace, ref: DatasetRef) -> Section:
    """From the latest scans of ``ref`` against each benchmark: the worst benchmark's contaminated share."""
    grid = ws.query("""SELECT benchmark || '@' || benchmark_version AS benchmark, items, contaminated,
                              contaminated_share, exact, near_duplicate, semantic, judged, scan_id
                       FROM contamination_grid WHERE synthetic = ? AND synthetic_version = ?
                       ORDER BY contaminated_share DESC, benchmark""", [ref.name, ref.version])
    section = Section("contamination", evidence={"benchmarks": grid})
    if grid.empty:
        detail = f"no scan of {ref} yet: `synthscope scan --synthetic {ref} --benchmark NAME`"
        section.notes.append(detail)
        section.metrics += [Metric("contamination.contaminated_share", math.nan, "Contaminated share",
                                   False, detail, "benchmarks"),
                            Metric("contamination.contaminated_items", math.nan, "Contaminated items", False, detail,
                                   "benchmarks")]
        return section
    top = grid.iloc[0]
    section.metrics += [
        Metric("contamination.contaminated_share", float(top["contaminated_share"]), "Contaminated share",
               False, f"{top['benchmark']}: {int(top['contaminated'])} of {int(top['items'])} items "
                      f"(worst of {len(grid)} benchmark{'s' if len(grid) > 1 else ''} scanned)", "benchmarks"),
        Metric("contamination.contaminated_items", float(grid["contaminated"].sum()), "Contaminated items", False,
               ", ".join(f"{b}: {int(c)}" for b, c in zip(grid["benchmark"], grid["contaminated"], strict=True)),
               "benchmarks"),
    ]
    return section


def _vectors(ws: Workspace, texts: list[str]) -> np.ndarray:
    from synthscope.compute.embeddings import record_vectors
    from synthscope.contamination.scan import config_from

    semantic = config_from(ws).semantic
    return record_vectors(ws, semantic.embedder(), texts, semantic.window, semantic.stride)


def _labels(ws: Workspace, ref: DatasetRef) -> list[str] | None:
    """A ``label`` column of the source rows, when every row has one."""
    raw = ws.query("SELECT json_extract_string(raw, '$.label') AS label FROM records WHERE dataset = ? AND "
                   "version = ? ORDER BY row", [ref.name, ref.version])["label"]
    return None if raw.isna().any() else list(raw)


def build(ws: Workspace, dataset: DatasetRef, inputs: Inputs | None = None, *, policy: policymod.Policy | None = None,
          embeddings: bool = True, progress: Progress | None = None) -> Scorecard:
    """Measure ``dataset`` against ``inputs``, grade it under ``policy`` (default policy) and store the scorecard."""
    from synthscope.scorecard.bias import bias_section
    from synthscope.scorecard.privacy import privacy_section
    from synthscope.scorecard.quality import quality_section

    report = progress or (lambda done, total, message: None)
    started = time.perf_counter()
    inputs = inputs or Inputs()
    ref = ws.resolve(dataset)
    if ws.manifest(ref)["kind"] != "synthetic":
        raise WorkspaceError(f"{ref} is a {ws.manifest(ref)['kind']} dataset; scorecards are for synthetic data")
    inputs = Inputs(*(ws.resolve(r) if r else None for r in (inputs.reference, inputs.source, inputs.holdout)))
    steps = 6
    report(0, steps, f"reading {ref}")
    texts, ids = _texts(ws, ref)
    other = {name: _texts(ws, r) if r else (None, None) for name, r in inputs.__dict__.items()}
    vectors: dict[str, np.ndarray | None] = {name: None for name in ("synthetic", *other)}
    if embeddings:
        report(1, steps, "embedding records")
        vectors["synthetic"] = _vectors(ws, texts)
        for name, (other_texts, _) in other.items():
            if other_texts is not None:
                vectors[name] = _vectors(ws, other_texts)
    report(2, steps, "contamination")
    sections = [contamination_section(ws, ref)]
    report(3, steps, "quality")
    ref_texts, ref_ids = other["reference"]
    sections.append(quality_section(texts, ids, vectors=vectors["synthetic"], reference_texts=ref_texts,
                                    reference_vectors=vectors["reference"]))
    report(4, steps, "bias")
    sections.append(bias_section(texts, ids, vectors=vectors["synthetic"], reference_texts=ref_texts,
                                 reference_ids=ref_ids, reference_vectors=vectors["reference"],
                                 labels=_labels(ws, ref),
                                 reference_labels=_labels(ws, inputs.reference) if inputs.reference else None))
    report(5, steps, "privacy")
    src_texts, src_ids = other["source"]
    hold_texts, hold_ids = other["holdout"]
    sections.append(privacy_section(texts, ids, src_texts, src_ids, synthetic_vectors=vectors["synthetic"],
                                    source_vectors=vectors["source"], holdout_texts=hold_texts,
                                    holdout_ids=hold_ids, holdout_vectors=vectors["holdout"]))
    if not embeddings:
        sections[1].notes.append("embeddings were turned off (--no-embeddings): vector-based metrics not measured")
    policy = policy or policymod.load(None)
    card = _store(ws, ref, inputs, sections, policy, time.perf_counter() - started)
    report(steps, steps, "done")
    return card


def grade(metrics: pd.DataFrame, policy: policymod.Policy) -> pd.DataFrame:
    """``metrics`` (section, key, value, ...) with ``grade`` and ``rule`` under ``policy``."""
    out = metrics.copy()
    out["grade"] = [policy.grade(k, float(v)) for k, v in zip(out["key"], out["value"], strict=True)]
    out["rule"] = [policy.rules[k].describe() if k in policy.rules else "" for k in out["key"]]
    return out


def _metric_frame(sections: list[Section]) -> pd.DataFrame:
    rows = [{"section": s.name, "key": m.key, "label": m.label, "value": float(m.value),
             "higher_is_better": m.higher_is_better, "detail": m.detail, "evidence": m.evidence}
            for s in sections for m in s.metrics]
    return pd.DataFrame(rows, columns=["section", "key", "label", "value", "higher_is_better", "detail", "evidence"])


def _evidence_table(frame: pd.DataFrame) -> pa.Table:
    """An evidence frame as Arrow; columns of mixed Python objects become JSON strings."""
    frame = frame.head(MAX_EVIDENCE_ROWS).reset_index(drop=True)
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        fixed = frame.copy()
        for column in fixed.columns:
            if fixed[column].dtype == object:
                fixed[column] = [v if v is None or isinstance(v, str) else json.dumps(v, default=str)
                                 for v in fixed[column]]
        return pa.Table.from_pandas(fixed, preserve_index=False)


def _store(ws: Workspace, ref: DatasetRef, inputs: Inputs, sections: list[Section], policy: policymod.Policy,
           seconds: float) -> Scorecard:
    report_id = ws.new_id()
    graded = grade(_metric_frame(sections), policy)
    status = policymod.worst(list(graded["grade"]))
    notes = [f"{s.name}: {n}" for s in sections for n in s.notes]
    card = Scorecard(report_id, ref, inputs, sections, graded, status, notes)
    table = graded.assign(report_id=report_id, dataset=ref.name, version=ref.version)
    manifest = {
        "report_id": report_id, "created_at": utc_now(), "dataset": ref.name, "version": ref.version,
        **inputs.as_dict(), "policy": policy.source, "policy_digest": policy.digest, "policy_text": policy.text,
        "status": status, "sections": card.section_status(), "notes": notes, "seconds": round(seconds, 2),
        "evidence": sorted(f"{s.name}.{name}" for s in sections for name in s.evidence),
    }
    with ws.staged(ws.artefact_dir("reports", report_id)) as tmp:
        atomic_write_parquet(tmp / "metrics.parquet", schemas.to_table(table, schemas.REPORT_METRICS))
        (tmp / "evidence").mkdir()
        for s in sections:
            for name, frame in s.evidence.items():
                atomic_write_parquet(tmp / "evidence" / f"{s.name}.{name}.parquet", _evidence_table(frame))
        atomic_write_json(tmp / "manifest.json", manifest)
    return card


# -- reading ----------------------------------------------------------------------------------------------------


def latest(ws: Workspace, dataset: DatasetRef) -> dict[str, Any] | None:
    """The newest scorecard manifest of ``dataset`` (resolved to a version), or None."""
    ref = ws.resolve(dataset)
    found = [m for m in manifests(ws) if m["dataset"] == ref.name and m["version"] == ref.version]
    return found[-1] if found else None


def manifests(ws: Workspace) -> list[dict[str, Any]]:
    """Every scorecard manifest, oldest first."""
    out = [json.loads(p.read_text(encoding="utf-8")) for p in ws.reports_dir.glob("*/manifest.json")]
    return sorted(out, key=lambda m: m["report_id"])


def metrics(ws: Workspace, report_id: str) -> pd.DataFrame:
    return ws.read_parquet(ws.artefact_dir("reports", report_id) / "metrics.parquet")


def evidence(ws: Workspace, report_id: str, section: str, table: str) -> pd.DataFrame:
    name = f"{check_name(section, 'section')}.{check_name(table, 'evidence table')}.parquet"
    path = ws.artefact_dir("reports", report_id) / "evidence" / name
    if not path.is_file():
        raise WorkspaceError(f"scorecard {report_id} has no evidence table {section}.{table}")
    return ws.read_parquet(path)


def policy_of(manifest: dict[str, Any], known_keys: set[str] | None = None) -> policymod.Policy:
    """The policy a scorecard was graded with (its text is stored with it)."""
    return policymod.parse(manifest["policy_text"], manifest["policy"], known_keys)


def scorecards(ws: Workspace) -> pd.DataFrame:
    """The newest scorecard of each synthetic dataset version: one row per version with its grades per section."""
    rows = []
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for m in manifests(ws):
        newest[(m["dataset"], m["version"])] = m
    for (name, version), m in sorted(newest.items()):
        rows.append({"dataset": name, "version": version, "ref": f"{name}@{version}", "report_id": m["report_id"],
                     "created_at": m["created_at"], "status": m["status"], **m["sections"],
                     "reference": m.get("reference"), "source": m.get("source"), "holdout": m.get("holdout")})
    return pd.DataFrame(rows, columns=["dataset", "version", "ref", "report_id", "created_at", "status", *SECTIONS,
                                       "reference", "source", "holdout"])


def version_trends(ws: Workspace) -> pd.DataFrame:
    """Every metric of the newest scorecard of every version, in version order per dataset (for trend lines).

    ``order`` numbers a dataset's versions by when they were ingested; ``ingested_at`` is that date.
    """
    frame = ws.query("""
        SELECT m.dataset, m.version, m.section, m.key, m.label, m.value, m.higher_is_better, m.grade, m.detail,
               d.created_at AS ingested_at,
               dense_rank() OVER (PARTITION BY m.dataset ORDER BY d.created_at, m.version) AS "order"
        FROM latest_report_metrics m JOIN datasets d ON d.name = m.dataset AND d.version = m.version
        ORDER BY m.dataset, "order", m.key""")
    frame["ingested_at"] = pd.to_datetime(frame["ingested_at"])
    return frame
