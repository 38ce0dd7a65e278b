"""Untrusted code runs in a sandbox: each wall holds on its own, and nothing the code does reads as a pass."""

from __future__ import annotations

import os
import socket
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from synthscope.compute import untrusted
from synthscope.compute.untrusted import Limits, run_untrusted

ISO = untrusted.isolation()
needs_sandbox = pytest.mark.skipif(not ISO.namespaces, reason=f"no sandbox with namespaces here: {ISO.reason}")
QUICK = Limits(cpu_seconds=1, wall_seconds=3.0)
BOTH_LAYERS = pytest.mark.parametrize("audit_hook", [True, False], ids=["with-hook", "kernel-only"])


def stray_processes() -> list[int]:
    """Processes of this test run's sandboxes still alive (their command line carries our pid)."""
    marker = f"synthscope-untrusted:{os.getpid()}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


@needs_sandbox
def test_code_that_runs_to_its_end_passes_and_reports_its_result() -> None:
    outcome = run_untrusted("import json\nprint('hello')\n__result__ = json.dumps([1, 2])\n")
    assert (outcome.status, outcome.result, outcome.output, outcome.refused) == ("passed", "[1, 2]", "hello\n", ())


@needs_sandbox
@pytest.mark.parametrize("source, status, detail", [
    ("assert 1 + 1 == 3, 'wrong sum'", "failed", "AssertionError: wrong sum"),
    ("raise KeyError('k')", "failed", "KeyError: 'k'"),
    ("import sys\nsys.exit(0)", "failed", "SystemExit: 0"),
    ("import os\nos._exit(0)", "error", "ended without a result (exit status 0)"),
    ("def f(:\n    pass", "error", "SyntaxError: invalid syntax"),
])
def test_only_running_to_the_end_is_a_pass(source: str, status: str, detail: str) -> None:
    outcome = run_untrusted(source, QUICK)
    assert outcome.status == status and outcome.detail.startswith(detail) and not outcome.passed


@needs_sandbox
@BOTH_LAYERS
def test_no_connection_reaches_a_listener_on_the_loopback(audit_hook: bool) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.3)
        port = listener.getsockname()[1]
        source = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'secret')\n"
        outcome = run_untrusted(source, QUICK, audit_hook=audit_hook)
        with pytest.raises(TimeoutError):
            listener.accept()
    assert outcome.status == "failed"
    if audit_hook:
        assert outcome.refused == ("socket.connect",) and "does not allow socket.connect" in outcome.detail
    else:  # the network namespace alone: its loopback is down
        assert outcome.refused == () and "Network is unreachable" in outcome.detail


@needs_sandbox
@BOTH_LAYERS
def test_a_file_outside_the_private_folder_is_not_written(tmp_path: Path, audit_hook: bool) -> None:
    if not audit_hook and ISO.user is None:
        pytest.skip("run as an ordinary user, only the audit hook keeps the code out of that user's folders")
    target = tmp_path / "planted.txt"
    outcome = run_untrusted(f"open({str(target)!r}, 'w').write('x')\n", QUICK, audit_hook=audit_hook)
    assert outcome.status == "failed" and "PermissionError" in outcome.detail
    assert not target.exists()


@needs_sandbox
@pytest.mark.parametrize("source", [
    "open('/tmp/synthscope-planted-{n}', 'w')",  # world-writable: here only the hook stands in the way
    "import os\nos.open('../synthscope-planted-{n}', os.O_WRONLY | os.O_CREAT)",
    "import os\nos.chdir('/tmp')\nopen('synthscope-planted-{n}', 'a')",
    "import os\nos.symlink('/tmp/synthscope-planted-{n}', 'link')",
    "import os\nos.mkdir('/tmp/synthscope-planted-{n}')",
])
def test_the_audit_hook_refuses_writes_outside_the_private_folder_however_spelled(source: str) -> None:
    n = f"{os.getpid()}-{time.monotonic_ns()}"
    outcome = run_untrusted(source.format(n=n), QUICK)
    assert outcome.status == "failed" and outcome.refused and "PermissionError" in outcome.detail
    assert not Path(f"/tmp/synthscope-planted-{n}").exists()


@needs_sandbox
def test_the_private_folder_is_writable_and_removed_afterwards() -> None:
    source = textwrap.dedent("""
        import os
        os.mkdir('sub')
        with open('sub/notes.txt', 'w') as f:
            f.write('kept for the run')
        os.chmod('sub', 0)  # the code may lock its own folder; the cleanup still removes it
        __result__ = os.getcwd()
    """)
    outcome = run_untrusted(source, QUICK)
    assert outcome.passed and outcome.result and outcome.result.startswith("/")
    assert not os.path.exists(outcome.result)


@needs_sandbox
def test_a_file_larger_than_the_limit_cannot_be_written() -> None:
    outcome = run_untrusted("open('big', 'wb').write(b'x' * (2 << 20))\n", Limits(file_bytes=1 << 20))
    assert outcome.status == "failed" and "File too large" in outcome.detail


@needs_sandbox
def test_an_infinite_loop_ends_at_its_cpu_limit() -> None:
    started = time.monotonic()  # the wall limit is generous: on a busy machine 1 CPU second takes longer
    outcome = run_untrusted("while True:\n    pass\n", Limits(cpu_seconds=1, wall_seconds=20.0))
    assert outcome.status == "timeout" and outcome.detail == "used up its 1 CPU second"
    assert time.monotonic() - started < 20.0


