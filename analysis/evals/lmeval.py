"""lm-eval: run tasks for a run, and import lm-eval output folders, per sample.

An eval is one run × one lm-eval task: ``evals/<eval_id>/samples.parquet`` (one
row per doc and filter, :data:`synthscope.core.schemas.EVAL_SAMPLES`), ``manifest.json``
(run, task, model, the aggregate metrics from ``results_*.json``, lm-eval
version) and ``errors.jsonl`` (sample lines that could not be read). Views:
``evals`` and ``eval_samples``.

Importing
    :func:`import_folder` reads an lm-eval output folder (``--output_path`` of
    ``lm_eval --log_samples``): every ``results_<date>.json`` and, per task in
    it, ``samples_<task>_<date>.jsonl``. lm-eval writes numbers as strings in
    places (``filtered_resps`` holds ``["-12.3", "False"]`` pairs); they are
    cast. A line that cannot be read is reported as ``file:line: reason`` and the
    other lines still load. Importing the same samples file for the same run
    again returns the eval already made from it (nothing new is written).

Linking to the benchmark
    Each sample is matched to the benchmark's record with the same ``doc_id``
    (ingest of an lm-eval task stores lm-eval's ``doc_id``: the doc's index in the
    evaluated split) and its ``doc_hash`` is compared with the record's; only a
    sample whose hash agrees gets the record's ``record_id``. Mismatches and docs
    missing from the benchmark are counted, their first doc ids listed, and never
    linked: a different split or version of the data shows up as mismatches, not
    as silently wrong joins.

Running
    :func:`run_eval` evaluates a run's model on tasks through
    ``lm_eval.simple_evaluate(log_samples=True)``, task by task with one loaded
    model (progress per task), on CUDA when present. Hugging Face libraries run
    offline with their caches in ``indexes/hf`` of the workspace unless
    ``online`` is set; remote code is refused unless ``trust_remote_code``.
    lm-eval's output folder is staged and moved to ``lmeval/<output_id>/``, then
    imported.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from synthscope.core import schemas
from synthscope.core.base import utc_now
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError, atomic_write_json, atomic_write_parquet
from synthscope.datasets.ingest import RowError
from synthscope.evals.runs import get_run

Progress = Callable[[int, int, str], None]

MAX_ERRORS_KEPT = 1000
SHOWN_DOC_IDS = 5  # doc ids named in a mismatch message
CORE_METRICS = ("acc", "acc_norm", "exact_match")
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


class EvalError(WorkspaceError):
    """The eval as a whole cannot be run or imported; nothing was written. The message says why."""


@dataclass
class EvalImport:
    """What one import (one run × task) did."""

    eval_id: str
    task: str
    rows: int
    created: bool = True  # False: this samples file was already imported for this run
    benchmark: DatasetRef | None = None
    linked: int = 0
    hash_mismatches: int = 0
    mismatch_doc_ids: list[int] = field(default_factory=list)
    missing_docs: int = 0
    missing_doc_ids: list[int] = field(default_factory=list)
    link_note: str | None = None  # why nothing was linked, when nothing was
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    metrics: dict[str, float] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        """Messages for the user, one per problem, each saying what it means."""
        out = []
        bench = str(self.benchmark) if self.benchmark else ""
        if self.hash_mismatches:
            out.append(
                f"{self.task}: doc_hash differs from {bench} for {self.hash_mismatches} of {self.rows} samples "
                f"(doc_ids {_ids(self.mismatch_doc_ids, self.hash_mismatches)}): the eval ran on other data than "
                "this benchmark version holds (another split, version or preprocessing); those samples are not "
                "linked to benchmark records")
        if self.missing_docs:
            out.append(
                f"{self.task}: {self.missing_docs} samples have a doc_id that {bench} does not have "
                f"(doc_ids {_ids(self.missing_doc_ids, self.missing_docs)}); they are not linked")
        if self.link_note:
            out.append(f"{self.task}: {self.link_note}")
        if self.error_count:
            out.append(f"{self.task}: {self.error_count} sample lines were not imported:")
            out.extend(f"  {e}" for e in self.errors[:20])
            if self.error_count > 20:
                out.append(f"  ... and {self.error_count - 20} more in evals/{self.eval_id}/errors.jsonl")
        return out


def _ids(ids: list[int], total: int) -> str:
    return ", ".join(map(str, ids)) + (", ..." if total > len(ids) else "")


def doc_hash(doc: dict[str, Any]) -> str:
    """lm-eval's hash of a doc (``doc_hash`` in its sample logs), as ``synthscope.datasets.ingest`` stores it."""
    from lm_eval.utils import handle_non_serializable, hash_string

    return hash_string(json.dumps(doc, indent=2, default=handle_non_serializable, ensure_ascii=False))


