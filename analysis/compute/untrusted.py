"""Running untrusted Python source (code found in synthetic data) in a sandbox, one process per run.

Threat model
    The source comes from synthetic training data: an LLM wrote it, nobody read it. It may
    loop forever, allocate without bound, fork, delete or overwrite files, read secrets from
    the environment, or talk to the network (exfiltrate, attack a service on localhost). It
    runs on a user's machine or a CI runner, possibly as root. What must hold: the run ends
    within its limits whatever the code does; it changes nothing outside a private folder
    that is removed afterwards; it reaches no network and no other process; it sees none of
    the parent's environment; and a run the sandbox could not set up is reported as
    ``unavailable``, never as ``passed``. Out of scope: a kernel exploit, and a candidate
    written to *fake* a pass (an object whose ``__eq__`` always answers True passes an
    ``assert f(x) == y`` anywhere; in contamination terms a fake pass can only mark a record
    as contaminated, never hide one).

The layers, outermost first (:func:`isolation` probes once per process which of them this
machine allows and caches the answer)
    1. **A process of its own** per run: ``python -I -S -B`` (isolated mode, no site-packages,
       no bytecode writes), an *empty* environment (Python itself adds ``LC_CTYPE`` when it
       coerces the C locale), stdin from ``/dev/null``, its own process group, started in a
       fresh private folder (the working directory) that is removed afterwards. The parent
       captures stdout and stderr together, keeping the last ``Limits.output_bytes``, and kills
       the whole process group past the wall-clock limit.
    2. **Namespaces** (``unshare --user --net --pid --kill-child --mount-proc``): a new network
       namespace holds only a loopback device that is down, so every connection, even to
       127.0.0.1, fails with "network is unreachable" whatever the code calls; a new PID
       namespace makes the Python process its init, so when it ends (or the parent kills it) the
       kernel kills every process it left behind, however it detached itself (``setsid``,
       double fork), and its own ``/proc`` shows no other process (not the parent's environment
       or command line); the user namespace maps no user, so the code runs with no capabilities.
    3. **An unprivileged user**: run as root, the child is dropped to ``nobody`` (uid and gid
       65534, no supplementary groups, no new privileges: ``setpriv`` first in its command)
       before the namespaces are made, so file permissions hold: it cannot write to root's
       files (nor read ``/root``). The interpreter must then be one ``nobody`` may run, so the
       probe tries ``sys.executable`` and then the system's ``python3`` (a virtual environment
       under ``/root`` is unreadable to ``nobody``); the code needs only the standard library.
    4. **Resource limits** set by the child on itself before the code runs, soft = hard, so
       the code cannot raise them back: CPU seconds (``RLIMIT_CPU``; the kernel kills the
       process at the limit), address space (``RLIMIT_AS``: an allocation past it raises
       ``MemoryError`` instead of taking the machine's memory), the size of any file written
       (``RLIMIT_FSIZE``), processes and threads (``RLIMIT_NPROC``, counted per user in the
       new user namespace; root ignores this limit, which is one more reason to drop to
       ``nobody``), open files, and no core dumps.
    5. **An audit hook** (:pep:`578`) installed in the child before the code is compiled. It
       refuses socket ``connect``/``bind``/``sendto``/``sendmsg``; ``subprocess``,
       ``os.system``, ``os.exec*``, ``os.spawn*``, ``posix_spawn``, ``fork`` and ``kill``;
       opening a file for writing, and ``remove``/``rename``/``mkdir``/``chmod``/... , outside
       the private folder (paths are resolved against the current directory; relative writes
       through ``os.open`` are refused since a ``dir_fd`` could point anywhere; hard and
       symbolic links are refused); building code objects by hand; and importing ``ctypes``,
       ``_posixsubprocess`` and CPython's test modules. Each refusal raises ``PermissionError``
       in the code and is listed in :attr:`Outcome.refused`.

What the audit hook does not stop, and why layers 1-4 are the walls
    An audit hook is Python code inside the process it polices. Native code is not audited:
    with any route to native calls (``ctypes`` if it were importable, a crafted code object
    loaded with ``marshal`` — which the import system itself needs, so it cannot be refused —
    or one of CPython's known memory-corruption bugs) the code calls ``connect(2)`` or
    ``fork(2)`` directly and no hook sees it. It also cannot police reads: the code may read
    any file ``nobody`` may read (there is nowhere to send it). So the hook is defence in
    depth and a readable reason in :attr:`Outcome.refused`; what actually holds is the kernel:
    the network namespace, the PID namespace, the unprivileged user and the rlimits. World-
    writable folders (``/tmp``, ``/dev/shm``) are the one place only the hook keeps ``nobody``
    from writing (bounded by ``RLIMIT_FSIZE`` per file, not in number: only the time limits
    bound how many files a run can make, in its folder too); run as an ordinary user, the code
    writes with that user's rights wherever the hook does not look.

Without namespaces
    When ``unshare`` is missing or not permitted (a container without user namespaces,
    macOS), every run is ``unavailable`` with the probe's reason, unless the caller passes
    ``Limits(require_namespaces=False)``: then it runs with layers 1, 3, 4 and 5 only (no
    network wall, and processes that detach from the group may outlive the run until their
    CPU limit ends them).

Passing
    A run *passes* when the source runs to its end: the child then writes a line carrying a
    nonce it read from a pipe before the code started. ``sys.exit(0)``, ``os._exit(0)`` or a
    kill never count as a pass; an exception is ``failed``; ``timeout`` is the wall-clock or
    CPU limit; ``error`` is source that does not compile or a process that ended without a
    result; ``unavailable`` is a sandbox that could not be set up.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace

STATUSES = ("passed", "failed", "timeout", "error", "unavailable")
NOBODY = 65534
RESULT_NAME = "__result__"  # a str the source assigns here comes back as Outcome.result
_SOURCE_FILE = "main.py"
_MARKER = "synthscope-untrusted"  # in every child's command line, to find strays
_PROBE_SOURCE = ("import collections, functools, heapq, itertools, json, math, random, re, string, sys, typing\n"
                 f"{RESULT_NAME} = sys.version.split()[0]\n")


@dataclass(frozen=True)
class Limits:
    """What one run may use; the defaults suit a unit test of one function."""

    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_bytes: int = 512 << 20  # address space
    file_bytes: int = 1 << 20  # the largest file it may write
    processes: int = 8  # processes and threads of the sandbox user, the child itself included
    open_files: int = 64
    output_bytes: int = 16 << 10  # the tail of stdout + stderr kept in Outcome.output
    require_namespaces: bool = True  # without network and PID namespaces, runs are "unavailable"


@dataclass(frozen=True)
class Outcome:
    """How one run ended. ``detail`` is one line for a person; only ``passed`` means the code ran to its end."""

    status: str
    detail: str
    output: str = ""
    seconds: float = 0.0
    refused: tuple[str, ...] = ()  # audit events the hook refused, in order, each once
    result: str | None = None  # the str the source left in __result__, when it passed

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class Isolation:
    """What this machine allows, found by :func:`isolation` once per process."""

    python: str | None  # the interpreter children run; None when none could run at all
    python_version: str = ""
    namespaces: bool = False  # network + PID + user namespaces via unshare
    user: int | None = None  # the uid children run as (root parents only)
    reason: str = ""  # why namespaces or the whole sandbox are unavailable
    drop: tuple[str, ...] = field(default=(), repr=False)  # setpriv: to `user`, no new privileges
    unshare: tuple[str, ...] = field(default=(), repr=False)  # the unshare command, when namespaces
    popen_drops: bool = field(default=False, repr=False)  # no setpriv: Popen itself drops to `user` (slower)

    def describe(self) -> str:
        """One line for reports: which walls a run has here."""
        if self.python is None:
            return f"unavailable: {self.reason}"
        walls = ["network, PID and user namespaces" if self.namespaces else f"no namespaces ({self.reason})",
                 f"uid {self.user}" if self.user is not None else "the calling user",
                 "rlimits", "audit hook"]
        return f"Python {self.python_version} ({self.python}); " + ", ".join(walls)


def run_untrusted(source: str, limits: Limits | None = None, *, audit_hook: bool = True) -> Outcome:
    """Run ``source`` as a program in the sandbox and say how it ended.

    ``audit_hook=False`` leaves the audit hook out; it exists so tests can show that the
    kernel's walls hold on their own.
    """
    limits = limits or Limits()
    iso = isolation()
    if iso.python is None:
        return Outcome("unavailable", f"sandbox unavailable: {iso.reason}")
    if limits.require_namespaces and not iso.namespaces:
        return Outcome("unavailable", f"sandbox unavailable: {iso.reason}")
    return _execute(iso, source, limits, audit_hook)


_probe_lock = threading.Lock()
_probed: Isolation | None = None


def isolation() -> Isolation:
    """Probe once (cached) which interpreter and which walls this machine allows."""
    global _probed
    with _probe_lock:
        if _probed is None:
            _probed = _probe()
        return _probed


def _probe() -> Isolation:
    if os.name != "posix":
        return Isolation(None, reason="the sandbox needs a POSIX system (process groups, rlimits)")
    base = _dropping()
    if sys.platform != "linux":
        return _probe_without_namespaces(base, f"namespaces need Linux, this is {sys.platform}")
    unshare = _which("unshare")
    if unshare is None:
        return _probe_without_namespaces(base, "the unshare command is not installed")
    base = replace(base, namespaces=True, unshare=(unshare, "--user", "--net", "--pid", "--kill-child", "--mount-proc"))
    reasons = []
    for python in _interpreters():
        outcome = _execute(replace(base, python=python), _PROBE_SOURCE, Limits(), True)
        if outcome.passed:
            return replace(base, python=python, python_version=outcome.result or "")
        reasons.append(f"{python}: {outcome.detail}")
    why = "; ".join(dict.fromkeys(reasons))
    return _probe_without_namespaces(replace(base, namespaces=False, unshare=()),
                                     f"unshare --user --net --pid failed ({why})")


def _dropping() -> Isolation:
    """Who children run as: root drops them to nobody, with setpriv in the command where it exists.

    setpriv rather than ``Popen(user=...)``: Popen can only vfork() when it changes no ids, and
    fork() of a large parent (a scan holding a model) costs tens of milliseconds per child.
    """
    setpriv = _which("setpriv")
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return Isolation(None, drop=(setpriv, "--no-new-privs") if setpriv else ())
    if setpriv is None:
        return Isolation(None, user=NOBODY, popen_drops=True)
    return Isolation(None, user=NOBODY, drop=(setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                               "--no-new-privs"))


def _probe_without_namespaces(base: Isolation, reason: str) -> Isolation:
    tried = []
    for python in _interpreters():
        outcome = _execute(replace(base, python=python), _PROBE_SOURCE, Limits(), True)
        if outcome.passed:
            return replace(base, python=python, python_version=outcome.result or "", reason=reason)
        tried.append(f"{python}: {outcome.detail}")
    return Isolation(None, reason=f"{reason}; no Python interpreter runs in the sandbox ({'; '.join(tried)})")


def _which(name: str) -> str | None:
    return shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin")


def _interpreters() -> list[str]:
    """``sys.executable`` first, then the system's: whichever an unprivileged child may execute."""
    found = [sys.executable, os.path.realpath(sys.executable), getattr(sys, "_base_executable", "")]
    for name in (f"python{sys.version_info.major}.{sys.version_info.minor}", "python3"):
        found.append(shutil.which(name, path="/usr/bin:/bin:/usr/local/bin") or "")
    return list(dict.fromkeys(p for p in found if p and os.path.exists(p)))


