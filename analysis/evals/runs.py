"""Runs: a trained model (local folder or hub id) with the manifest of what it was trained on.

A run is ``runs/<run_id>/manifest.json``, written once through the workspace's
staging folder and never edited; the ``runs`` view reads every manifest. Evals
(``synthscope.evals.lmeval``) name the run they scored, so a comparison can ask
which runs saw which synthetic data.
"""

from __future__ import annotations

import json
import re
from datetime import date as _date
from datetime import datetime
from pathlib import Path
from typing import Any

from synthscope.core.base import utc_now
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError, atomic_write_json, check_name, is_name

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def _default_id(ws: Workspace, model: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model.rstrip("/")).name).strip("-._")[:90] or "run"
    taken = {m["run_id"] for m in list_runs(ws)}
    run_id, n = base, 1
    while run_id in taken:
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def _check_date(value: str) -> str:
    try:
        return (_date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)).isoformat()
    except ValueError as exc:
        raise WorkspaceError(f"date {value!r} is not an ISO date; write it as YYYY-MM-DD") from exc


def _dataset_entry(ws: Workspace, text: str) -> tuple[dict[str, str | None], str | None]:
    """``NAME[@VERSION]`` → the manifest entry, pinned to a version where the workspace knows the dataset."""
    ref = DatasetRef.parse(text)
    check_name(ref.name, "dataset name")
    if ref.version is not None:
        check_name(ref.version, "version")
    if ws.versions(ref.name):
        ref = ws.resolve(ref)
        return {"name": ref.name, "version": ref.version}, None
    return ({"name": ref.name, "version": ref.version},
            f"dataset {ref.name!r} is not in this workspace; recorded as given")


def add_run(ws: Workspace, model: str, *, run_id: str | None = None, base_model: str | None = None,
            datasets: list[str] | tuple[str, ...] = (), synthetic_share: float | None = None,
            tags: list[str] | tuple[str, ...] = (), date: str | None = None,
            notes: str | None = None) -> dict[str, Any]:
    """Record a run; returns its manifest (with ``warnings``, not stored, for the caller to show).

    ``model`` is a local folder (stored as an absolute path) or a hub id such as
    ``org/name``. ``datasets`` are ``NAME[@VERSION]``; a dataset the workspace
    holds is pinned to its newest version when no version is given.
    ``synthetic_share`` is the fraction (0 to 1) of training examples that were synthetic.
    """
    model = model.strip()
    if not model:
        raise WorkspaceError("a run needs a model: a local folder or a hub id such as org/name")
    local = Path(model).expanduser()
    if local.exists():
        if not local.is_dir():
            raise WorkspaceError(f"model {model!r} is a file; give the model's folder (with config.json)")
        model, source = str(local.resolve()), "local"
    elif model.startswith((".", "/", "~")) or not _HUB_ID.match(model):
        raise WorkspaceError(f"model {model!r} is neither an existing folder nor a hub id (org/name)")
    else:
        source = "hub"
    folder = ws.artefact_dir("runs", _default_id(ws, model) if run_id is None else run_id)
    run_id = folder.name
    if (folder / "manifest.json").exists():
        raise WorkspaceError(f"run {run_id!r} already exists; runs are never overwritten, choose another --id")
    if synthetic_share is not None and not 0.0 <= synthetic_share <= 1.0:
        raise WorkspaceError(f"synthetic share {synthetic_share} is not a fraction between 0 and 1 (30% is 0.3)")
    entries, warnings = [], []
    for text in datasets:
        entry, warning = _dataset_entry(ws, text)
        entries.append(entry)
        if warning:
            warnings.append(warning)
    manifest: dict[str, Any] = {
        "run_id": run_id, "created_at": utc_now(), "model": model, "model_source": source,
        "base_model": base_model or None, "datasets": entries, "synthetic_share": synthetic_share,
        "tags": list(dict.fromkeys(t.strip() for t in tags if t.strip())),
        "date": _check_date(date) if date else None, "notes": notes or None,
    }
    with ws.staged(folder) as tmp:
        atomic_write_json(tmp / "manifest.json", manifest)
    return {**manifest, "warnings": warnings}


def list_runs(ws: Workspace) -> list[dict[str, Any]]:
    """Every run's manifest, oldest first."""
    out = [json.loads(p.read_text(encoding="utf-8")) for p in ws.runs_dir.glob("*/manifest.json")]
    return sorted(out, key=lambda m: (m["created_at"], m["run_id"]))


def get_run(ws: Workspace, run_id: str) -> dict[str, Any]:
    path = ws.artefact_dir("runs", run_id) / "manifest.json" if is_name(run_id) else None
    if path is None or not path.is_file():
        known = sorted(m["run_id"] for m in list_runs(ws))
        raise WorkspaceError(f"no run {run_id!r} in {ws.root}"
                             + (f"; runs: {', '.join(known)}" if known else "; record one with `synthscope run add`"))
    return json.loads(path.read_text(encoding="utf-8"))
