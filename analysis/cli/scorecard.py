"""Scorecards: ``score``, ``gate`` (for CI), ``report``, ``policy``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from synthscope import tasks
from synthscope.cli.common import USER_ERRORS, CliError, add_command, one_line, open_workspace, started, table
from synthscope.core.workspace import DatasetRef, Workspace


def _inputs(ws: Workspace, args: argparse.Namespace) -> Any:
    from synthscope.scorecard.report import Inputs

    return Inputs(*(ws.resolve(DatasetRef.parse(v)) if v else None
                    for v in (args.reference, args.source, args.holdout)))


def _print_grades(graded: Any) -> None:
    rows = [(g.section, g.key, "-" if g.value != g.value else f"{g.value:.4g}", g.grade, g.rule or "-",
             (g.detail or "")[:70]) for g in graded.itertuples()]
    print(table(rows, ["section", "metric", "value", "grade", "rule", "detail"]))


def cmd_score(args: argparse.Namespace) -> int:
    from synthscope.scorecard import policy as policymod

    ws = open_workspace(args)
    ref = ws.resolve(DatasetRef.parse(args.dataset))
    inputs = _inputs(ws, args)
    pol = policymod.load(args.policy)  # a bad policy is an error now, not in a job's log
    given = (str(v) if v else None for v in (inputs.reference, inputs.source, inputs.holdout))
    task = tasks.ScoreTask(str(ref), *given, policy=str(Path(args.policy).resolve()) if args.policy else None,
                           embeddings=args.embeddings)
    if args.background:
        return started(ws, tasks.start(ws, task))
    card = task.run(ws, tasks.Console())
    _print_grades(card.grades)
    for note in card.notes:
        print(f"note: {note}")
    print(f"\nscorecard {card.report_id} of {ref}: {card.status.upper()} under {pol.source}")
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    """Exit 0 when the version passes (or only warns), 1 when it fails, 2 when it cannot be gated."""
    from synthscope.scorecard import policy as policymod
    from synthscope.scorecard.gate import gate

    try:
        ws = open_workspace(args)
        ref = ws.resolve(DatasetRef.parse(args.dataset))
        inputs = _inputs(ws, args)
        outcome = gate(ws, ref, inputs, policy=args.policy, rebuild=args.rebuild, progress=tasks.Console().progress,
                       on_build=lambda r: print(f"no scorecard of {r} with these inputs yet; building one",
                                                file=sys.stderr))
    except USER_ERRORS as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    _print_grades(outcome.graded)
    if args.json:
        from synthscope.core.workspace import atomic_write_json

        atomic_write_json(Path(args.json), outcome.result)
        print(f"report: {args.json}")
    verdict = {policymod.FAIL: "FAIL", policymod.WARN: "PASS with warnings"}.get(outcome.status, "PASS")
    failed = outcome.result["failed"]
    print(f"gate {ref}: {verdict} under {outcome.policy.source}"
          + (f" (failed: {', '.join(failed)})" if failed else ""))
    return 1 if outcome.failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from synthscope.scorecard import report, report_html

    ws = open_workspace(args)
    ref = ws.resolve(DatasetRef.parse(args.dataset))
    manifest = report.latest(ws, ref)
    if manifest is None:
        raise CliError(f"{ref} has no scorecard yet: `synthscope score {ref} --reference ... --source ...` first")
    out = Path(args.output or f"{ref.name}-{ref.version}-report.html")
    report_html.write(ws, manifest, out)
    print(f"wrote {out} (scorecard {manifest['report_id']}, {manifest['status'].upper()})")
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    from synthscope.scorecard.policy import DEFAULT_POLICY

    print(DEFAULT_POLICY, end="")
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the scorecard commands to the parser."""
    inputs = argparse.ArgumentParser(add_help=False)
    inputs.add_argument("dataset", metavar="NAME[@VERSION]", help="a synthetic dataset version")
    inputs.add_argument("--reference", metavar="NAME[@VERSION]",
                        help="real data it imitates (structure, fidelity, skew)")
    inputs.add_argument("--source", metavar="NAME[@VERSION]", help="private data the generator saw (privacy)")
    inputs.add_argument("--holdout", metavar="NAME[@VERSION]",
                        help="private data of the same population the generator did not see (privacy baselines)")
    p = add_command(sub, "score", parents=[common, inputs],
                    example="synthscope score -w ws synth@v3 --reference real --source crm --holdout crm-holdout",
                       help="scorecard of a synthetic version: contamination, quality, bias, privacy")
    p.add_argument("--policy", metavar="FILE", help="YAML thresholds (default: `synthscope policy`)")
    p.add_argument("--no-embeddings", dest="embeddings", action="store_false",
                   help="skip the metrics that need sentence embeddings")
    p.add_argument("--background", action="store_true", help="run as a job; print its id and return")
    p.set_defaults(func=cmd_score)
    p = add_command(sub, "gate", parents=[common, inputs],
                    example="synthscope gate -w ws synth@v3 --policy policy.yaml --json gate.json",
                       help="grade a version's scorecard by a policy; exit 1 on fail (for CI)")
    p.add_argument("--policy", metavar="FILE", help="YAML thresholds (default: `synthscope policy`)")
    p.add_argument("--json", metavar="FILE", help="write the graded report as JSON")
    p.add_argument("--rebuild", action="store_true", help="measure again even if a scorecard exists")
    p.set_defaults(func=cmd_gate)
    p = add_command(sub, "report", parents=[common], help="one self-contained HTML report of a version's scorecard",
                    example="synthscope report -w ws synth@v3 -o synth-v3.html")
    p.add_argument("dataset", metavar="NAME[@VERSION]")
    p.add_argument("-o", "--output", help="default: NAME-VERSION-report.html")
    p.set_defaults(func=cmd_report)
    p = add_command(sub, "policy", help="print the default policy (a starting point for your own)",
                    example="synthscope policy > policy.yaml")
    p.set_defaults(func=cmd_policy)