# -- reading lm-eval output ------------------------------------------------------------------


@dataclass
class TaskOutput:
    """One task's output inside an lm-eval output folder."""

    task: str
    results_path: Path
    samples_path: Path
    results: dict[str, Any]

    @property
    def output_type(self) -> str | None:
        return (self.results.get("configs", {}).get(self.task) or {}).get("output_type")

    @property
    def model(self) -> str | None:
        args = (self.results.get("config") or {}).get("model_args")
        if isinstance(args, dict) and args.get("pretrained"):
            return str(args["pretrained"])
        return self.results.get("model_name") or (self.results.get("config") or {}).get("model")

    def metrics(self) -> dict[str, float]:
        """The task's aggregate metrics (``"acc,none"`` → 0.42); "N/A" and other non-numbers are left out."""
        out = {}
        for key, value in (self.results.get("results", {}).get(self.task) or {}).items():
            if "," in key:
                number = _number(value)
                if number is not None:
                    out[key] = number
        return out


def find_outputs(folder: Path) -> list[TaskOutput]:
    """Every task of every ``results_*.json`` under ``folder``, paired with its samples file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvalError(f"{folder} is not a folder; give the folder lm-eval wrote (its --output_path)")
    results_files = sorted(folder.rglob("results_*.json"))
    if not results_files:
        raise EvalError(f"no results_*.json under {folder}: is it an lm-eval output folder (--output_path)?")
    out, missing = [], []
    for path in results_files:
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise EvalError(f"{path}: not valid JSON ({exc}); lm-eval may have been interrupted while writing it") \
                from exc
        if not isinstance(results, dict) or not isinstance(results.get("configs"), dict):
            raise EvalError(f"{path}: no 'configs' section; this is not an lm-eval results file")
        date_id = path.stem[len("results_"):]
        for task in results["configs"]:
            samples = path.with_name(f"samples_{task}_{date_id}.jsonl")
            if not samples.is_file():
                candidates = sorted(path.parent.glob(f"samples_{task}_*.jsonl"))
                samples = candidates[0] if len(candidates) == 1 else samples
            if samples.is_file():
                out.append(TaskOutput(task, path, samples, results))
            else:
                missing.append(f"{task} ({path.name})")
    if not out:
        raise EvalError(f"no samples_<task>_*.jsonl under {folder} for {', '.join(missing)}: "
                        "lm-eval writes per-sample logs only with --log_samples")
    return out


def _number(value: Any) -> float | None:
    """A float from lm-eval's logged value: numbers, "1.0", "True", [0.5]; None where it is not a number."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text in ("True", "False"):
            return float(text == "True")
        try:
            return float(text)
        except ValueError:
            return None
    return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("True", "False", "true", "false"):
        return value.lower() == "true"
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    return None


class _BadSample(Exception):
    pass


def _continuations(arguments: Any) -> list[str] | None:
    """The scored continuations of loglikelihood requests, from lm-eval's (sanitised) ``arguments``."""
    if isinstance(arguments, dict):
        keys = sorted(arguments, key=lambda k: int(re.sub(r"\D", "", k) or 0))
        args = [arguments[k] for k in keys]
        args = [[a[k] for k in sorted(a, key=lambda k: int(re.sub(r"\D", "", k) or 0))] if isinstance(a, dict)
                else a for a in args]
    elif isinstance(arguments, list):
        args = arguments
    else:
        return None
    out = []
    for a in args:
        if not isinstance(a, (list, tuple)) or len(a) < 2 or not isinstance(a[1], str):
            return None
        out.append(a[1])
    return out