# -- one run ---------------------------------------------------------------------------------------------


def _execute(iso: Isolation, source: str, limits: Limits, audit_hook: bool) -> Outcome:
    assert iso.python is not None
    started = time.monotonic()
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="synthscope-untrusted-"))
    nonce = secrets.token_hex(16).encode()
    nonce_r, nonce_w = os.pipe()
    verdict_r, verdict_w = os.pipe()
    try:
        with open(os.path.join(workdir, _SOURCE_FILE), "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(source)
        if iso.user is not None:
            os.chown(workdir, iso.user, iso.user)
        os.write(nonce_w, nonce)
        os.close(nonce_w)
        nonce_w = -1
        args = [*iso.drop, *(iso.unshare if iso.namespaces else ()), iso.python, "-I", "-S", "-B", "-X", "utf8",
                "-c", _BOOTSTRAP,
                f"{_MARKER}:{os.getpid()}", str(nonce_r), str(verdict_w), str(limits.cpu_seconds),
                str(limits.memory_bytes), str(limits.file_bytes), str(limits.processes), str(limits.open_files),
                "1" if audit_hook else "0"]
        drop = {"user": iso.user, "group": iso.user, "extra_groups": []} if iso.popen_drops else {}
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    env={}, cwd=workdir, pass_fds=(nonce_r, verdict_w), process_group=0,
                                    close_fds=True, **drop)
        except OSError as exc:
            return Outcome("unavailable", f"sandbox unavailable: could not start {args[0]}: {exc.strerror or exc}")
        os.close(nonce_r)
        os.close(verdict_w)
        nonce_r = verdict_w = -1
        output, verdict, killed, cpu = _collect(proc, verdict_r, started + limits.wall_seconds, limits.output_bytes)
        return _judge(nonce, output, verdict, killed, cpu, proc.returncode, limits, time.monotonic() - started)
    finally:
        for fd in (nonce_r, nonce_w, verdict_r, verdict_w):
            if fd >= 0:
                os.close(fd)
        _remove(workdir)


