"""Runs and evals: ``run add|list``, ``eval run|import|list|mink``, ``compare``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from synthscope import tasks
from synthscope.cli.common import add_command, open_workspace, started, table
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError


def cmd_run_add(args: argparse.Namespace) -> int:
    from synthscope.evals.runs import add_run

    ws = open_workspace(args)
    run = add_run(ws, args.model, run_id=args.id, base_model=args.base_model, datasets=args.dataset or [],
                  synthetic_share=args.synthetic_share, tags=args.tag or [], date=args.date, notes=args.notes)
    for warning in run["warnings"]:
        print(f"note: {warning}", file=sys.stderr)
    print(f"recorded run {run['run_id']} ({run['model_source']} model {run['model']})")
    return 0


def cmd_run_list(args: argparse.Namespace) -> int:
    from synthscope.evals.runs import list_runs

    ws = open_workspace(args)
    rows = [(m["run_id"], m["model"], m["base_model"] or "-",
             ", ".join(f"{d['name']}@{d['version']}" if d["version"] else d["name"] for d in m["datasets"]) or "-",
             "-" if m["synthetic_share"] is None else f"{m['synthetic_share']:.2f}", ", ".join(m["tags"]) or "-",
             m["date"] or "-") for m in list_runs(ws)]
    print(table(rows, ["run", "model", "base", "datasets", "synthetic", "tags", "date"]) if rows
          else "no runs yet; record one with `synthscope run add --model PATH`")
    return 0


def cmd_eval_run(args: argparse.Namespace) -> int:
    from synthscope.evals.runs import get_run

    ws = open_workspace(args)
    get_run(ws, args.run)  # a wrong run id is an error now, not in a job's log
    include_path = str(Path(args.include_path).resolve()) if args.include_path else None
    batch: int | str = int(args.batch_size) if args.batch_size.isdigit() else args.batch_size
    task = tasks.EvalTask(args.run, args.tasks, include_path, args.limit, args.device, batch, args.num_fewshot,
                          args.trust_remote_code, args.online, args.benchmark or [])
    if args.background:
        return started(ws, tasks.start(ws, task))
    result = task.run(ws, tasks.Console())
    print(f"lm-eval output: {result.output_dir.relative_to(ws.root)} (device {result.device})")
    _print_imports(ws, result.imports)
    return 0


def cmd_eval_import(args: argparse.Namespace) -> int:
    from synthscope.evals.lmeval import import_folder

    ws = open_workspace(args)
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
    print(table(rows, ["eval", "task", "samples", "benchmark", "linked", "unmatched", "bad lines", "metrics",
                        "status"]))
    for imp in imports:
        for line in imp.warnings():
            print(("warning: " if not line.startswith("  ") else "") + line, file=sys.stderr)
    print("\nper sample: synthscope sql \"SELECT * FROM eval_samples WHERE eval_id = '...'\"")


def cmd_eval_list(args: argparse.Namespace) -> int:
    from synthscope.evals.lmeval import eval_manifests

    ws = open_workspace(args)
    rows = [(m["eval_id"], m["run_id"], m["task"], m["samples"],
             f"{m['benchmark']}@{m['benchmark_version']}" if m.get("benchmark") else "-", m.get("linked", 0),
             m.get("hash_mismatches", 0) + m.get("missing_docs", 0), m["created_at"]) for m in eval_manifests(ws)]
    print(table(rows, ["eval", "run", "task", "samples", "benchmark", "linked", "unmatched", "created"]) if rows
          else "no evals yet; run one with `synthscope eval run`, or import lm-eval output with `eval import`")
    return 0


def cmd_eval_mink(args: argparse.Namespace) -> int:
    from synthscope.evals.membership import evaluated_benchmarks
    from synthscope.evals.runs import get_run

    ws = open_workspace(args)
    get_run(ws, args.run)  # a wrong run id is an error now, not in a job's log
    benchmarks = [ws.resolve(DatasetRef.parse(b)) for b in args.benchmark or []] or evaluated_benchmarks(ws, args.run)
    if not benchmarks:
        raise WorkspaceError(f"run {args.run!r} has no evaluation linked to a benchmark; name one with "
                             "--benchmark NAME@VERSION")
    task = tasks.MinkTask(args.run, [str(b) for b in benchmarks], args.k, args.max_tokens, args.batch_size,
                          args.device, args.trust_remote_code, args.online)
    if args.background:
        return started(ws, tasks.start(ws, task))
    done = task.run(ws, tasks.Console())
    rows = [(d.score_id, d.run_id, str(d.benchmark), d.items, d.truncated, d.device, f"{d.seconds:.1f}")
            for d in done]
    print(table(rows, ["scores", "run", "benchmark", "items", "truncated", "device", "seconds"]))
    return 0


MINK_LABELS = {"mink_candidate": "Min-K%++ under {c}", "mink_baseline": "Min-K%++ under {b}",
               "mink_delta": "Min-K%++ under {c} minus under {b}"}


def cmd_compare(args: argparse.Namespace) -> int:
    from synthscope.evals.compare import compare_tasks

    ws = open_workspace(args)
    synthetics = [DatasetRef.parse(s) for s in args.synthetic or []]
    comparisons, summary = compare_tasks(ws, args.baseline, args.candidate, args.task, metric=args.metric,
                                         synthetics=synthetics or None, n_boot=args.n_boot, seed=args.seed)
    for c in comparisons:
        infl = c.inflation
        print(f"\n{c.task}: {c.baseline} (baseline) vs {c.candidate} (candidate), {c.metric}; "
              f"{len(c.items)} items of {c.benchmark}, contamination from {', '.join(c.synthetics)}")
        print(table(c.subsets.itertuples(index=False), ["subset", "items", "baseline", "candidate", "gain",
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
        print(table(summary[["task", "items", "contaminated", "inflation", "ci_low", "ci_high",
                              "holm_p_contaminated", "holm_p_clean"]].itertuples(index=False),
                     ["task", "items", "contaminated", "inflation", "ci low", "ci high", "p contaminated (Holm)",
                      "p clean (Holm)"]))
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the evals commands to the parser."""
    add_run = ("synthscope run add -w ws --model ./ckpt/sft-synth --id sft-synth --dataset code-alpaca "
               "--synthetic-share 0.4")
    p = add_command(sub, "run", help="trained models and what they were trained on", example=add_run)
    run_sub = p.add_subparsers(dest="run_command", required=True)
    q = add_command(run_sub, "add", parents=[common], help="record a run: a model and its training manifest",
                    example=add_run)
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
    q = add_command(run_sub, "list", parents=[common], help="list runs", example="synthscope run list -w ws")
    q.set_defaults(func=cmd_run_list)

    eval_run = "synthscope eval run -w ws --run sft-synth --tasks my_task --include-path tasks/"
    p = add_command(sub, "eval", help="lm-eval results per sample: run tasks for a run, or import lm-eval output",
                    example=eval_run)
    eval_sub = p.add_subparsers(dest="eval_command", required=True)
    q = add_command(eval_sub, "run", parents=[common], help="evaluate a run's model with lm-eval (log_samples)",
                    example=eval_run)
    q.add_argument("--run", required=True, metavar="RUN_ID")
    q.add_argument("--tasks", nargs="+", required=True, metavar="TASK")
    q.add_argument("--include-path", metavar="DIR", help="folder of extra lm-eval task YAMLs")
    q.add_argument("--limit", type=int, help="at most N docs per task (for trying things out)")
    q.add_argument("--num-fewshot", type=int)
    q.add_argument("--device", default="auto", help="auto (CUDA when present, default), cpu or cuda")
    q.add_argument("--batch-size", default="1", help="an integer, or auto (default 1)")
    q.add_argument("--benchmark", action="append", metavar="NAME[@VERSION]",
                   help="benchmark version to check doc hashes against; repeat for several (default: the one "
                        "ingested from the task)")
    q.add_argument("--trust-remote-code", action="store_true", help="let the model run its own code")
    q.add_argument("--online", action="store_true", help="allow downloads from the Hugging Face Hub")
    q.add_argument("--background", action="store_true", help="run as a job; print its id and return")
    q.set_defaults(func=cmd_eval_run)
    q = add_command(eval_sub, "import", parents=[common], help="import an lm-eval output folder (--log_samples)",
                    example="synthscope eval import -w ws out/lm-eval-results/ --run sft-base")
    q.add_argument("folder", help="lm-eval's --output_path folder (results_*.json, samples_<task>_*.jsonl)")
    q.add_argument("--run", required=True, metavar="RUN_ID")
    q.add_argument("--benchmark", action="append", metavar="NAME[@VERSION]",
                   help="benchmark version to check doc hashes against; repeat for several (default: the one "
                        "ingested from the task)")
    q.add_argument("--task", action="append", help="import only this task; repeat for several")
    q.set_defaults(func=cmd_eval_import)
    q = add_command(eval_sub, "list", parents=[common], help="list evals", example="synthscope eval list -w ws")
    q.set_defaults(func=cmd_eval_list)
    q = add_command(eval_sub, "mink", parents=[common], example="synthscope eval mink -w ws --run sft-synth",
                            help="Min-K%%++ per benchmark item under a run's model (a model-side contamination signal)")
    q.add_argument("--run", required=True, metavar="RUN_ID")
    q.add_argument("--benchmark", action="append", metavar="NAME[@VERSION]",
                   help="benchmark to score; repeat for several (default: every benchmark the run's evaluations "
                        "are linked to)")
    q.add_argument("--k", type=float, default=0.2, help="share of lowest-scoring tokens averaged (default 0.2)")
    q.add_argument("--max-tokens", type=int, default=512, help="longer items are cut (default 512)")
    q.add_argument("--batch-size", type=int, default=8)
    q.add_argument("--device", default="auto", help="auto (CUDA when present, default), cpu or cuda")
    q.add_argument("--trust-remote-code", action="store_true", help="let the model run its own code")
    q.add_argument("--online", action="store_true", help="allow downloads from the Hugging Face Hub")
    q.add_argument("--background", action="store_true", help="run as a job; print its id and return")
    q.set_defaults(func=cmd_eval_mink)

    p = add_command(sub, "compare", parents=[common],
                    example="synthscope compare -w ws --baseline sft-base --candidate sft-synth --task my_task",
                       help="baseline vs candidate run per task: gains on clean and contaminated items")
    p.add_argument("--baseline", required=True, metavar="RUN_ID")
    p.add_argument("--candidate", required=True, metavar="RUN_ID")
    p.add_argument("--task", action="append", required=True, help="an evaluated task (repeat for several)")
    p.add_argument("--synthetic", action="append", metavar="NAME[@VERSION]",
                   help="a synthetic dataset whose scan verdicts define contamination; repeat for several "
                        "(default: the candidate's synthetic datasets)")
    p.add_argument("--metric", default="acc", choices=["acc", "acc_norm", "exact_match"])
    p.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_compare)