def _argmax(values: list[float]) -> int | None:
    best = None
    for i, v in enumerate(values):
        if not math.isnan(v) and (best is None or v > values[best]):
            best = i
    return best


def parse_sample(obj: Any, output_type: str | None, metric_names: list[str],
                 target_delimiter: str = " ") -> dict[str, Any]:
    """One decoded samples_*.jsonl line → an :data:`EVAL_SAMPLES` row; raises :class:`_BadSample` if unusable.

    ``target_delimiter`` (the task's, " " by default) is what lm-eval puts before
    each choice in the scored continuation; it is taken off again so that
    ``choices`` are the task's choices and ``chosen_norm`` is lm-eval's acc_norm pick
    (log-likelihood per character of the choice).
    """
    if not isinstance(obj, dict):
        raise _BadSample(f"expected a JSON object, got {type(obj).__name__}")
    doc_id = obj.get("doc_id")
    if isinstance(doc_id, str) and doc_id.strip().isdigit():
        doc_id = int(doc_id)
    if not isinstance(doc_id, int) or isinstance(doc_id, bool) or doc_id < 0:
        raise _BadSample(f"doc_id is missing or not a non-negative integer: {doc_id!r}")
    row: dict[str, Any] = {"doc_id": doc_id, "filter": str(obj.get("filter") or "none"),
                           "output_type": output_type}
    for key in ("doc_hash", "prompt_hash", "target_hash"):
        value = obj.get(key)
        row[key] = value if isinstance(value, str) else None
    target = obj.get("target")
    row["target"] = None if target is None else (target if isinstance(target, str) else json.dumps(target))

    names = obj.get("metrics") if isinstance(obj.get("metrics"), list) else metric_names
    metrics = []
    for name in names:
        if not isinstance(name, str) or name not in obj:
            continue
        number = _number(obj[name])
        if number is None:
            if name in CORE_METRICS:
                raise _BadSample(f"{name} is not a number: {obj[name]!r}")
            continue  # e.g. bleu logs (reference, prediction) pairs per sample; only the aggregate is a number
        metrics.append((name, number))
        if name in CORE_METRICS:
            row[name] = number
    row["metrics"] = metrics

    resps = obj.get("filtered_resps")
    if resps is None:
        resps = obj.get("resps")
    if output_type == "generate_until":
        while isinstance(resps, list) and resps:
            resps = resps[0]
        row["generated"] = resps if isinstance(resps, str) else None
    elif isinstance(resps, list) and output_type in (None, "multiple_choice", "loglikelihood",
                                                      "loglikelihood_rolling"):
        lls, greedy = [], []
        for i, entry in enumerate(resps):
            if isinstance(entry, list) and len(entry) == 1 and isinstance(entry[0], list):
                entry = entry[0]  # unfiltered resps nest one level deeper
            ll_value = entry[0] if isinstance(entry, (list, tuple)) and entry else entry
            ll = _number(ll_value)
            if ll is None:
                if output_type is None:
                    lls = []
                    break
                raise _BadSample(f"filtered_resps[{i}]: log-likelihood {ll_value!r} is not a number")
            lls.append(ll)
            greedy.append(_bool(entry[1]) if isinstance(entry, (list, tuple)) and len(entry) > 1 else None)
        if lls:
            row["loglikelihoods"] = lls
            row["is_greedy"] = greedy if all(g is not None for g in greedy) else None
            row["chosen"] = _argmax(lls)
            choices = _continuations(obj.get("arguments"))
            if choices is not None and target_delimiter:
                choices = [c[len(target_delimiter):] if c.startswith(target_delimiter) else c for c in choices]
            if choices is not None and len(choices) == len(lls):
                row["choices"] = choices
                if all(choices):
                    row["chosen_norm"] = _argmax([ll / len(c) for ll, c in zip(lls, choices)])
                if output_type == "multiple_choice" and isinstance(target, (str, int)):
                    text = str(target).strip()
                    if text.isdigit() and int(text) < len(choices):
                        row["target_index"] = int(text)
                    elif text in (c.strip() for c in choices):
                        row["target_index"] = [c.strip() for c in choices].index(text)
    return row


