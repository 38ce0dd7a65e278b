"""Browser tests' shared parts: a real ``synthscope serve`` to point Chromium at, and its flags."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(workspace: Path, log_path: Path, *options: str, port: int | None = None, python: str = sys.executable,
          cwd: Path = REPO) -> Iterator[str]:
    """``synthscope serve`` on ``workspace`` at a free loopback port; yields its URL once healthy, then stops it.

    ``options`` go to ``synthscope serve`` (``--secrets FILE``); ``port`` when the caller needs it beforehand;
    ``python`` and ``cwd`` to serve from another installation (the wheel test)."""
    port = port or free_port()
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen([python, "-m", "synthscope.cli", "serve", str(workspace), "--port", str(port),
                               *options],
                              cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise AssertionError(f"the dashboard exited: {log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the dashboard did not start: {log_path.read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