def _collect(proc: subprocess.Popen[bytes], verdict_fd: int, deadline: float,
             cap: int) -> tuple[bytes, bytes, bool, float]:
    """Read output (its tail) and the verdict pipe until both close or the deadline; then reap the child.

    Returns (output, verdict, killed at the deadline, CPU seconds of the child and what it waited for).
    """
    assert proc.stdout is not None
    output, verdict = bytearray(), bytearray()
    killed = False
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ, output)
        selector.register(verdict_fd, selectors.EVENT_READ, verdict)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                killed = _kill(proc)
                break
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer: bytearray = key.data
                buffer += chunk
                if len(buffer) > 2 * cap:  # keep the tail; trim in steps, not per chunk
                    del buffer[:-cap]
    proc.stdout.close()
    while True:  # both pipes closed: the child ended or closed them; wait for it until the deadline
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() >= deadline and not killed:
            killed = _kill(proc)
        if killed:
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.002)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return bytes(output[-cap:]), bytes(verdict[-cap:]), killed, usage.ru_utime + usage.ru_stime


def _kill(proc: subprocess.Popen[bytes]) -> bool:
    """Kill the child's process group, then wait (briefly) until the PID namespace behind it is empty.

    The group is unshare and the namespace's init (the Python child); the kernel kills every
    other process of the namespace when its init dies, and that init is gone only once they
    all are, so waiting for it means no process of the run outlives the call.
    """
    inits = _children(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    until = time.monotonic() + 2.0
    while inits and time.monotonic() < until:
        inits = [pid for pid in inits if _alive(pid)]
        time.sleep(0.005)
    return True


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    """Whether ``pid`` still exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _judge(nonce: bytes, output: bytes, verdict: bytes, killed: bool, cpu: float, code: int | None,
           limits: Limits, seconds: float) -> Outcome:
    lines = verdict.decode("utf-8", "replace").splitlines()
    refused = tuple(dict.fromkeys(line[8:] for line in lines if line.startswith("refused ")))
    text = output.decode("utf-8", "replace")
    ran = dict(output=text, seconds=seconds, refused=refused)
    passed = nonce.decode() + " passed"
    for line in lines:
        if code == 0 and (line == passed or line.startswith(passed + " ")):
            result = line[len(passed) + 1:] or None
            return Outcome("passed", "ran to its end", result=result, **ran)
    if killed:
        return Outcome("timeout", f"ran past its {limits.wall_seconds:g} s wall-clock limit", **ran)
    if cpu >= limits.cpu_seconds - 0.05:
        plural = "" if limits.cpu_seconds == 1 else "s"
        return Outcome("timeout", f"used up its {limits.cpu_seconds} CPU second{plural}", **ran)
    last = {kind: line[len(kind) + 1:] for line in lines for kind in ("failed", "error", "unavailable")
            if line.startswith(kind + " ")}
    if "unavailable" in last or "started" not in lines:
        why = last.get("unavailable") or (text.strip().splitlines() or [f"exit status {code}"])[-1]
        return Outcome("unavailable", f"sandbox unavailable: {_one_line(why)}", **ran)
    if "error" in last:
        return Outcome("error", last["error"], **ran)
    if "failed" in last:
        unsaid = [event for event in refused if event not in last["failed"]]
        refusal = f" (refused {', '.join(unsaid)})" if unsaid else ""
        return Outcome("failed", _one_line(last["failed"] + refusal), **ran)
    return Outcome("error", f"ended without a result (exit status {code})", **ran)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _remove(folder: str) -> None:
    """Remove the private folder even if the code took its own permissions away from parts of it."""
    for root, dirs, _ in os.walk(folder):
        for name in dirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(root, name), 0o700, follow_symlinks=False)
    shutil.rmtree(folder, ignore_errors=True)


# -- the child ---------------------------------------------------------------------------------------------
# Runs as `python -I -S -B -c _BOOTSTRAP marker nonce_fd verdict_fd cpu memory fsize nproc nofile audit` in the
# private folder. It reads the nonce, limits itself, installs the audit hook, then compiles and runs main.py.
# Everything the hook and the verdict use is bound before the code runs, so patching os or builtins cannot
# change them. Verdict lines: "started", "refused <event>", "failed <why>", "error <why>", "unavailable <why>",
# "<nonce> passed [result]".

_BOOTSTRAP = r'''
import os, sys

def _main(argv):
    write, read, close, exit_now, getcwd = os.write, os.read, os.close, os._exit, os.getcwd
    str_, bytes_, int_, type_, len_ = str, bytes, int, type, len
    nonce_fd, out = int(argv[2]), int(argv[3])
    nonce = b""
    while True:
        chunk = read(nonce_fd, 64)
        if not chunk:
            break
        nonce += chunk
    close(nonce_fd)
    try:
        import resource
        kinds = (resource.RLIMIT_CPU, resource.RLIMIT_AS, resource.RLIMIT_FSIZE, resource.RLIMIT_NPROC,
                 resource.RLIMIT_NOFILE, resource.RLIMIT_CORE)
        for kind, value in zip(kinds, [int(v) for v in argv[4:9]] + [0]):
            hard = resource.getrlimit(kind)[1]
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(kind, (value, value))
        with open("main.py", "rb") as f:
            source = f.read()
    except BaseException as exc:
        write(out, ("unavailable the child could not limit itself: %s: %s\n" % (type(exc).__name__, exc)).encode())
        exit_now(3)
    work = getcwd()
    write(out, b"started\n")

    def one_line(text):
        text = " ".join(str_(text).split())
        return text[:297] + "..." if len_(text) > 300 else text

    def report(kind, exc):
        try:
            name = type_(exc).__name__
            try:
                message = one_line(exc)
            except BaseException:
                message = ""
            text = "%s %s: %s" % (kind, name, message) if message else "%s %s" % (kind, name)
        except BaseException:
            text = kind + " an exception that cannot be described"
        write(out, text.replace("\n", " ").encode("utf-8", "replace") + b"\n")

    flushes = []
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            flushes.append(stream.flush)

    def finish(code):
        for flush in flushes:
            try:
                flush()
            except BaseException:
                pass
        exit_now(code)

    blocked = frozenset((
        "subprocess.Popen", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork", "os.forkpty",
        "os.kill", "os.killpg", "pty.spawn", "os.startfile", "socket.connect", "socket.bind", "socket.sendto",
        "socket.sendmsg", "os.link", "os.symlink", "code.__new__", "ctypes.dlopen", "ctypes.dlsym",
        "ctypes.call_function", "ctypes.addressof", "ctypes.string_at", "ctypes.wstring_at", "ctypes.cdata"))
    modules = frozenset(("ctypes", "_ctypes", "_posixsubprocess", "_testcapi", "_testinternalcapi",
                         "_testmultiphase", "_xxtestfuzz", "cffi"))
    # event -> (positions of path arguments, positions of dir_fd arguments)
    path_events = {
        "os.chmod": ((0,), (2,)), "os.chown": ((0,), (3,)), "os.mkdir": ((0,), (2,)), "os.mkfifo": ((0,), (2,)),
        "os.mknod": ((0,), (3,)), "os.remove": ((0,), (1,)), "os.rename": ((0, 1), (2, 3)),
        "os.rmdir": ((0,), (1,)), "os.truncate": ((0,), ()), "os.utime": ((0,), (3,)),
        "os.setxattr": ((0,), ()), "os.removexattr": ((0,), ()), "os.chflags": ((0,), ()),
        "os.lchflags": ((0,), ()), "shutil.chown": ((0,), ()),
    }
    writing = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    said = set()

    def refuse(event):
        if event not in said:
            said.add(event)
            try:
                write(out, b"refused " + event.encode("utf-8", "replace") + b"\n")
            except BaseException:
                pass
        raise PermissionError("the sandbox does not allow " + event)

    def inside(path):
        """Whether str/bytes path, made absolute and normalised by hand, lies in the private folder."""
        if type_(path) is bytes_:
            path = path.decode("utf-8", "surrogateescape")
        elif type_(path) is not str_:  # an int or a PathLike, whose __fspath__ could answer differently later
            return False
        if not path.startswith("/"):
            path = getcwd() + "/" + path
        parts = []
        for part in path.split("/"):
            if part == "..":
                if parts:
                    parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        path = "/" + "/".join(parts)
        return path == work or path.startswith(work + "/")

    def hook(event, args):
        if event in blocked:
            refuse(event)
        elif event == "open":
            path, mode, flags = args[0], args[1], args[2]
            if type_(flags) is int_ and flags & writing and type_(path) is not int_:
                relative = not (type_(path) in (str_, bytes_) and path[:1] in ("/", b"/"))
                if not inside(path) or (mode is None and relative):
                    refuse("open for writing outside the private folder")
        elif event in path_events:
            paths, dir_fds = path_events[event]
            for i in dir_fds:
                if i < len_(args) and args[i] is not None and args[i] != -1:
                    refuse(event + " with dir_fd")
            for i in paths:
                if i < len_(args) and not inside(args[i]):
                    refuse(event + " outside the private folder")
        elif event == "import" and args[0] in modules:
            refuse("import " + args[0])

    if argv[9] == "1":
        sys.addaudithook(hook)
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        code = compile(source, "<untrusted>", "exec")
    except BaseException as exc:
        report("error", exc)
        finish(2)
    try:
        exec(code, namespace)
    except BaseException as exc:
        report("failed", exc)
        finish(1)
    line = nonce + b" passed"
    result = namespace.get("__result__")
    if type_(result) is str_:
        line += b" " + " ".join(result[:200].split()).encode("utf-8", "replace")
    write(out, line + b"\n")
    finish(0)

_main(sys.argv)
'''
