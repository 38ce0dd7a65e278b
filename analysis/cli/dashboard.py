"""The dashboard: ``serve`` and the ``demo`` workspace it opens on."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from synthscope.cli.common import CliError, add_command
from synthscope.core import allowed
from synthscope.core.workspace import Workspace

# In a container, the address `docker run -p ADDRESS:PORT:PORT` published the dashboard's port on. The server must
# listen on every interface of the container for the mapping to reach it; without sign-in, serve does so only when
# the operator says the port is published on loopback (README: Docker). Outside a container it changes nothing.
PUBLISHED_ENV = "SYNTHSCOPE_PUBLISHED_ON"
# Files the runtime puts in every container (Docker's, Podman's): the variable is honoured only where one exists.
CONTAINER_MARKERS = (Path("/.dockerenv"), Path("/run/.containerenv"))


def cmd_demo(args: argparse.Namespace) -> int:
    from synthscope.cli.quiet import only_own_bars

    path = Path(args.path)
    with only_own_bars() as bars_off:  # before _build_demo's imports bring tqdm in: it reads TQDM_DISABLE once
        did = _build_demo(path, args, bars_off)
    print(f"demo workspace at {path.resolve()}: {did}")
    return 0


def _build_demo(path: Path, args: argparse.Namespace, bars_off: bool) -> str:
    """Build or finish the demo at ``path`` as ``args`` say, with step bars unless ``bars_off``; what it did."""
    from synthscope.cli.progress import StepBars
    from synthscope.demo.build import build_demo, ensure_demo

    rest = "job" if args.rest_in_background else "now"
    with StepBars(disable=bars_off) as bars:
        if args.resume and not args.force:
            return ensure_demo(path, bars, rest=rest)
        build_demo(path, force=args.force, report=bars, rest=rest)
    return "built" if rest == "now" else "built the first half; the rest is building in the background"


def _open_or_create(root: str) -> Workspace:
    """The workspace at ``root``; a new one when ``root`` is missing or an empty folder (the dashboard then guides)."""
    from synthscope.core import storage

    path = Path(root)
    if not storage.is_remote(root) and (not path.exists() or (path.is_dir() and not any(path.iterdir()))):
        ws = Workspace.init(path)
        print(f"created an empty workspace at {ws.root}: the Overview shows how to import and scan your data")
        return ws
    return Workspace.open(root)


def cmd_serve(args: argparse.Namespace) -> int:
    from synthscope.team import access  # noqa: I001 - kept beside its use

    ws = _open_or_create(args.path or args.workspace)
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
    published = None  # in a container: the loopback address the operator published the port on
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
        published = None if args.no_auth else _published_on_loopback()
        if published:
            print(f"no sign-in configured: listening on {args.host} inside a container whose port {args.port} is "
                  f"published on {published} only ({PUBLISHED_ENV}), so only this machine can open it, and anyone "
                  "on this machine can. Published on another address it would be open to everyone who can reach "
                  "that address.", flush=True)
        elif not args.no_auth:
            hint = (f" In a container, publish the port on this machine only and say so: docker run -p "
                    f"127.0.0.1:{args.port}:{args.port} -e {PUBLISHED_ENV}=127.0.0.1 ... (README: Docker)."
                    if _in_container() else "")
            raise CliError(f"refusing to serve on {args.host} without sign-in: anyone who can reach this machine "
                           "could read the workspace. Configure sign-in ([auth] in .streamlit/secrets.toml, see "
                           "the README's 'Sign-in for a shared dashboard'), or pass --no-auth to serve it open."
                           + hint)
        else:
            print(f"WARNING: --no-auth: serving {ws.root} on {args.host} WITHOUT SIGN-IN. Anyone who can reach "
                  f"this machine on port {args.port} can read every dataset and result in it.", file=sys.stderr)
    else:
        print(f"no sign-in configured: the dashboard binds to {args.host} only, so only this machine can open it, "
              "and anyone on this machine can", flush=True)
    if import_dirs:
        print(f"the import form reads files under: {', '.join(map(str, import_dirs))}", flush=True)
    else:
        print("the import form reads uploads only (name folders it may read with --import-dir)", flush=True)
    if published:  # the address here is the container's; the user opens the host's end of the mapping
        shown = f"[{published}]" if ":" in published else published
        print(f"synthscope dashboard: http://{shown}:PORT, PORT being the host port of docker run -p "
              f"{published}:PORT:{args.port}  (workspace {ws.root})", flush=True)
    else:
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


def _in_container() -> bool:
    return any(marker.exists() for marker in CONTAINER_MARKERS)


def _published_on_loopback() -> str | None:
    """The loopback address ``$SYNTHSCOPE_PUBLISHED_ON`` names, in a container; None when it is not set.

    Raises :class:`CliError` when it is set outside a container, or names an address others can reach.
    """
    published = os.environ.get(PUBLISHED_ENV, "").strip()
    if not published:
        return None
    if not _in_container():
        raise CliError(f"{PUBLISHED_ENV} is set, but this is not a container (no "
                       f"{' or '.join(map(str, CONTAINER_MARKERS))}): it only describes how `docker run -p` published "
                       "a container's port. Serve on 127.0.0.1 (the default), or configure sign-in")
    if ":" in published and not published.startswith(("[", ":")) and published.count(":") == 1:
        raise CliError(f"{PUBLISHED_ENV}={published}: give the address only, e.g. {PUBLISHED_ENV}=127.0.0.1")
    try:
        loopback = published == "localhost" or ipaddress.ip_address(published.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise CliError(f"{PUBLISHED_ENV}={published}: a port published there is open, without sign-in, to everyone "
                       "who can reach that address; publish it on 127.0.0.1 (docker run -p 127.0.0.1:8501:8501 -e "
                       f"{PUBLISHED_ENV}=127.0.0.1) or configure sign-in")
    return published


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
    p.add_argument("--resume", action="store_true",
                   help="build it if missing, finish it if its second half was interrupted, else leave it")
    p.add_argument("--rest-in-background", action="store_true",
                   help="return after the first half (datasets and a scan for copies: the Contamination page); "
                        "the rest (semantic scan, calibration, scorecards, tiny models, evaluations) builds as a job "
                        "the dashboard shows")
    p.set_defaults(func=cmd_demo)

    p = add_command(sub, "serve", parents=[common], help="open the dashboard",
                    notes="Without sign-in the dashboard binds to 127.0.0.1. In a container whose port is published "
                          f"on loopback only (docker run -p 127.0.0.1:8501:8501), {PUBLISHED_ENV}=127.0.0.1 lets "
                          "it listen on all of the container's interfaces (README: Docker).",
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