def _read_samples(output: TaskOutput) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line, row, error) for every non-blank line of the task's samples file."""
    metric_names = sorted({k.split(",")[0] for k in output.metrics() if "_stderr" not in k})
    output_type = output.output_type
    delimiter = (output.results["configs"].get(output.task) or {}).get("target_delimiter", " ")
    delimiter = delimiter if isinstance(delimiter, str) else " "
    with open(output.samples_path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except UnicodeDecodeError as exc:
                yield n, None, f"not valid UTF-8 ({exc.reason})"
                continue
            except ValueError as exc:
                yield n, None, f"malformed JSON ({exc})"
                continue
            try:
                yield n, parse_sample(obj, output_type, metric_names, delimiter), None
            except _BadSample as exc:
                yield n, None, str(exc)


# -- importing -------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def eval_manifests(ws: Workspace) -> list[dict[str, Any]]:
    """Every eval's manifest, oldest first."""
    out = [json.loads(p.read_text(encoding="utf-8")) for p in ws.evals_dir.glob("*/manifest.json")]
    return sorted(out, key=lambda m: (m["created_at"], m["eval_id"]))


def _pick_benchmark(ws: Workspace, task: str, given: list[DatasetRef], n_tasks: int) -> tuple[DatasetRef | None, str]:
    """The benchmark version to check ``task``'s docs against, or None and why not."""
    source = f"lm-eval:{task}"
    if given:
        resolved = [ws.resolve(ref) for ref in given]
        for ref in resolved:
            if ws.manifest(ref).get("source") == source:
                return ref, ""
        if len(resolved) == 1 and n_tasks == 1:
            return resolved[0], ""  # the user's choice; the doc_hash check guards it
        return None, (f"none of the benchmarks given ({', '.join(map(str, resolved))}) was ingested from lm-eval "
                      f"task {task!r}; samples not linked to benchmark records")
    found = [m for m in ws.manifests() if m["kind"] == "benchmark" and m.get("source") == source]
    if not found:
        return None, (f"no benchmark in the workspace was ingested from lm-eval task {task!r}; samples not linked "
                      f"(ingest it with `synthscope ingest {task} --format lm-eval --kind benchmark --name NAME`, "
                      "or pass --benchmark NAME@VERSION)")
    return DatasetRef(found[-1]["name"], found[-1]["version"]), ""


def _link(ws: Workspace, rows: list[dict[str, Any]], bench: DatasetRef, result: EvalImport) -> None:
    """Give each row its benchmark record where doc_id and doc_hash agree; count what does not."""
    con = ws.connect()
    try:
        records = con.execute(
            "SELECT doc_id, doc_hash, record_id FROM records WHERE dataset = ? AND version = ? AND doc_id IS NOT NULL",
            [bench.name, bench.version]).fetchall()
    finally:
        con.close()
    if not records:
        result.link_note = (f"{bench} has no lm-eval doc ids (it was not ingested with --format lm-eval), so "
                            "doc_hash cannot be checked; samples not linked")
        return
    by_doc = {doc_id: (h, rid) for doc_id, h, rid in records}
    result.benchmark = bench
    mismatched, missing = set(), set()
    for row in rows:
        row["benchmark"], row["benchmark_version"] = bench.name, bench.version
        found = by_doc.get(row["doc_id"])
        if found is None:
            row["doc_hash_ok"] = False
            missing.add(row["doc_id"])
        elif found[0] is None or found[0] != row["doc_hash"]:
            row["doc_hash_ok"] = False
            mismatched.add(row["doc_id"])
        else:
            row["doc_hash_ok"], row["record_id"] = True, found[1]
            result.linked += 1
    result.hash_mismatches, result.missing_docs = len(mismatched), len(missing)
    result.mismatch_doc_ids = sorted(mismatched)[:SHOWN_DOC_IDS]
    result.missing_doc_ids = sorted(missing)[:SHOWN_DOC_IDS]


def import_folder(ws: Workspace, folder: str | Path, run_id: str,
                  benchmarks: list[DatasetRef] | None = None, tasks: list[str] | None = None) -> list[EvalImport]:
    """Import every task's samples under lm-eval output ``folder`` as evals of ``run_id``."""
    run = get_run(ws, run_id)
    outputs = find_outputs(Path(folder))
    if tasks:
        unknown = sorted(set(tasks) - {o.task for o in outputs})
        if unknown:
            raise EvalError(f"{folder} has no samples for {', '.join(unknown)}; "
                            f"it has {', '.join(sorted({o.task for o in outputs}))}")
        outputs = [o for o in outputs if o.task in tasks]
    # Check every benchmark choice before writing anything.
    picks = [_pick_benchmark(ws, o.task, list(benchmarks or []), len(outputs)) for o in outputs]
    return [_import_one(ws, run, o, bench, note) for o, (bench, note) in zip(outputs, picks, strict=True)]


def _import_one(ws: Workspace, run: dict[str, Any], output: TaskOutput, bench: DatasetRef | None,
                note: str) -> EvalImport:
    sha = _sha256(output.samples_path)
    for m in eval_manifests(ws):
        if m["run_id"] == run["run_id"] and m["task"] == output.task and m.get("samples_sha256") == sha:
            return EvalImport(
                m["eval_id"], output.task, m["samples"], created=False,
                benchmark=DatasetRef(m["benchmark"], m["benchmark_version"]) if m.get("benchmark") else None,
                linked=m.get("linked", 0), hash_mismatches=m.get("hash_mismatches", 0),
                mismatch_doc_ids=m.get("mismatch_doc_ids", [])[:SHOWN_DOC_IDS],
                missing_docs=m.get("missing_docs", 0), missing_doc_ids=m.get("missing_doc_ids", [])[:SHOWN_DOC_IDS],
                error_count=m.get("errors", 0), metrics=m.get("metrics", {}))

    eval_id = ws.new_id()
    result = EvalImport(eval_id, output.task, 0, metrics=output.metrics(), link_note=note or None)
    label = str(output.samples_path)
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[int, str], int] = {}
    for line, row, error in _read_samples(output):
        if row is not None:
            key = (row["doc_id"], row["filter"])
            if key in seen:
                error, row = f"doc_id {key[0]} (filter {key[1]}) again; first at line {seen[key]}", None
            else:
                seen[key] = line
        if row is None:
            result.error_count += 1
            if len(result.errors) < MAX_ERRORS_KEPT:
                result.errors.append(RowError(label, line, error or "unreadable"))
            continue
        row.update(eval_id=eval_id, run_id=run["run_id"], task=output.task, source_line=line)
        rows.append(row)
    if not rows:
        detail = "; ".join(str(e) for e in result.errors[:3])
        raise EvalError(f"no sample of {label} could be imported" + (f": {detail}" if detail else " (empty file)"))
    result.rows = len(rows)
    if bench is not None:
        _link(ws, rows, bench, result)

    table = pa.Table.from_pylist(rows, schema=schemas.EVAL_SAMPLES)
    manifest = {
        "eval_id": eval_id, "created_at": utc_now(), "run_id": run["run_id"], "task": output.task,
        "model": output.model or run["model"], "output_type": output.output_type,
        "lm_eval_version": output.results.get("lm_eval_version"), "metrics": result.metrics,
        "n_samples": (output.results.get("n-samples") or {}).get(output.task),
        "num_fewshot": (output.results.get("n-shot") or {}).get(output.task),
        "samples": result.rows, "errors": result.error_count,
        "benchmark": result.benchmark.name if result.benchmark else None,
        "benchmark_version": result.benchmark.version if result.benchmark else None,
        "linked": result.linked, "hash_mismatches": result.hash_mismatches,
        "mismatch_doc_ids": result.mismatch_doc_ids, "missing_docs": result.missing_docs,
        "missing_doc_ids": result.missing_doc_ids, "link_note": result.link_note,
        "source": str(output.results_path.parent), "results_file": output.results_path.name,
        "samples_file": output.samples_path.name, "samples_sha256": sha,
    }
    with ws.staged(ws.artefact_dir("evals", eval_id)) as tmp:
        atomic_write_parquet(tmp / "samples.parquet", table)
        if result.errors:
            (tmp / "errors.jsonl").write_text(
                "".join(json.dumps({"file": e.file, "line": e.line, "message": e.message}) + "\n"
                        for e in result.errors), encoding="utf-8")
        atomic_write_json(tmp / "manifest.json", manifest)
    return result


