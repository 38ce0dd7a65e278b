"""Contamination: ``scan`` and ``calibrate``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from synthscope import tasks
from synthscope.cli.common import CliError, add_command, open_workspace, table
from synthscope.cli.progress import ProgressBar
from synthscope.compute.engine import default_workers, start_fork_server
from synthscope.core import hub
from synthscope.core.workspace import Workspace

# The judge's backend and server: the operator's settings, so the command line's and synthscope.toml's only. They
# are not in scan.OVERRIDE_FLAGS, the settings a dashboard scan may change (tasks.start_scan refuses the rest).
JUDGE_FLAGS = {"judge.backend": "--judge-backend", "judge.model": "--judge-model",
               "judge.endpoint": "--judge-endpoint", "judge.api_key_env": "--judge-api-key-env"}


def cmd_scan(args: argparse.Namespace) -> int:
    if args.engine == "local" and (args.workers or default_workers()) > 1:
        start_fork_server()  # the workers' imports run beside this process's own
    from synthscope.contamination.scan import OVERRIDE_FLAGS, config_from

    ws = open_workspace(args)
    if args.online:
        hub.configure(None, online=True)
    flags = {**OVERRIDE_FLAGS, **JUDGE_FLAGS}
    overrides = {key: getattr(args, flag.lstrip("-").replace("-", "_")) for key, flag in flags.items()}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "judge.endpoint" in overrides:
        overrides.setdefault("judge.backend", "endpoint")  # an endpoint named on the command line is meant to be used
    judge = config_from(ws, overrides).judge
    if judge is not None and judge.backend == "endpoint":
        judge.chat_endpoint().check_allowed()  # before the cheaper stages spend minutes, not after
    task = tasks.ScanTask(args.benchmark, args.synthetic, overrides, args.engine, args.address, args.workers,
                          args.inputs)
    with ProgressBar("rows") as bar:
        summaries = task.run(ws, bar)
    for summary in summaries:
        _print_scan(ws, summary)
    return 0


def _print_scan(ws: Workspace, summary: Any) -> None:
    print(f"\nscan {summary.scan_id}: benchmark {summary.benchmark}")
    rows = [(s.synthetic, s.records, s.items, s.contaminated, s.contaminated / s.items if s.items else 0.0,
             s.by_tier.get("confirmed", 0), s.by_tier.get("likely", 0), s.by_tier.get("candidate", 0),
             "-" if s.expected_false is None else f"{s.expected_false:.1f}", s.seconds)
            for s in summary.per_synthetic]
    print(table(rows, ["synthetic", "records", "items", "contaminated", "share", "confirmed", "likely",
                       "candidate (not counted)", "expected false", "seconds"]))
    for s in summary.per_synthetic:
        if s.expected_false is not None:
            print(f"expected false flags in {s.synthetic}: {s.contaminated} flagged · expected false ≈ "
                  f"{s.expected_false:.1f} by chance (semantic matches at likely_at in a corpus this size)")
    top = ws.query(
        "SELECT synthetic || '@' || synthetic_version AS synthetic, item_id, tier, verdict AS stage, leaked,"
        " coverage, jaccard, cosine, reason FROM verdicts WHERE scan_id = ? AND verdict <> 'clean'"
        " ORDER BY list_position(['confirmed', 'likely'], tier),"
        " list_position(['exact', 'near_duplicate', 'semantic', 'judged'], verdict),"
        " CASE verdict WHEN 'exact' THEN coverage WHEN 'near_duplicate' THEN jaccard WHEN 'judged' THEN judge_score"
        " ELSE cosine END DESC NULLS LAST, item_id LIMIT 15", [summary.scan_id])
    if len(top):
        print("\nmost contaminated items:")
        print(table(top.itertuples(index=False), list(top.columns)))
    print(f"\nevidence: synthscope sql \"SELECT * FROM evidence WHERE scan_id = '{summary.scan_id}'\"")


def cmd_calibrate(args: argparse.Namespace) -> int:
    ws = open_workspace(args)
    if (args.positives is None) == (args.truth is None):
        raise CliError("give known positives as --positives NAME (row i rephrases benchmark row i) "
                       "or --truth FILE (dataset, version, record_id, task_id, must_flag), not both")
    overrides = {k: v for k, v in {"stages": args.stages, "semantic.model": args.model,
                                   "semantic.device": args.device}.items() if v is not None}
    task = tasks.CalibrateTask(args.benchmark, args.positives, str(Path(args.truth).resolve()) if args.truth else None,
                               args.target_fpr, overrides)
    _print_calibration(ws, task.run(ws, tasks.Console()))
    return 0


def _print_calibration(ws: Workspace, calibration_id: str) -> None:
    """Per stage: the threshold, its recall and item FPR on hard negatives, the negatives behind it, and either
    the synthscope.toml lines or why no threshold is recommended."""
    from synthscope.contamination import calibration_results as cal

    (meta,) = ws.query("SELECT description, positives, negative_items, negative_pairs, target_fpr FROM calibrations "
                       "WHERE calibration_id = ?", [calibration_id]).itertuples(index=False)
    print(f"\ncalibration {calibration_id}: {meta.description}")
    print(f"{meta.positives} known positives; hard negatives: {meta.negative_items} items against every non-twin "
          f"candidate ({meta.negative_pairs:,} pairs); target item-level FPR {meta.target_fpr:g}\n")
    recs = cal.recommendations(ws, calibration_id)
    rows = [(r.stage, r.score, r.status, r.threshold, r.recall, r.item_fpr, r.pair_fpr, r.negative_items,
             r.current_threshold, r.current_recall, r.current_item_fpr) for r in recs.itertuples()]
    print(table(rows, ["stage", "score", "status", "threshold", "recall", "item FPR", "pair FPR", "negative items",
                       "current", "recall@current", "item FPR@current"]))
    print("\nitem FPR: share of items some non-twin candidate reaches the threshold with (what a scan shows)")
    for r in recs.itertuples():
        if r.status == "refused":
            print(f"{r.stage}: no threshold recommended: {r.reason}")
    snippet = cal.toml_snippet(recs)
    if snippet:
        print("\nto use the recommended thresholds, set in synthscope.toml:\n  " + snippet.replace("\n", "\n  "))
    print(f"\nsweep: synthscope sql \"SELECT * FROM calibration_sweeps WHERE calibration_id = '{calibration_id}'\"")
    print(f"FPR curves: synthscope sql \"SELECT * FROM calibration_fpr WHERE calibration_id = '{calibration_id}'\"")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the contamination commands to the parser."""
    p = add_command(sub, "scan", parents=[common], help="check synthetic data for benchmark contamination",
                    example="synthscope scan -w ws --synthetic code-alpaca --benchmark humaneval --benchmark mmlu-soc")
    p.add_argument("--synthetic", action="append", required=True, metavar="NAME[@VERSION]",
                   help="a synthetic dataset to check (default version: the latest); repeat for several")
    p.add_argument("--benchmark", action="append", required=True, metavar="NAME[@VERSION]",
                   help="a benchmark to check it against (default version: the latest); repeat for several")
    p.add_argument("--n", type=int, nargs="+", help="n-gram sizes (default from synthscope.toml: 13 8)")
    p.add_argument("--clean-below", type=float, help="coverage below this is clean (default 0.2)")
    p.add_argument("--dirty-from", type=float, help="coverage from this is dirty (default 0.8)")
    p.add_argument("--top-k", type=int, help="evidence records kept per item, by every stage (default 5)")
    p.add_argument("--stages", nargs="+", choices=["exact", "near_duplicate", "semantic", "judged"],
                   help="stages to run, cheapest first (default from synthscope.toml: exact near_duplicate semantic)")
    p.add_argument("--near-flag-at", type=float, help="Jaccard from which a near-duplicate is flagged")
    p.add_argument("--semantic-flag-at", type=float,
                   help="cosine from which a mutual-best semantic pair is a match, sent to the task-aware checks")
    p.add_argument("--likely-at", type=float,
                   help="cosine from which a semantic match counts as likely without a check (default 0.80)")
    p.add_argument("--model", help="embedding model: name, local path, or hub id (hub needs --online)")
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument("--first-pass", choices=["auto", "shortlist", "none"],
                   help="semantic stage: cheap rankers shortlist the records the model reads (shortlist), the model "
                   "reads every record (none), or the shortlist only where it spares the model work (auto, default)")
    p.add_argument("--shortlist", type=int, metavar="N",
                   help="records per benchmark item each first-pass ranker keeps for the model (default 50)")
    p.add_argument("--judge-backend", choices=["logits", "chat", "endpoint"],
                   help="the judged stage's judge: next-token logits of a local model (default), a local chat "
                   "model's JSON verdict, or an OpenAI-compatible server's")
    p.add_argument("--judge-model", help="the judge's model: local name, path or hub id; for an endpoint, the name "
                   "it serves")
    p.add_argument("--judge-endpoint", metavar="URL", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 "
                   "(implies --judge-backend endpoint; another host than this machine needs --online)")
    p.add_argument("--judge-api-key-env", metavar="NAME",
                   help="environment variable holding the endpoint's API key (the key itself is never stored)")
    p.add_argument("--online", action="store_true",
                   help="allow the Hugging Face Hub and a judge endpoint on another machine")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="where the n-gram, MinHash and embedding stages run: this machine (default) or Ray")
    p.add_argument("--address", help="a running Ray cluster (e.g. auto, ray://HOST:10001); "
                   "without it --engine ray starts one on this machine")
    p.add_argument("--workers", type=int, help="processes (local) or CPUs of a Ray cluster started here "
                   "(default: every core)")
    p.add_argument("--inputs", metavar="s3://BUCKET/PREFIX",
                   help="with --engine ray: the workers read the records from this push of the workspace "
                   "(synthscope push), so the cluster's nodes need no shared disk")
    p.set_defaults(func=cmd_scan)

    p = add_command(sub, "calibrate", parents=[common],
                    help="measure each stage on known positives and hard negatives; recommend thresholds",
                    example="synthscope calibrate -w ws --benchmark humaneval --positives humaneval-rephrased")
    p.add_argument("--benchmark", required=True, metavar="NAME[@VERSION]")
    p.add_argument("--positives", metavar="NAME[@VERSION]",
                   help="a dataset whose row i is known contamination of benchmark row i (e.g. its rephrasing)")
    p.add_argument("--truth", metavar="FILE", help="planted truth (Parquet, JSONL or CSV): dataset, version, "
                   "record_id, task_id, must_flag[, kind]; e.g. demo/planted_truth.parquet")
    p.add_argument("--target-fpr", type=float, default=0.01,
                   help="item-level false-positive rate on hard negatives to recommend for (0.01; needs at least "
                   "3 / target benchmark items)")
    p.add_argument("--stages", nargs="+", choices=["exact", "near_duplicate", "semantic", "judged"],
                   help="stages to measure (default: the workspace's)")
    p.add_argument("--model", help="embedding model: name, local path, or hub id (hub needs --online)")
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.set_defaults(func=cmd_calibrate)