@needs_sandbox
def test_code_that_sleeps_is_killed_at_the_wall_clock_limit() -> None:
    started = time.monotonic()
    outcome = run_untrusted("import time\nprint('before', flush=True)\ntime.sleep(60)\n",
                            Limits(cpu_seconds=5, wall_seconds=1.0))
    assert outcome.status == "timeout" and "1 s wall-clock" in outcome.detail and outcome.output == "before\n"
    assert time.monotonic() - started < 3.0
    assert stray_processes() == []


@needs_sandbox
@pytest.mark.parametrize("source", [
    "x = [0] * (10 ** 10)",
    "x = bytearray(1 << 40)",
    "chunks = []\nwhile True:\n    chunks.append(bytearray(50 << 20))",
])
def test_a_memory_bomb_fails_with_memory_error_instead_of_taking_the_machine(source: str) -> None:
    started = time.monotonic()
    outcome = run_untrusted(source, Limits(memory_bytes=256 << 20, cpu_seconds=5, wall_seconds=10.0))
    assert outcome.status in ("failed", "error") and "MemoryError" in outcome.detail
    assert time.monotonic() - started < 5.0


@needs_sandbox
def test_a_fork_is_refused_by_the_hook() -> None:
    outcome = run_untrusted("import os\nwhile True:\n    os.fork()\n", QUICK)
    assert outcome.status == "failed" and outcome.refused == ("os.fork",)


@needs_sandbox
def test_subprocesses_are_refused() -> None:
    outcome = run_untrusted("import subprocess\nsubprocess.run(['sh', '-c', 'echo pwned'])\n", QUICK)
    assert outcome.status == "failed" and "pwned" not in outcome.output and outcome.refused


@needs_sandbox
def test_a_fork_bomb_is_contained_by_the_kernel_alone() -> None:
    """Without the hook: rlimits cap the processes, and every one of them (detached too) dies with the run."""
    source = textwrap.dedent("""
        import os, time
        made = 0
        for _ in range(1000):
            try:
                if os.fork() == 0:
                    os.setsid()  # leave the process group the parent kills
                    while True:
                        time.sleep(1)
                made += 1
            except OSError:
                pass
        print('forked', made, flush=True)
        time.sleep(60)
    """)
    started = time.monotonic()
    outcome = run_untrusted(source, Limits(cpu_seconds=2, wall_seconds=2.0, processes=6), audit_hook=False)
    assert outcome.status == "timeout" and time.monotonic() - started < 5.0
    made = int(outcome.output.split("forked ")[1].split()[0])
    assert 0 < made < 6  # RLIMIT_NPROC: the child and its few processes, not a thousand
    assert stray_processes() == []


@needs_sandbox
def test_the_parents_environment_is_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHSCOPE_TEST_SECRET", "hunter2")
    source = textwrap.dedent(f"""
        import os
        seen = repr(dict(os.environ))
        for path in ('/proc/{os.getpid()}/environ', '/proc/1/environ', '/proc/self/environ'):
            try:
                seen += open(path, 'rb').read().decode('utf-8', 'replace')
            except OSError as exc:
                seen += type(exc).__name__
        __result__ = seen
    """)
    outcome = run_untrusted(source, QUICK)
    assert outcome.passed and outcome.result is not None
    assert "hunter2" not in outcome.result and "SYNTHSCOPE_TEST_SECRET" not in outcome.result


@needs_sandbox
def test_output_keeps_its_tail_within_the_cap() -> None:
    outcome = run_untrusted("for i in range(200000):\n    print(i)\n", Limits(output_bytes=1000))
    assert outcome.passed and len(outcome.output) <= 1000 and outcome.output.endswith("199999\n")


def test_without_namespaces_every_run_is_unavailable_never_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    bare = replace(ISO, namespaces=False, reason="unshare --user --net --pid failed (not permitted)")
    monkeypatch.setattr(untrusted, "isolation", lambda: bare)
    outcome = run_untrusted("__result__ = 'ok'")
    assert outcome.status == "unavailable" and not outcome.passed
    assert outcome.detail == "sandbox unavailable: unshare --user --net --pid failed (not permitted)"
    if ISO.python is not None:  # the caller may accept the weaker sandbox explicitly: still another user, hooked
        weaker = run_untrusted("import os, socket\n__result__ = str(os.getuid())\nsocket.socket().bind(('', 0))\n",
                               Limits(require_namespaces=False))
        assert weaker.status == "failed" and weaker.refused == ("socket.bind",)
        assert run_untrusted("import os\n__result__ = str(os.getuid())", Limits(require_namespaces=False)).result \
            == str(ISO.user if ISO.user is not None else os.getuid())


@needs_sandbox
def test_a_sandbox_that_fails_to_start_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = replace(ISO, unshare=("/bin/sh", "-c", "echo no namespace for you >&2; exit 1", "sh"))
    monkeypatch.setattr(untrusted, "isolation", lambda: broken)
    outcome = run_untrusted("pass")
    assert outcome.status == "unavailable" and outcome.detail == "sandbox unavailable: no namespace for you"