def read_errors(ws: Workspace, eval_id: str) -> list[RowError]:
    path = ws.artefact_dir("evals", eval_id) / "errors.jsonl"
    if not path.exists():
        return []
    return [RowError(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


# -- running ---------------------------------------------------------------------------------


@contextmanager
def hf_environment(ws: Workspace, online: bool = False) -> Iterator[Path]:
    """Hugging Face libraries offline (unless ``online``), caches in ``indexes/hf``; restored afterwards.

    The variables are read when the libraries are imported, so in a fresh process
    (the CLI, a job) this is complete; where ``datasets`` or ``huggingface_hub``
    are already imported, their cache and offline settings are switched as well.
    """
    home = ws.indexes_dir / "hf"
    home.mkdir(parents=True, exist_ok=True)
    saved_env = {k: os.environ.get(k) for k in (*_OFFLINE_VARIABLES, "HF_HOME")}
    patched: list[tuple[Any, str, Any]] = []

    def patch(module_name: str, attr: str, value: Any) -> None:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, attr):
            patched.append((module, attr, getattr(module, attr)))
            setattr(module, attr, value)

    for var in _OFFLINE_VARIABLES:
        if online:
            os.environ.pop(var, None)
        else:
            os.environ[var] = "1"
    os.environ["HF_HOME"] = str(home)
    patch("datasets.config", "HF_DATASETS_CACHE", home / "datasets")
    patch("datasets.config", "HF_DATASETS_OFFLINE", not online)
    patch("huggingface_hub.constants", "HF_HUB_OFFLINE", not online)
    patch("huggingface_hub.constants", "HF_HUB_CACHE", str(home / "hub"))
    try:
        yield home
    finally:
        for module, attr, value in reversed(patched):
            setattr(module, attr, value)
        for var, value in saved_env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


@dataclass
class EvalRun:
    output_dir: Path  # lm-eval's output folder, under lmeval/
    imports: list[EvalImport]
    device: str


def run_eval(ws: Workspace, run_id: str, tasks: list[str], *, include_path: str | Path | None = None,
             limit: int | float | None = None, device: str = "auto", batch_size: int | str = 1,
             num_fewshot: int | None = None, trust_remote_code: bool = False, online: bool = False,
             benchmarks: list[DatasetRef] | None = None, progress: Progress | None = None) -> EvalRun:
    """Evaluate run ``run_id``'s model on ``tasks`` with lm-eval and import the per-sample results."""
    from synthscope.compute.device import pick_device

    run = get_run(ws, run_id)
    if not tasks:
        raise EvalError("name at least one lm-eval task")
    report = progress or (lambda done, total, message: None)
    total = len(tasks) + 2
    if include_path is not None:
        include_path = Path(include_path).resolve()
        if not include_path.is_dir():
            raise EvalError(f"--include-path {include_path} is not a folder of task YAMLs")
    device = pick_device(device)
    output_id = ws.new_id()
    with hf_environment(ws, online):
        import lm_eval
        from lm_eval.loggers import EvaluationTracker
        from lm_eval.tasks import TaskManager

        report(0, total, "loading tasks")
        manager = TaskManager(include_path=str(include_path) if include_path else None)
        unknown = [t for t in tasks if t not in manager.task_index]
        if unknown:
            raise EvalError(f"unknown lm-eval task(s): {', '.join(unknown)}"
                            + ("" if include_path else "; a local task YAML needs --include-path FOLDER"))
        report(0, total, f"loading model {run['model']} on {device}")
        lm = _load_model(run, device, batch_size, trust_remote_code, online)
        with ws.staged(ws.artefact_dir("lmeval", output_id)) as tmp:
            for i, task in enumerate(tasks):
                report(1 + i, total, f"evaluating {task}")
                tracker = EvaluationTracker(output_path=str(tmp))
                try:
                    results = lm_eval.simple_evaluate(
                        model=lm, model_args={"pretrained": run["model"]}, tasks=[task], num_fewshot=num_fewshot,
                        limit=limit, log_samples=True, evaluation_tracker=tracker, task_manager=manager,
                        device=device, batch_size=batch_size)
                except Exception as exc:  # lm-eval raises many types; the message is what matters
                    raise EvalError(f"lm-eval failed on task {task!r}: {type(exc).__name__}: {exc}"
                                    + _offline_hint(exc, online)) from exc
                if results is None:
                    raise EvalError(f"lm-eval returned no results for {task!r}")
                samples = results.pop("samples")
                tracker.save_results_aggregated(results=results, samples=samples)
                for name in results["configs"]:
                    tracker.save_results_samples(task_name=name, samples=samples[name])
            # lm-eval logs a warning and carries on when it cannot write; refuse a folder without its files.
            if not list(tmp.rglob("results_*.json")) or not list(tmp.rglob("samples_*.jsonl")):
                raise EvalError(f"lm-eval did not write its results to {tmp} (see the log above)")
    out_dir = ws.artefact_dir("lmeval", output_id)
    report(len(tasks) + 1, total, "importing samples")
    imports = import_folder(ws, out_dir, run_id, benchmarks)
    report(total, total, "done")
    return EvalRun(out_dir, imports, device)


def _load_model(run: dict[str, Any], device: str, batch_size: int | str, trust_remote_code: bool,
                online: bool) -> Any:
    from lm_eval.models.huggingface import HFLM

    try:
        return _bars_follow_tqdm_disable(HFLM(pretrained=run["model"], device=device, batch_size=batch_size,
                                              trust_remote_code=trust_remote_code))
    except Exception as exc:
        hint = ""
        if run.get("model_source") == "hub" and not online:
            hint = (f"; {run['model']} is a hub id and synthscope runs offline: pass --online to download it into "
                    "the workspace (indexes/hf), or record the run with a local model folder")
        elif "trust_remote_code" in str(exc):
            hint = "; the model needs its own code: pass --trust-remote-code if you trust it"
        raise EvalError(f"could not load model {run['model']!r}: {type(exc).__name__}: {exc}{hint}") from exc


REQUEST_METHODS = ("loglikelihood", "loglikelihood_rolling", "generate_until")  # lm-eval's LM interface


def _bars_follow_tqdm_disable(lm: Any) -> Any:
    """Hand ``TQDM_DISABLE`` (the demo sets it: synthscope.cli.quiet.only_own_bars) on to lm-eval's request bars.

    lm-eval passes ``disable`` to tqdm itself ("Tokenizing inputs", "Running loglikelihood
    requests"), which overrides the variable; its evaluator calls these methods without
    ``disable_tqdm``, so the model is given it here. tqdm takes any non-empty value for true.
    """
    if os.environ.get("TQDM_DISABLE"):
        for name in REQUEST_METHODS:
            setattr(lm, name, functools.partial(getattr(lm, name), disable_tqdm=True))
    return lm


def _offline_hint(exc: Exception, online: bool) -> str:
    text = str(exc).lower()
    if not online and ("offline" in text or "hub" in text or "connection" in text):
        return (" — the task's data is on the Hugging Face Hub and synthscope runs offline by default; "
                "pass --online to download it")
    return ""
