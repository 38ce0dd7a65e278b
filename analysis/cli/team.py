"""Team: ``push`` a workspace to object storage."""

from __future__ import annotations

import argparse
from typing import Any

from synthscope.cli.common import CliError, add_command
from synthscope.core.workspace import Workspace


def cmd_push(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from synthscope.team.push import push

    ws = Workspace.open(args.path or args.workspace)
    if ws.read_only:
        raise CliError("push publishes a local workspace; this one is already on object storage")
    try:
        report = push(ws, args.url)
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"push to {args.url} failed, readers still see the previous push: {exc}") from exc
    print(f"pushed {ws.root} to {report.url}: {report.files} files, {report.uploaded} uploaded "
          f"({report.bytes / 1e6:.1f} MB); serve it with `synthscope serve {report.url}`")
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the team commands to the parser."""
    p = add_command(sub, "push", parents=[common], help="publish the workspace to object storage for a team to read",
                    example="synthscope push ws s3://team-bucket/synthscope")
    p.add_argument("path", nargs="?", help="local workspace (default: --workspace)")
    p.add_argument("url", help="s3://bucket/prefix; credentials and endpoint from the AWS_* variables")
    p.set_defaults(func=cmd_push)
