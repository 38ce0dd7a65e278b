"""synthscope's command line: each command is a thin call into the analysis modules.

    synthscope init PATH
    synthscope ingest SOURCE --name NAME --kind KIND [mapping options]
    synthscope datasets
    synthscope scan --synthetic NAME[@VERSION] ... --benchmark NAME[@VERSION] ... [--engine ray [--address A]]
    synthscope calibrate --benchmark NAME[@VERSION] (--positives NAME[@VERSION] | --truth FILE)
    synthscope run add --model PATH_OR_HUB_ID [--id RUN_ID] [--base-model M] [--dataset NAME@VERSION ...]
    synthscope run list
    synthscope eval run --run RUN_ID --tasks T1 [T2 ...] [--include-path DIR] [--limit N] [--device auto|cpu|cuda]
    synthscope eval import FOLDER --run RUN_ID [--benchmark NAME@VERSION]
    synthscope eval list
    synthscope eval mink --run RUN_ID [--benchmark NAME@VERSION] [--k 0.2] [--device auto|cpu|cuda]
    synthscope compare --baseline RUN_ID --candidate RUN_ID --task TASK [--task ...]
    synthscope score NAME@VERSION [--reference R] [--source S] [--holdout H] [--policy FILE]
    synthscope gate NAME@VERSION [--policy FILE] [--json OUT]     exit 0 pass/warn, 1 fail, 2 error
    synthscope report NAME@VERSION [-o report.html]
    synthscope policy
    synthscope generate --seeds NAME@VERSION --template FILE --output NAME [--model M] [--n 1] [--limit N]
    synthscope sql "SELECT ... FROM latest_verdicts"
    synthscope gc
    synthscope demo PATH
    synthscope push [PATH] s3://BUCKET/PREFIX
    synthscope serve [PATH | s3://BUCKET/PREFIX] [--host 127.0.0.1] [--port 8501] [--secrets FILE] [--no-auth]
                     [--import-dir DIR ...] [--task-dir DIR ...]

The workspace is ``--workspace``, else ``$SYNTHSCOPE_WORKSPACE``, else ``./workspace``.
An ``s3://`` workspace (one that ``push`` published) opens read-only; see analysis.remote.
A problem the user can fix (a bad name, a missing dataset, a template that cannot
render) prints one line, ``error: ...``, and exits 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from analysis import allowed, hub
from analysis.embeddings import ModelUnavailable
from analysis.ingest import IngestError
from analysis.models import ModelError
from analysis.workspace import KINDS, DatasetRef, Workspace, WorkspaceError

# Jobs started from the dashboard run at this niceness, so twenty sessions stay responsive while a scan runs
# (bench/load_bench.py); its workers inherit it.
JOB_NICENESS = 10


class CliError(Exception):
    pass


# What a user can fix: printed as one line, exit status 2. Anything else is a bug and keeps its traceback.
USER_ERRORS = (WorkspaceError, IngestError, CliError, ModelError, ModelUnavailable, ValueError)


def _one_line(exc: BaseException) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


def _workspace(args: argparse.Namespace) -> Workspace:
    return Workspace.open(args.workspace)


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if value != value else f"{value:.3f}"  # NaN: the stage found nothing
    return str(value)


# -- commands --------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    ws = Workspace.init(args.path)
    print(f"workspace ready at {ws.root}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from analysis.ingest import IngestOptions, ingest  # noqa: I001 - kept beside its use

    ws = _workspace(args)
    hub.configure(ws.root, args.online or None)
    opts = IngestOptions(
        format=args.format, preset=args.preset,
        prompt_fields=tuple(args.prompt_field or ()), answer_fields=tuple(args.answer_field or ()),
        id_field=args.id_field, header=args.header, split=args.split, encoding=args.encoding,
        max_record_bytes=int(args.max_record_mb * 1_000_000), include_path=args.include_path,
        strict=args.strict,
    )
    report = ingest(ws, args.source, name=args.name, kind=args.kind, version=args.version, options=opts)
    print(f"imported {report.rows} rows into {report.ref} ({report.kind}; {report.mapping})")
    if report.duplicate_ids:
        print(f"note: {report.duplicate_ids} rows repeat an earlier id; they were given suffixed ids (~2, ~3, ...)")
    for note in report.notes:
        print(f"note: {note}")
    if report.error_count:
        print(f"{report.error_count} rows were not imported:", file=sys.stderr)
        for error in report.errors[:20]:
            print(f"  {error}", file=sys.stderr)
        if report.error_count > 20:
            print(f"  ... and {report.error_count - 20} more in "
                  f"{ws.dataset_dir(report.ref).relative_to(ws.root)}/errors.jsonl", file=sys.stderr)
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    rows = [(m["name"], m["version"], m["kind"], m["rows"], m["errors"], m["created_at"], m["source"])
            for m in ws.manifests()]
    print(_table(rows, ["name", "version", "kind", "rows", "errors", "created", "source"]) if rows
          else "no datasets yet; import one with `synthscope ingest`")
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from analysis import jobs
    from analysis.contamination.scan import OVERRIDE_FLAGS, config_from, run_scan
    from analysis.engine import engine_from

    ws = _workspace(args)
    reporter = jobs.Reporter(ws, args.job) if args.job else None
    with _reported(reporter):
        config = config_from(ws, {key: getattr(args, flag.lstrip("-").replace("-", "_"))
                                  for key, flag in OVERRIDE_FLAGS.items()})
        engine = engine_from(args.engine, args.address, args.workers)
        synthetics = [DatasetRef.parse(s) for s in args.synthetic]
        summaries = []
        for bench in args.benchmark:
            if reporter:
                summaries.append(run_scan(ws, DatasetRef.parse(bench), synthetics, config,
                                          progress=reporter.progress, engine=engine))
            else:
                summaries.append(_scan_with_bar(ws, DatasetRef.parse(bench), synthetics, config, engine))
    if reporter:
        reporter.succeed({"scan_ids": [s.scan_id for s in summaries]})
    for summary in summaries:
        _print_scan(ws, summary)
    return 0


def _scan_with_bar(ws: Workspace, bench: DatasetRef, synthetics: list[DatasetRef], config: Any,
                   engine: Any) -> Any:
    from tqdm import tqdm

    from analysis.contamination.scan import run_scan

    with tqdm(total=1, unit="rows", unit_scale=True, file=sys.stderr, dynamic_ncols=True) as bar:
        def progress(done: int, total: int, message: str) -> None:
            bar.total = total
            bar.set_description(message)
            bar.n = done
            bar.refresh()

        return run_scan(ws, bench, synthetics, config, progress=progress, engine=engine)


def _print_scan(ws: Workspace, summary: Any) -> None:
    print(f"\nscan {summary.scan_id}: benchmark {summary.benchmark}")
    stages = list(summary.per_synthetic[0].by_stage) if summary.per_synthetic else []
    rows = [(s.synthetic, s.records, s.items, s.contaminated, s.contaminated / s.items if s.items else 0.0,
             *(s.by_stage[k] for k in stages), s.seconds) for s in summary.per_synthetic]
    print(_table(rows, ["synthetic", "records", "items", "contaminated", "share", *stages, "seconds"]))
    top = ws.query(
        "SELECT synthetic || '@' || synthetic_version AS synthetic, item_id, verdict, bucket, coverage,"
        " jaccard, cosine, matched_field FROM verdicts WHERE scan_id = ? AND verdict <> 'clean'"
        " ORDER BY list_position(['exact', 'near_duplicate', 'semantic', 'judged'], verdict),"
        " coverage DESC, jaccard DESC NULLS LAST, cosine DESC NULLS LAST LIMIT 15", [summary.scan_id])
    if len(top):
        print("\nmost contaminated items:")
        print(_table(top.itertuples(index=False), list(top.columns)))
    print(f"\nevidence: synthscope sql \"SELECT * FROM evidence WHERE scan_id = '{summary.scan_id}'\"")


def cmd_calibrate(args: argparse.Namespace) -> int:
    from analysis import jobs
    from analysis.contamination import calibrate
    from analysis.contamination.scan import config_from

    ws = _workspace(args)
    reporter = jobs.Reporter(ws, args.job) if args.job else None
    with _reported(reporter):
        if (args.positives is None) == (args.truth is None):
            raise CliError("give known positives as --positives NAME (row i rephrases benchmark row i) "
                           "or --truth FILE (dataset, version, record_id, task_id, must_flag), not both")
        config = config_from(ws, {"stages": args.stages, "semantic.model": args.model,
                                  "semantic.device": args.device})
        bench = DatasetRef.parse(args.benchmark)
        if args.positives:
            pairset = calibrate.aligned_pairs(ws, bench, DatasetRef.parse(args.positives), args.negatives_per_item)
        else:
            pairset = calibrate.truth_pairs(ws, bench, calibrate.read_truth(Path(args.truth)),
                                            args.negatives_per_item)
        progress = reporter.progress if reporter else _print_progress
        calibration_id = calibrate.run_calibration(ws, pairset, config, args.target_fpr, progress)
    if reporter:
        reporter.succeed({"calibration_id": calibration_id})
    _print_calibration(ws, calibration_id)
    return 0


@contextmanager
def _reported(reporter: Any) -> Iterator[None]:
    """Inside a job (``reporter`` set): an exception marks the job failed with its message, then propagates."""
    try:
        yield
    except Exception as exc:
        if reporter:
            reporter.fail(f"{type(exc).__name__}: {exc}")
        raise


def _print_progress(done: int, total: int, message: str) -> None:
    print(f"[{done}/{total}] {message}", file=sys.stderr, flush=True)


def _print_calibration(ws: Workspace, calibration_id: str) -> None:
    from analysis.contamination.calibrate import SETTING

    (meta,) = ws.query("SELECT description, positives, negatives, target_fpr FROM calibrations "
                       "WHERE calibration_id = ?", [calibration_id]).itertuples(index=False)
    print(f"\ncalibration {calibration_id}: {meta.description}")
    print(f"{meta.positives} known positives, {meta.negatives} known negatives; target FPR {meta.target_fpr:g}\n")
    recs = ws.query("SELECT stage, score, threshold, recall, fpr, precision, f1, current_threshold, current_recall,"
                    " current_fpr FROM calibration_recommendations WHERE calibration_id = ?", [calibration_id])
    print(_table(recs.itertuples(index=False), ["stage", "score", "recommended", "recall", "fpr", "precision", "f1",
                                                "current", "recall@current", "fpr@current"]))
    lines = [f"{SETTING[r.stage]} = {r.threshold:.3f}" for r in recs.itertuples() if r.threshold == r.threshold]
    if lines:
        print("\nto use the recommended thresholds, set in synthscope.toml:\n  " + "\n  ".join(lines))
    print(f"\nsweep: synthscope sql \"SELECT * FROM calibration_sweeps WHERE calibration_id = '{calibration_id}'\"")


def cmd_run_add(args: argparse.Namespace) -> int:
    from analysis.evals.runs import add_run

    ws = _workspace(args)
    run = add_run(ws, args.model, run_id=args.id, base_model=args.base_model, datasets=args.dataset or [],
                  synthetic_share=args.synthetic_share, tags=args.tag or [], date=args.date, notes=args.notes)
    for warning in run["warnings"]:
        print(f"note: {warning}", file=sys.stderr)
    print(f"recorded run {run['run_id']} ({run['model_source']} model {run['model']})")
    return 0


def cmd_run_list(args: argparse.Namespace) -> int:
    from analysis.evals.runs import list_runs

    ws = _workspace(args)
    rows = [(m["run_id"], m["model"], m["base_model"] or "-",
             ", ".join(f"{d['name']}@{d['version']}" if d["version"] else d["name"] for d in m["datasets"]) or "-",
             "-" if m["synthetic_share"] is None else f"{m['synthetic_share']:.2f}", ", ".join(m["tags"]) or "-",
             m["date"] or "-") for m in list_runs(ws)]
    print(_table(rows, ["run", "model", "base", "datasets", "synthetic", "tags", "date"]) if rows
          else "no runs yet; record one with `synthscope run add --model PATH`")
    return 0


def cmd_eval_run(args: argparse.Namespace) -> int:
    from analysis import jobs
    from analysis.evals.lmeval import run_eval

    ws = _workspace(args)
    if args.background:
        from analysis.evals.runs import get_run

        get_run(ws, args.run)  # a wrong run id is an error now, not in a job's log
        job_id = jobs.start(ws, "eval", _eval_run_argv(args))
        print(f"started job {job_id}; progress in {ws.jobs_dir / job_id / 'status.json'}, "
              f"log in {ws.jobs_dir / job_id / 'log.txt'}")
        return 0
    reporter = jobs.Reporter(ws, args.job) if args.job else None
    with _reported(reporter):
        batch: int | str = int(args.batch_size) if args.batch_size.isdigit() else args.batch_size
        result = run_eval(ws, args.run, args.tasks, include_path=args.include_path, limit=args.limit,
                          device=args.device, batch_size=batch, num_fewshot=args.num_fewshot,
                          trust_remote_code=args.trust_remote_code, online=args.online,
                          benchmarks=[DatasetRef.parse(b) for b in args.benchmark or []],
                          progress=reporter.progress if reporter else _print_progress)
    if reporter:
        reporter.succeed({"eval_ids": [i.eval_id for i in result.imports], "output": str(result.output_dir)})
    print(f"lm-eval output: {result.output_dir.relative_to(ws.root)} (device {result.device})")
    _print_imports(ws, result.imports)
    return 0


def _eval_run_argv(args: argparse.Namespace) -> list[str]:
    argv = ["eval", "run", "--run", args.run, "--tasks", *args.tasks, "--device", args.device,
            "--batch-size", args.batch_size]
    for flag, value in (("--include-path", args.include_path and str(Path(args.include_path).resolve())),
                        ("--limit", args.limit), ("--num-fewshot", args.num_fewshot)):
        if value is not None:
            argv += [flag, str(value)]
    for bench in args.benchmark or []:
        argv += ["--benchmark", bench]
    argv += ["--trust-remote-code"] if args.trust_remote_code else []
    argv += ["--online"] if args.online else []
    return argv


def cmd_eval_import(args: argparse.Namespace) -> int:
    from analysis.evals.lmeval import import_folder

    ws = _workspace(args)
    imports = import_folder(ws, Path(args.folder), args.run, [DatasetRef.parse(b) for b in args.benchmark or []],
                            tasks=args.task)
    _print_imports(ws, imports)
    return 0


def _print_imports(ws: Workspace, imports: list[Any]) -> None:
    rows = []
    for imp in imports:
        metrics = ", ".join(f"{k.split(',')[0]}={v:.3f}" for k, v in imp.metrics.items() if "stderr" not in k)
        rows.append((imp.eval_id, imp.task, imp.rows, str(imp.benchmark) if imp.benchmark else "-", imp.linked,
                     imp.hash_mismatches + imp.missing_docs, imp.error_count, metrics,
                     "new" if imp.created else "already imported"))
    print(_table(rows, ["eval", "task", "samples", "benchmark", "linked", "unmatched", "bad lines", "metrics",
                        "status"]))
    for imp in imports:
        for line in imp.warnings():
            print(("warning: " if not line.startswith("  ") else "") + line, file=sys.stderr)
    print("\nper sample: synthscope sql \"SELECT * FROM eval_samples WHERE eval_id = '...'\"")


def cmd_eval_list(args: argparse.Namespace) -> int:
    from analysis.evals.lmeval import eval_manifests

    ws = _workspace(args)
    rows = [(m["eval_id"], m["run_id"], m["task"], m["samples"],
             f"{m['benchmark']}@{m['benchmark_version']}" if m.get("benchmark") else "-", m.get("linked", 0),
             m.get("hash_mismatches", 0) + m.get("missing_docs", 0), m["created_at"]) for m in eval_manifests(ws)]
    print(_table(rows, ["eval", "run", "task", "samples", "benchmark", "linked", "unmatched", "created"]) if rows
          else "no evals yet; run one with `synthscope eval run`, or import lm-eval output with `eval import`")
    return 0


def cmd_eval_mink(args: argparse.Namespace) -> int:
    from analysis import jobs
    from analysis.evals.membership import evaluated_benchmarks, score_run
    from analysis.evals.runs import get_run

    ws = _workspace(args)
    get_run(ws, args.run)  # a wrong run id is an error now, not in a job's log
    benchmarks = [ws.resolve(DatasetRef.parse(b)) for b in args.benchmark or []] or evaluated_benchmarks(ws, args.run)
    if not benchmarks:
        raise WorkspaceError(f"run {args.run!r} has no evaluation linked to a benchmark; name one with "
                             "--benchmark NAME@VERSION")
    if args.background:
        argv = ["eval", "mink", "--run", args.run, "--k", str(args.k), "--max-tokens", str(args.max_tokens),
                "--batch-size", str(args.batch_size), "--device", args.device]
        for bench in benchmarks:
            argv += ["--benchmark", str(bench)]
        argv += ["--trust-remote-code"] if args.trust_remote_code else []
        argv += ["--online"] if args.online else []
        job_id = jobs.start(ws, "mink", argv)
        print(f"started job {job_id}; progress in {ws.jobs_dir / job_id / 'status.json'}")
        return 0
    reporter = jobs.Reporter(ws, args.job) if args.job else None
    done = []
    with _reported(reporter):
        for bench in benchmarks:
            done.append(score_run(ws, args.run, bench, k=args.k, max_tokens=args.max_tokens,
                                  batch_size=args.batch_size, device=args.device,
                                  trust_remote_code=args.trust_remote_code, online=args.online,
                                  progress=reporter.progress if reporter else _print_progress))
    if reporter:
        reporter.succeed({"score_ids": [d.score_id for d in done]})
    rows = [(d.score_id, d.run_id, str(d.benchmark), d.items, d.truncated, d.device, f"{d.seconds:.1f}")
            for d in done]
    print(_table(rows, ["scores", "run", "benchmark", "items", "truncated", "device", "seconds"]))
    return 0


MINK_LABELS = {"mink_candidate": "Min-K%++ under {c}", "mink_baseline": "Min-K%++ under {b}",
               "mink_delta": "Min-K%++ under {c} minus under {b}"}


def cmd_compare(args: argparse.Namespace) -> int:
    from analysis.evals.compare import compare_tasks

    ws = _workspace(args)
    synthetics = [DatasetRef.parse(s) for s in args.synthetic or []]
    comparisons, summary = compare_tasks(ws, args.baseline, args.candidate, args.task, metric=args.metric,
                                         synthetics=synthetics or None, n_boot=args.n_boot, seed=args.seed)
    for c in comparisons:
        infl = c.inflation
        print(f"\n{c.task}: {c.baseline} (baseline) vs {c.candidate} (candidate), {c.metric}; "
              f"{len(c.items)} items of {c.benchmark}, contamination from {', '.join(c.synthetics)}")
        print(_table(c.subsets.itertuples(index=False), ["subset", "items", "baseline", "candidate", "gain",
                                                        "b (base only)", "c (cand only)", "McNemar p"]))
        if infl.reason:
            print(f"inflation: undefined ({infl.reason})")
        else:
            print(f"inflation = gain on contaminated - gain on clean = {infl.estimate:+.3f}, "
                  f"{infl.confidence:.0%} CI [{infl.low:+.3f}, {infl.high:+.3f}] (paired bootstrap, "
                  f"{infl.n_boot} resamples){'' if infl.excludes_zero else '; the interval includes 0'}")
        for row in c.membership.itertuples():
            print(f"model side: AUROC of {MINK_LABELS[row.score].format(b=c.baseline, c=c.candidate)} at telling "
                  f"the {row.positives} contaminated items from the rest of {row.items}: {row.auroc:.3f}")
        if c.unscored_runs:
            print("model side: no Min-K%++ scores for " + ", ".join(c.unscored_runs) + "; compute them with "
                  + " and ".join(f"`synthscope eval mink --run {r}`" for r in c.unscored_runs))
        left_out = {k: v for k, v in c.dropped.items() if v}
        if left_out:
            print("left out: " + ", ".join(f"{v} {k}" for k, v in left_out.items()))
    if len(comparisons) > 1:
        print("\nacross tasks (McNemar p, Holm-adjusted over the tasks):")
        print(_table(summary[["task", "items", "contaminated", "inflation", "ci_low", "ci_high",
                              "holm_p_contaminated", "holm_p_clean"]].itertuples(index=False),
                     ["task", "items", "contaminated", "inflation", "ci low", "ci high", "p contaminated (Holm)",
                      "p clean (Holm)"]))
    return 0


def _inputs(ws: Workspace, args: argparse.Namespace) -> Any:
    from analysis.report import Inputs

    return Inputs(*(ws.resolve(DatasetRef.parse(v)) if v else None
                    for v in (args.reference, args.source, args.holdout)))


def _print_grades(graded: Any) -> None:
    rows = [(g.section, g.key, "-" if g.value != g.value else f"{g.value:.4g}", g.grade, g.rule or "-",
             (g.detail or "")[:70]) for g in graded.itertuples()]
    print(_table(rows, ["section", "metric", "value", "grade", "rule", "detail"]))


def cmd_score(args: argparse.Namespace) -> int:
    from analysis import jobs, report
    from analysis import policy as policymod

    ws = _workspace(args)
    ref = ws.resolve(DatasetRef.parse(args.dataset))
    inputs = _inputs(ws, args)
    pol = policymod.load(args.policy)
    if args.background:
        argv = ["score", str(ref)] + [x for flag, v in (("--reference", inputs.reference), ("--source", inputs.source),
                                                        ("--holdout", inputs.holdout)) if v for x in (flag, str(v))]
        argv += ["--policy", str(Path(args.policy).resolve())] if args.policy else []
        argv += ["--no-embeddings"] if not args.embeddings else []
        job_id = jobs.start(ws, "score", argv)
        print(f"started job {job_id}; progress in {ws.jobs_dir / job_id / 'status.json'}")
        return 0
    reporter = jobs.Reporter(ws, args.job) if args.job else None
    with _reported(reporter):
        card = report.build(ws, ref, inputs, policy=pol, embeddings=args.embeddings,
                            progress=reporter.progress if reporter else _print_progress)
    if reporter:
        reporter.succeed({"report_id": card.report_id, "status": card.status})
    _print_grades(card.grades)
    for note in card.notes:
        print(f"note: {note}")
    print(f"\nscorecard {card.report_id} of {ref}: {card.status.upper()} under {pol.source}")
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    """Exit 0 when the version passes (or only warns), 1 when it fails, 2 when it cannot be gated."""
    from analysis import policy as policymod
    from analysis import report

    try:
        ws = _workspace(args)
        ref = ws.resolve(DatasetRef.parse(args.dataset))
        inputs = _inputs(ws, args)
        manifest = None if args.rebuild else report.latest(ws, ref)
        wanted = {k: v for k, v in inputs.as_dict().items() if v}
        if manifest is not None and any(manifest.get(k) != v for k, v in wanted.items()):
            manifest = None  # measured against other data: measure again
        if manifest is None:
            print(f"no scorecard of {ref} with these inputs yet; building one", file=sys.stderr)
            card = report.build(ws, ref, inputs, progress=_print_progress)
            manifest = report.latest(ws, ref)
            assert manifest is not None and manifest["report_id"] == card.report_id
        stored = report.metrics(ws, manifest["report_id"])
        pol = policymod.load(args.policy, known_keys=set(stored["key"]))
    except USER_ERRORS as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    graded = report.grade(stored.drop(columns=["grade", "rule"]), pol)
    status = policymod.worst(list(graded["grade"]))
    _print_grades(graded)
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
    if args.json:
        from analysis.workspace import atomic_write_json

        atomic_write_json(Path(args.json), result)
        print(f"report: {args.json}")
    verdict = {policymod.FAIL: "FAIL", policymod.WARN: "PASS with warnings"}.get(status, "PASS")
    print(f"gate {ref}: {verdict} under {pol.source}" + (f" (failed: {', '.join(result['failed'])})"
                                                         if result["failed"] else ""))
    return 1 if status == policymod.FAIL else 0


def cmd_report(args: argparse.Namespace) -> int:
    from analysis import report, report_html

    ws = _workspace(args)
    ref = ws.resolve(DatasetRef.parse(args.dataset))
    manifest = report.latest(ws, ref)
    if manifest is None:
        raise CliError(f"{ref} has no scorecard yet: `synthscope score {ref} --reference ... --source ...` first")
    out = Path(args.output or f"{ref.name}-{ref.version}-report.html")
    report_html.write(ws, manifest, out)
    print(f"wrote {out} (scorecard {manifest['report_id']}, {manifest['status'].upper()})")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from analysis import generate as gen
    from analysis import jobs

    ws = _workspace(args)
    try:
        template = Path(args.template).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read template {args.template}: {exc.strerror or exc}") from exc
    params = gen.Params(n=args.n, max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                        top_k=args.top_k, stop=args.stop or [], seed=args.seed, parse=args.parse,
                        delimiter=args.delimiter, batch_size=args.batch_size)
    seeds = DatasetRef.parse(args.seeds)
    if args.preview:
        for record_id, prompt in gen.preview(ws, seeds, template):
            print(f"--- seed {record_id}\n{prompt}")
        return 0
    if args.background:
        gen.check_template(template, set(gen.seed_rows(ws, seeds).columns) - {"flagged"})  # fail now, not in a job
        job_id = jobs.start(ws, "generate", _generate_argv(args))
        print(f"started job {job_id}; progress in {ws.jobs_dir / job_id / 'status.json'}")
        return 0
    reporter = jobs.Reporter(ws, args.job) if args.job else None
    with _reported(reporter):
        result = gen.generate(ws, seeds, template, args.output, model=args.model, params=params, limit=args.limit,
                              device=args.device, keep_flagged_seeds=args.keep_flagged_seeds, run_id=args.resume,
                              trust_remote_code=args.trust_remote_code,
                              progress=reporter.progress if reporter else _print_progress,
                              should_stop=reporter.cancelled if reporter else None, backend=args.backend,
                              on_start=(lambda run_id: reporter.note({"run_id": run_id})) if reporter else None)
        checks = _check_generated(ws, result.dataset) if args.check and result.dataset else {}
    summary = {"run_id": result.run_id, "rows": result.rows, "rejected": result.rejected, "stopped": result.stopped,
               "dataset": str(result.dataset) if result.dataset else None, "device": result.device,
               "tokens_per_second": round(result.tokens_per_second, 2), **checks}
    if reporter:
        reporter.succeed(summary)
    print(f"run {result.run_id}: {result.rows} rows, {result.rejected} rejected, {result.seeds_used} seeds "
          f"({result.seeds_flagged} benchmark items among the pool {'kept' if args.keep_flagged_seeds else 'left out'})"
          f", {result.tokens_per_second:.1f} tokens/s on {result.device}")
    if result.stopped:
        print(f"stopped before the end; continue with --resume {result.run_id}")
    elif result.dataset and not args.check:
        print(f"new dataset version {result.dataset}; check it with --check, or `synthscope scan --synthetic "
              f"{result.dataset} --benchmark NAME` and `synthscope score {result.dataset}`")
    return 0


def _generate_argv(args: argparse.Namespace) -> list[str]:
    """The command line of a generation job: the same run, template by absolute path."""
    argv = ["generate", "--seeds", args.seeds, "--template", str(Path(args.template).resolve()),
            "--output", args.output]
    for flag in ("model", "n", "limit", "max_new_tokens", "temperature", "top_p", "top_k", "seed", "parse",
                 "delimiter", "batch_size", "device", "backend", "resume"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    for stop in args.stop or []:
        argv += ["--stop", stop]
    argv += [f"--{f.replace('_', '-')}" for f in ("keep_flagged_seeds", "trust_remote_code", "check")
             if getattr(args, f)]
    return argv


def _check_generated(ws: Workspace, ref: DatasetRef) -> dict[str, Any]:
    """Scan a generated version against every benchmark and score it; what was found."""
    from analysis import report
    from analysis.contamination.scan import config_from, run_scan

    benchmarks = [DatasetRef(m["name"], m["version"]) for m in ws.manifests() if m["kind"] == "benchmark"]
    for bench in benchmarks:
        run_scan(ws, bench, [ref], config_from(ws), workers=1)
    card = report.build(ws, ref)
    print(f"checked {ref}: scanned against {len(benchmarks)} benchmark(s); scorecard {card.report_id} "
          f"{card.status.upper()}")
    return {"scanned_benchmarks": len(benchmarks), "report_id": card.report_id, "status": card.status}


def cmd_policy(args: argparse.Namespace) -> int:
    from analysis.policy import DEFAULT_POLICY

    print(DEFAULT_POLICY, end="")
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    try:
        df = ws.query(args.query)
    except duckdb.Error as exc:
        raise CliError(f"the query failed: {str(exc).splitlines()[0]}") from exc
    print(_table(df.head(args.limit).itertuples(index=False), list(df.columns)))
    if len(df) > args.limit:
        print(f"... {len(df) - args.limit} more rows (raise --limit)")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from analysis.workspace import collect_garbage

    ws = Workspace.open(args.workspace, tidy=False)  # so that what it removes is reported
    ws.check_writable()
    garbage = collect_garbage(ws)
    for path in garbage.removed:
        print(f"removed {path}")
    print(f"removed {len(garbage.removed)} leftovers of ended processes ({garbage.freed_bytes / 1e6:.1f} MB)"
          + (f"; kept {len(garbage.kept)} that a running process may still be writing" if garbage.kept else ""))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from analysis.demo import build_demo

    root = build_demo(Path(args.path), force=args.force)
    print(f"demo workspace ready at {root}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from analysis import remote

    ws = Workspace.open(args.path or args.workspace)
    if ws.read_only:
        raise CliError("push publishes a local workspace; this one is already on object storage")
    try:
        report = remote.push(ws, args.url)
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"push to {args.url} failed, readers still see the previous push: {exc}") from exc
    print(f"pushed {ws.root} to {report.url}: {report.files} files, {report.uploaded} uploaded "
          f"({report.bytes / 1e6:.1f} MB); serve it with `synthscope serve {report.url}`")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from analysis import access  # noqa: I001 - kept beside its use

    ws = Workspace.open(args.path or args.workspace)
    app = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    if args.secrets:
        secrets_files = [Path(args.secrets).resolve()]
        if not secrets_files[0].is_file():
            raise CliError(f"no secrets file at {args.secrets}")
    else:
        secrets_files = access.default_secrets_files(app)
    auth = access.auth_settings(access.read_secrets(secrets_files))
    import_dirs = _served_folders(args.import_dir, "--import-dir", secrets_files)
    task_dirs = _served_folders(args.task_dir, "--task-dir", [])  # read by task name only, never as files
    if not ws.read_only and any(allowed.is_inside(ws.root, [d]) or allowed.is_inside(d, [ws.root])
                                for d in task_dirs):
        raise CliError("a --task-dir overlaps the workspace, where the dashboard writes uploads: a task file is "
                       "code, so task folders must be outside it")
    env = dict(os.environ, SYNTHSCOPE_WORKSPACE=str(ws.root))
    env.pop(access.AUTH_ENV, None)
    # Only these flags say what the dashboard may read: nothing inherited from the environment.
    for variable, folders in ((allowed.IMPORT_DIRS_ENV, import_dirs), (allowed.TASK_DIRS_ENV, task_dirs)):
        env.pop(variable, None)
        if folders:
            env[variable] = allowed.to_env(folders)
    if auth.configured:
        if args.no_auth:
            raise CliError("--no-auth, but sign-in is configured in the secrets; remove one of the two")
        env[access.AUTH_ENV] = access.AUTH_REQUIRED
        from streamlit import config as streamlit_config  # noqa: I001 - config.toml and STREAMLIT_* as Streamlit reads them

        if streamlit_config.get_option("server.unsafeMetricsUserAttributes"):
            raise CliError("server.unsafeMetricsUserAttributes is set in Streamlit's config: it publishes signed-in "
                           "users' attributes on /_stcore/metrics, which needs no sign-in; unset it")
        print(f"sign-in required (OIDC): {len(auth.allow)} allow-list entries; "
              f"secrets from {', '.join(str(p) for p in secrets_files if p.is_file())}", flush=True)
        problem = access.redirect_problem(str(auth.redirect_uri), args.host, args.port)
        if problem:
            print(f"warning: {problem}; the provider will send users back somewhere else", file=sys.stderr)
    elif args.host not in access.LOOPBACK_HOSTS:
        if not args.no_auth:
            raise CliError(f"refusing to serve on {args.host} without sign-in: anyone who can reach this machine "
                           "could read the workspace. Configure sign-in ([auth] in .streamlit/secrets.toml, see "
                           "the README's 'Sign-in for a shared dashboard'), or pass --no-auth to serve it open.")
        print(f"WARNING: --no-auth: serving {ws.root} on {args.host} WITHOUT SIGN-IN. Anyone who can reach "
              f"this machine on port {args.port} can read every dataset and result in it.", file=sys.stderr)
    else:
        print(f"no sign-in configured: the dashboard binds to {args.host} only, so only this machine can open it, "
              "and anyone on this machine can", flush=True)
    if import_dirs:
        print(f"the import form reads files under: {', '.join(map(str, import_dirs))}", flush=True)
    else:
        print("the import form reads uploads only (name folders it may read with --import-dir)", flush=True)
    print(f"synthscope dashboard: http://{args.host}:{args.port}  (workspace {ws.root})", flush=True)
    argv = [sys.executable, "-m", "streamlit", "run", str(app),
            "--server.address", args.host, "--server.port", str(args.port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "minimal",
            # Exactly the secrets synthscope checked above, whatever config.toml or STREAMLIT_* says.
            *(arg for path in secrets_files for arg in ("--secrets.files", str(path))),
            # No route that serves files or runs the app around the sign-in gate (README: Sign-in).
            "--server.enableStaticServing", "false", "--server.enableAgentApi", "false",
            "--server.enableXsrfProtection", "true", "--server.trustedUserHeaders", "{}"]
    os.execve(sys.executable, argv, env)
    return 0  # not reached


def _served_folders(given: list[str] | None, flag: str, secrets_files: list[Path]) -> list[Path]:
    """The folders named with ``flag``, resolved; each must exist and hold none of ``secrets_files``."""
    folders = []
    for name in given or ():
        folder = Path(name).resolve()
        if not folder.is_dir():
            raise CliError(f"{flag} {name}: no such folder")
        exposed = [s for s in secrets_files if s.is_file() and allowed.is_inside(s, [folder])]
        if exposed:
            raise CliError(f"{flag} {name} holds the sign-in secrets ({exposed[0]}): the dashboard could read them; "
                           "name a folder that holds only what it should import")
        folders.append(folder)
    return folders


# -- parser ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synthscope", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-w", "--workspace", default=os.environ.get("SYNTHSCOPE_WORKSPACE", "workspace"),
                        help="workspace folder (default: $SYNTHSCOPE_WORKSPACE or ./workspace)")

    p = sub.add_parser("init", help="create a workspace")
    p.add_argument("path")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("ingest", parents=[common], help="import a dataset version",
                       description="Import a file, a save_to_disk folder or an lm-eval task as a new dataset "
                                   "version.",
                       epilog="An lm-eval task YAML is code: lm-eval renders its templates with unsandboxed Jinja "
                              "and runs its !function hooks as you, as lm-eval itself does. Import only task "
                              "files (and --include-path folders) you trust.")
    p.add_argument("source", help="file, save_to_disk folder, or lm-eval task name or task YAML (with --format "
                                  "lm-eval; a task YAML runs code)")
    p.add_argument("--name", required=True)
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--version", help="default: the next vN")
    p.add_argument("--format", choices=["jsonl", "json", "csv", "parquet", "hf", "lm-eval"],
                   help="default: from the file name")
    p.add_argument("--preset", choices=["humaneval", "mmlu", "gsm8k", "alpaca", "chat"],
                   help="field mapping preset (default: detected from the columns)")
    p.add_argument("--prompt-field", action="append", help="column(s) making the prompt; repeat to join several")
    p.add_argument("--answer-field", action="append", help="column(s) making the answer")
    p.add_argument("--id-field", help="column holding a stable record id")
    header = p.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_true", default=None,
                        help="CSV: the first line names the columns (default, except for --preset mmlu)")
    header.add_argument("--no-header", dest="header", action="store_false")
    p.add_argument("--split", help="split of a save_to_disk DatasetDict (default: test, else the first)")
    p.add_argument("--encoding", default="utf-8")
    p.add_argument("--max-record-mb", type=float, default=1.0, help="larger records are reported, not loaded")
    p.add_argument("--include-path", help="lm-eval: folder of extra task YAMLs (code: they run as you)")
    p.add_argument("--online", action="store_true", help="allow downloads from the Hugging Face Hub")
    p.add_argument("--strict", action="store_true", help="import nothing if any row is bad")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("datasets", parents=[common], help="list dataset versions")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("scan", parents=[common], help="check synthetic data for benchmark contamination")
    p.add_argument("--synthetic", action="append", required=True, metavar="NAME[@VERSION]")
    p.add_argument("--benchmark", action="append", required=True, metavar="NAME[@VERSION]")
    p.add_argument("--n", type=int, nargs="+", help="n-gram sizes (default from synthscope.toml: 13 8)")
    p.add_argument("--clean-below", type=float, help="coverage below this is clean (default 0.2)")
    p.add_argument("--dirty-from", type=float, help="coverage from this is dirty (default 0.8)")
    p.add_argument("--top-k", type=int, help="evidence records kept per item (default 5)")
    p.add_argument("--stages", nargs="+", choices=["exact", "near_duplicate", "semantic", "judged"],
                   help="stages to run, cheapest first (default from synthscope.toml: exact near_duplicate semantic)")
    p.add_argument("--near-flag-at", type=float, help="Jaccard from which a near-duplicate is flagged")
    p.add_argument("--semantic-flag-at", type=float, help="cosine from which a semantic match is flagged")
    p.add_argument("--model", help="embedding model: name, local path, or hub id (hub needs --online)")
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="where the n-gram, MinHash and embedding stages run: this machine (default) or Ray")
    p.add_argument("--address", help="a running Ray cluster (e.g. auto, ray://HOST:10001); "
                   "without it --engine ray starts one on this machine")
    p.add_argument("--workers", type=int, help="processes (local) or CPUs of a Ray cluster started here "
                   "(default: every core)")
    p.add_argument("--job", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("calibrate", parents=[common],
                       help="measure each stage on known positives and negatives; recommend thresholds")
    p.add_argument("--benchmark", required=True, metavar="NAME[@VERSION]")
    p.add_argument("--positives", metavar="NAME[@VERSION]",
                   help="a dataset whose row i is known contamination of benchmark row i (e.g. its rephrasing)")
    p.add_argument("--truth", metavar="FILE", help="planted truth (Parquet, JSONL or CSV): dataset, version, "
                   "record_id, task_id, must_flag[, kind]; e.g. demo/planted_truth.parquet")
    p.add_argument("--negatives-per-item", type=int, default=5,
                   help="shuffled pairs per item used as known negatives (default 5)")
    p.add_argument("--target-fpr", type=float, default=0.01, help="false-positive rate to recommend for (0.01)")
    p.add_argument("--stages", nargs="+", choices=["exact", "near_duplicate", "semantic", "judged"],
                   help="stages to measure (default: the workspace's)")
    p.add_argument("--model", help="embedding model: name, local path, or hub id (hub needs --online)")
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument("--job", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("run", help="trained models and what they were trained on")
    run_sub = p.add_subparsers(dest="run_command", required=True)
    q = run_sub.add_parser("add", parents=[common], help="record a run: a model and its training manifest")
    q.add_argument("--model", required=True, help="local model folder or hub id (org/name)")
    q.add_argument("--id", help="run id (default: from the model's name)")
    q.add_argument("--base-model", help="the model it was fine-tuned from")
    q.add_argument("--dataset", action="append", metavar="NAME[@VERSION]",
                   help="a dataset it was trained on; repeat for several (workspace datasets are pinned to a version)")
    q.add_argument("--synthetic-share", type=float, metavar="FRACTION",
                   help="share of synthetic training examples, 0 to 1")
    q.add_argument("--tag", action="append", help="free tag; repeat for several")
    q.add_argument("--date", help="when it was trained (YYYY-MM-DD)")
    q.add_argument("--notes")
    q.set_defaults(func=cmd_run_add)
    q = run_sub.add_parser("list", parents=[common], help="list runs")
    q.set_defaults(func=cmd_run_list)

    p = sub.add_parser("eval", help="lm-eval results per sample: run tasks for a run, or import lm-eval output")
    eval_sub = p.add_subparsers(dest="eval_command", required=True)
    q = eval_sub.add_parser("run", parents=[common], help="evaluate a run's model with lm-eval (log_samples)")
    q.add_argument("--run", required=True, metavar="RUN_ID")
    q.add_argument("--tasks", nargs="+", required=True, metavar="TASK")
    q.add_argument("--include-path", metavar="DIR", help="folder of extra lm-eval task YAMLs")
    q.add_argument("--limit", type=int, help="at most N docs per task (for trying things out)")
    q.add_argument("--num-fewshot", type=int)
    q.add_argument("--device", default="auto", help="auto (CUDA when present, default), cpu or cuda")
    q.add_argument("--batch-size", default="1", help="an integer, or auto (default 1)")
    q.add_argument("--benchmark", action="append", metavar="NAME[@VERSION]",
                   help="benchmark version to check doc hashes against (default: the one ingested from the task)")
    q.add_argument("--trust-remote-code", action="store_true", help="let the model run its own code")
    q.add_argument("--online", action="store_true", help="allow downloads from the Hugging Face Hub")
    q.add_argument("--background", action="store_true", help="run as a job; print its id and return")
    q.add_argument("--job", help=argparse.SUPPRESS)
    q.set_defaults(func=cmd_eval_run)
    q = eval_sub.add_parser("import", parents=[common], help="import an lm-eval output folder (--log_samples)")
    q.add_argument("folder", help="lm-eval's --output_path folder (results_*.json, samples_<task>_*.jsonl)")
    q.add_argument("--run", required=True, metavar="RUN_ID")
    q.add_argument("--benchmark", action="append", metavar="NAME[@VERSION]",
                   help="benchmark version to check doc hashes against (default: the one ingested from the task)")
    q.add_argument("--task", action="append", help="import only this task; repeat for several")
    q.set_defaults(func=cmd_eval_import)
    q = eval_sub.add_parser("list", parents=[common], help="list evals")
    q.set_defaults(func=cmd_eval_list)
    q = eval_sub.add_parser("mink", parents=[common],
                            help="Min-K%%++ per benchmark item under a run's model (a model-side contamination signal)")
    q.add_argument("--run", required=True, metavar="RUN_ID")
    q.add_argument("--benchmark", action="append", metavar="NAME[@VERSION]",
                   help="benchmark to score (default: every benchmark the run's evaluations are linked to)")
    q.add_argument("--k", type=float, default=0.2, help="share of lowest-scoring tokens averaged (default 0.2)")
    q.add_argument("--max-tokens", type=int, default=512, help="longer items are cut (default 512)")
    q.add_argument("--batch-size", type=int, default=8)
    q.add_argument("--device", default="auto", help="auto (CUDA when present, default), cpu or cuda")
    q.add_argument("--trust-remote-code", action="store_true", help="let the model run its own code")
    q.add_argument("--online", action="store_true", help="allow downloads from the Hugging Face Hub")
    q.add_argument("--background", action="store_true", help="run as a job; print its id and return")
    q.add_argument("--job", help=argparse.SUPPRESS)
    q.set_defaults(func=cmd_eval_mink)

    p = sub.add_parser("compare", parents=[common],
                       help="baseline vs candidate run per task: gains on clean and contaminated items")
    p.add_argument("--baseline", required=True, metavar="RUN_ID")
    p.add_argument("--candidate", required=True, metavar="RUN_ID")
    p.add_argument("--task", action="append", required=True, help="an evaluated task (repeat for several)")
    p.add_argument("--synthetic", action="append", metavar="NAME[@VERSION]",
                   help="whose scan verdicts define contamination (default: the candidate's synthetic datasets)")
    p.add_argument("--metric", default="acc", choices=["acc", "acc_norm", "exact_match"])
    p.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_compare)

    inputs = argparse.ArgumentParser(add_help=False)
    inputs.add_argument("dataset", metavar="NAME[@VERSION]", help="a synthetic dataset version")
    inputs.add_argument("--reference", metavar="NAME[@VERSION]",
                        help="real data it imitates (structure, fidelity, skew)")
    inputs.add_argument("--source", metavar="NAME[@VERSION]", help="private data the generator saw (privacy)")
    inputs.add_argument("--holdout", metavar="NAME[@VERSION]",
                        help="private data of the same population the generator did not see (privacy baselines)")
    p = sub.add_parser("score", parents=[common, inputs],
                       help="scorecard of a synthetic version: contamination, quality, bias, privacy")
    p.add_argument("--policy", metavar="FILE", help="YAML thresholds (default: `synthscope policy`)")
    p.add_argument("--no-embeddings", dest="embeddings", action="store_false",
                   help="skip the metrics that need sentence embeddings")
    p.add_argument("--background", action="store_true", help="run as a job; print its id and return")
    p.add_argument("--job", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_score)
    p = sub.add_parser("gate", parents=[common, inputs],
                       help="grade a version's scorecard by a policy; exit 1 on fail (for CI)")
    p.add_argument("--policy", metavar="FILE", help="YAML thresholds (default: `synthscope policy`)")
    p.add_argument("--json", metavar="FILE", help="write the graded report as JSON")
    p.add_argument("--rebuild", action="store_true", help="measure again even if a scorecard exists")
    p.set_defaults(func=cmd_gate)
    p = sub.add_parser("report", parents=[common], help="one self-contained HTML report of a version's scorecard")
    p.add_argument("dataset", metavar="NAME[@VERSION]")
    p.add_argument("-o", "--output", help="default: NAME-VERSION-report.html")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("generate", parents=[common], help="new synthetic rows from an instruct model, with provenance")
    p.add_argument("--seeds", required=True, metavar="NAME[@VERSION]", help="dataset whose rows fill the template")
    p.add_argument("--template", required=True, metavar="FILE", help="Jinja prompt template ({{ prompt }}, ...)")
    p.add_argument("--output", required=True, metavar="NAME", help="dataset the rows become a new version of")
    p.add_argument("--model", help="local folder, .gguf or hub id (default: SmolLM2-135M-Instruct, packaged)")
    p.add_argument("--n", type=int, default=1, help="outputs per seed")
    p.add_argument("--limit", type=int, help="at most N seeds")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--top-k", type=int, default=50)
    p.add_argument("--stop", action="append", help="cut the output at this string (repeat for several)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parse", choices=["text", "json", "delimiter"], default="text")
    p.add_argument("--delimiter", default="###", help="for --parse delimiter: between prompt and answer")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="auto", help="auto (CUDA when present, default), cpu or cuda")
    p.add_argument("--backend", choices=["transformers", "vllm"], default="transformers",
                   help="vllm: when installed, on a CUDA GPU")
    p.add_argument("--keep-flagged-seeds", action="store_true", help="use seeds that are benchmark items too")
    p.add_argument("--resume", metavar="RUN_ID", help="continue a stopped run; rows already made are kept")
    p.add_argument("--preview", action="store_true", help="print the first five rendered prompts and stop")
    p.add_argument("--trust-remote-code", action="store_true", help="let the model run its own code")
    p.add_argument("--check", action="store_true",
                   help="when done, scan the new version against every benchmark and score it")
    p.add_argument("--background", action="store_true", help="run as a job; print its id and return")
    p.add_argument("--job", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("policy", help="print the default policy (a starting point for your own)")
    p.set_defaults(func=cmd_policy)

    p = sub.add_parser("sql", parents=[common], help="query the workspace's DuckDB views")
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("gc", parents=[common],
                       help="remove staging folders and temporary files left by killed processes (never a running "
                            "one's)")
    p.set_defaults(func=cmd_gc)

    p = sub.add_parser("demo", help="build the demo workspace (no network needed)")
    p.add_argument("path")
    p.add_argument("--force", action="store_true", help="rebuild it if it exists")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("push", parents=[common], help="publish the workspace to object storage for a team to read")
    p.add_argument("path", nargs="?", help="local workspace (default: --workspace)")
    p.add_argument("url", help="s3://bucket/prefix; credentials and endpoint from the AWS_* variables")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("serve", parents=[common], help="open the dashboard")
    p.add_argument("path", nargs="?", help="workspace folder, or s3://bucket/prefix (read-only) (default: --workspace)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--secrets", metavar="FILE",
                   help="secrets.toml with the sign-in settings (default: Streamlit's: ~/.streamlit/secrets.toml, "
                        "./.streamlit/secrets.toml)")
    p.add_argument("--no-auth", action="store_true",
                   help="serve on a non-loopback --host without sign-in (anyone who can reach it reads everything)")
    p.add_argument("--import-dir", action="append", metavar="DIR",
                   help="a folder whose files the import form may read by path (repeat for several; default: "
                        "none, uploads only)")
    p.add_argument("--task-dir", action="append", metavar="DIR",
                   help="a folder of lm-eval task YAMLs the import form may load by task name (repeat for "
                        "several); task files are code, so name only folders you trust")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    hub.configure(None)
    if getattr(args, "job", None):
        os.nice(JOB_NICENESS)  # a background job yields the CPU to the dashboard that started it
    try:
        return int(args.func(args))
    except USER_ERRORS as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
