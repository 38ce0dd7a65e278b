"""The Dockerfile, without a Docker engine: its installs keep the pinned torch, and its command starts a dashboard.

The test reads the Dockerfile's instructions, checks the pip installs (torch from the pin first,
every later install constrained), and runs the container's command line (ENTRYPOINT + CMD) here,
the way the documented ``docker run`` line would: with the image's ENV, the ``-e`` variables of
that line, a ``/.dockerenv`` (which Docker puts in every container) and a small workspace in place
of the demo one. It must answer HTTP; a command that ``synthscope serve`` refuses fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from synthscope.core.workspace import Workspace
from synthscope.datasets.ingest import ingest
from tests.fixtures.processes import free_port, stop, wait_until_healthy

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, its arguments), continuation lines joined, comments left out."""
    found, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comment lines, inside a continued instruction too
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        keyword, _, rest = (current + stripped).partition(" ")
        found.append((keyword.upper(), rest.strip()))
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return found


def variables(steps: list[tuple[str, str]], kind: str) -> dict[str, str]:
    """The ARG defaults or the ENV settings (``NAME=value ...`` or the old ``NAME value``)."""
    values: dict[str, str] = {}
    for keyword, rest in steps:
        if keyword != kind:
            continue
        words = shlex.split(rest)
        if kind == "ENV" and "=" not in words[0]:
            values[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            name, _, value = word.partition("=")
            values[name] = value
    return values


def expand(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)), text)


def container_command(steps: list[tuple[str, str]]) -> list[str]:
    """ENTRYPOINT + CMD as the container runs them (the JSON form, or the shell form's words)."""
    argv: list[str] = []
    for kind in ("ENTRYPOINT", "CMD"):
        rest = next((r for k, r in reversed(steps) if k == kind), None)
        if rest is None:
            continue
        if rest.startswith("["):
            argv += json.loads(rest)
        else:  # sh -c: only plain words can be run without a shell here
            assert not re.search(r"[$;&|<>`]", rest), f"{kind} needs a shell: {rest}"
            argv += shlex.split(rest)
    return argv


def documented_run() -> list[str]:
    """The ``docker run`` line the Dockerfile's header tells the operator to type."""
    lines = [line.lstrip("# ").split("  #")[0].strip() for line in DOCKERFILE.read_text().splitlines()
             if line.lstrip("# ").startswith("docker run ")]
    assert len(lines) == 1, f"the Dockerfile's header should show one docker run line, not {lines}"
    return shlex.split(lines[0])


def test_the_installs_put_the_pinned_torch_first_and_constrain_the_rest() -> None:
    steps = instructions(DOCKERFILE.read_text())
    args = variables(steps, "ARG")
    pin = next(line.strip() for line in (REPO / "constraints.txt").read_text().splitlines()
               if line.strip().startswith("torch=="))
    assert re.search(rf"^TORCH\s*\?=\s*{re.escape(pin)}$", (REPO / "Makefile").read_text(), re.M)
    installs = [shlex.split(expand(part, args)) for keyword, rest in steps if keyword == "RUN"
                for part in re.split(r"&&|;", rest) if "pip install" in part]
    installs = [words[words.index("install") + 1:] for words in installs]
    installs = [words for words in installs if words != ["--upgrade", "pip"]]
    packages = [[w for i, w in enumerate(words) if not w.startswith("-")
                 and not (i and words[i - 1] in {"-c", "--constraint", "--index-url", "-i", "--extra-index-url"})]
                for words in installs]
    assert packages[0] == [pin], f"the first install should be {pin} alone, not {installs[0]}"
    assert "--index-url" in installs[0]  # the CPU wheel, as the comment says
    for words, names in zip(installs[1:], packages[1:], strict=True):
        constrained = ("-c" in words and words[words.index("-c") + 1] == "constraints.txt") or "--no-deps" in words
        assert constrained, f"pip install {' '.join(words)} may replace the pinned torch: add -c constraints.txt"
        assert not any(n.startswith("torch") for n in names), words
    assert ["."] in packages[1:]  # the project itself


def test_the_documented_run_publishes_on_loopback_only() -> None:
    run = documented_run()
    published = [run[i + 1] for i, w in enumerate(run) if w in {"-p", "--publish"}]
    assert published and all(p.startswith("127.0.0.1:") and p.count(":") == 2 for p in published), published
    readme = " ".join((REPO / "README.md").read_text().split())
    assert " ".join(run) in readme, "the README's Docker section shows another docker run line"


@pytest.fixture
def container(tmp_path: Path) -> dict[str, object]:
    """What the command finds in the container: a workspace, /app with .streamlit, a HOME, a /.dockerenv."""
    ws = Workspace.init(tmp_path / "ws")
    source = tmp_path / "b.jsonl"
    source.write_text("".join(json.dumps({"question": f"what is {i} + {i}?", "answer": str(2 * i)}) + "\n"
                              for i in range(3)))
    ingest(ws, source, name="b", kind="benchmark")
    app = tmp_path / "app"
    (app / ".streamlit").mkdir(parents=True)
    (app / ".streamlit" / "config.toml").write_text((REPO / ".streamlit" / "config.toml").read_text())
    (tmp_path / "home").mkdir()
    marker = tmp_path / ".dockerenv"
    marker.touch()
    shim = tmp_path / "bin" / "synthscope"  # the image's console script, with this test's /.dockerenv
    shim.parent.mkdir()
    shim.write_text(f"#!{sys.executable}\nimport sys\nfrom pathlib import Path\n"
                    "from synthscope.cli import dashboard, main\n"
                    f"dashboard.CONTAINER_MARKERS = (Path({str(marker)!r}),)\nsys.exit(main())\n")
    shim.chmod(0o755)
    return {"ws": ws.root, "app": app, "home": tmp_path / "home", "bin": shim.parent, "log": tmp_path / "serve.log"}


def test_the_container_command_starts_a_dashboard(container: dict[str, object]) -> None:
    steps = instructions(DOCKERFILE.read_text())
    argv = container_command(steps)
    assert argv[:2] == ["synthscope", "serve"], argv
    demo = next(re.search(r"synthscope demo (\S+)", rest).group(1) for k, rest in steps  # type: ignore[union-attr]
                if k == "RUN" and "synthscope demo" in rest)
    exposed = next(rest for k, rest in steps if k == "EXPOSE")
    assert demo in argv and argv[argv.index("--port") + 1] == exposed
    port = free_port()
    argv = [str(container["ws"]) if a == demo else str(port) if a == exposed else a for a in argv]
    run = documented_run()
    given = dict(run[i + 1].split("=", 1) for i, w in enumerate(run) if w in {"-e", "--env"})  # docker run -e
    env = {"PATH": f"{container['bin']}{os.pathsep}{os.environ['PATH']}", "HOME": str(container["home"]),
           **variables(steps, "ENV"), **given}

    # Without the variables the operator adds on `docker run`, serve refuses and says what to add.
    bare = {k: v for k, v in env.items() if k in {"PATH", "HOME"} or k in variables(steps, "ENV")}
    refused = subprocess.run(argv, env=bare, cwd=container["app"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "docker run -p 127.0.0.1:" in refused.stderr, refused.stderr

    log_path = Path(container["log"])  # type: ignore[arg-type]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(argv, env=env, cwd=container["app"], stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", server, "the container's command", log_path, timeout=120)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
    finally:
        stop(server, timeout=15)
    assert "published on 127.0.0.1 only" in log_path.read_text()
