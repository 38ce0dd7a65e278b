"""What every command group shares: the error a user can fix, the workspace option, tables, jobs."""

from __future__ import annotations

import argparse
import os
import textwrap
from collections.abc import Sequence
from typing import Any

from synthscope.compute.embeddings import ModelUnavailable
from synthscope.compute.models import ModelError
from synthscope.core.workspace import Workspace, WorkspaceError
from synthscope.datasets.ingest import IngestError


class CliError(Exception):
    """A problem with what the user typed; printed as one line, exit status 2."""


# What a user can fix: printed as one line, exit status 2. Anything else is a bug and keeps its traceback.
USER_ERRORS = (WorkspaceError, IngestError, CliError, ModelError, ModelUnavailable, ValueError)


def one_line(exc: BaseException) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


def workspace_option() -> argparse.ArgumentParser:
    """The parent parser of every command that works on a workspace: ``-w/--workspace``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-w", "--workspace", default=os.environ.get("SYNTHSCOPE_WORKSPACE", "workspace"),
                        help="workspace folder (default: $SYNTHSCOPE_WORKSPACE or ./workspace)")
    return common


HELP_WIDTH = 88  # descriptions and notes are wrapped here, so that the example below them keeps its line


def add_command(sub: Any, name: str, *, help: str, example: str, notes: str = "", description: str = "",
                **kwargs: Any) -> argparse.ArgumentParser:
    """``sub.add_parser(name)`` with the help every command has: what it does, ``notes``, and one example.

    The example is the last line of ``--help``, unwrapped, so it can be copied; it starts with
    ``synthscope NAME`` and the parser takes it (tests/cli/test_help.py). ``help`` (one line in the
    list of commands) is also the description unless ``description`` says more.
    """
    text = description or help.replace("%%", "%")  # only the one-line help goes through %-formatting
    epilog = "".join(textwrap.fill(part, HELP_WIDTH) + "\n\n" for part in [notes] if part)
    return sub.add_parser(name, help=help, description=textwrap.fill(text, HELP_WIDTH),
                          epilog=f"{epilog}example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter,
                          **kwargs)


def open_workspace(args: argparse.Namespace) -> Workspace:
    return Workspace.open(args.workspace)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [[fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if value != value else f"{value:.3f}"  # NaN: the stage found nothing
    return str(value)


def started(ws: Workspace, job_id: str) -> int:
    """What ``--background`` prints: the job and where its progress and log are."""
    print(f"started job {job_id}; progress in {ws.jobs_dir / job_id / 'status.json'}, "
          f"log in {ws.jobs_dir / job_id / 'log.txt'}")
    return 0
