"""The dashboard: ``serve`` and the ``demo`` workspace it opens on."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from synthscope.cli.common import CliError, add_command
from synthscope.core import allowed
from synthscope.core.workspace import Workspace


def cmd_demo(args: argparse.Namespace) -> int:
    from synthscope.demo.build import build_demo

    root = build_demo(Path(args.path), force=args.force)
    print(f"demo workspace ready at {root}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from synthscope.team import access  # noqa: I001 - kept beside its use

    ws = Workspace.open(args.path or args.workspace)
    app = Path(str(resources.files("synthscope.dashboard") / "app.py"))
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


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the dashboard commands to the parser."""
    p = add_command(sub, "demo", help="build the demo workspace (no network needed)",
                    example="synthscope demo .demo/workspace")
    p.add_argument("path")
    p.add_argument("--force", action="store_true", help="rebuild it if it exists")
    p.set_defaults(func=cmd_demo)

    p = add_command(sub, "serve", parents=[common], help="open the dashboard",
                    example="synthscope serve ws --import-dir ~/datasets")
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
