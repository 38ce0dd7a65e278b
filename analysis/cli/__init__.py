"""synthscope's command line, one module per command group; each command is a thin call into the engine.

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
    synthscope sql "SELECT ... FROM latest_verdicts" [--format table|csv|json] [--limit N]
    synthscope gc
    synthscope demo PATH
    synthscope push [PATH] s3://BUCKET/PREFIX
    synthscope serve [PATH | s3://BUCKET/PREFIX] [--host 127.0.0.1] [--port 8501] [--secrets FILE] [--no-auth]
                     [--import-dir DIR ...] [--task-dir DIR ...]

The workspace is ``--workspace``, else ``$SYNTHSCOPE_WORKSPACE``, else ``./workspace``.
An ``s3://`` workspace (one that ``push`` published) opens read-only; see synthscope.core.storage.
A problem the user can fix prints one line, ``error: ...``, and exits 2. Long work runs
here, or with ``--background`` as a job (:mod:`synthscope.tasks`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from synthscope.cli import contamination, dashboard, datasets, evals, generation, scorecard, team
from synthscope.cli.common import USER_ERRORS, one_line, workspace_option
from synthscope.cli.quiet import quiet_libraries
from synthscope.core import hub

GROUPS = (datasets, contamination, evals, scorecard, generation, dashboard, team)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synthscope", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = workspace_option()
    for group in GROUPS:
        group.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "serve":  # the dashboard's environment stays the operator's
        quiet_libraries()
    hub.configure(None)
    try:
        return int(args.func(args))
    except USER_ERRORS as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
