"""Rendering users' Jinja prompt templates without letting one template take the machine.

A template comes from a user (the Generate page, ``synthscope generate --template``).
Jinja's sandbox keeps it away from Python's internals, but not from asking for a lot:
nested ``range(100000)`` loops run for hours, ``'a' * 10**10`` wants 10 GB, and Jinja
evaluates constant expressions like that one already while compiling (which finding a
template's fields does too). So templates are compiled and rendered only in a child
process (:class:`Renderer`) that limits itself before each request: its address space,
its CPU seconds, and the length of each rendered prompt; the parent also stops waiting
after a wall-clock timeout and kills it. One child serves a whole generation run (it
costs about 0.1 s to start).

Whatever goes wrong (a syntax error, a field the row lacks, an attribute the sandbox
refuses, a limit) is a :class:`TemplateError` whose message is one sentence.
"""

from __future__ import annotations

import json
import math
import resource
import selectors
import signal
import subprocess
import sys
from typing import Any

MAX_TEMPLATE_CHARS = 50_000
MAX_PROMPT_CHARS = 100_000
CPU_SECONDS = 2  # per batch of rows
WALL_SECONDS = 10.0  # per batch of rows, from the request to the reply
MEMORY_BYTES = 512 << 20  # address space of the rendering process


class TemplateError(ValueError):
    """A template that cannot render; the message says why in one sentence."""


def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def _check_size(template: str) -> None:
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"the template is {len(template):,} characters long; at most {MAX_TEMPLATE_CHARS:,} "
                            "are allowed")


class Renderer:
    """The parent's side: ``with Renderer() as r: r.render(template, rows)``; the child starts on first use."""

    def __init__(self) -> None:
        self._child: subprocess.Popen[str] | None = None

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child.wait()
            self._child = None

    def fields(self, template: str) -> set[str]:
        """The names ``template`` reads from its row (a syntax error is a :class:`TemplateError` with its line)."""
        return set(self._ask({"op": "fields", "template": template})["fields"])

    def render(self, template: str, rows: list[dict[str, Any]]) -> list[str]:
        """Each row's prompt, in order; a :class:`TemplateError` for the first row that cannot render."""
        return self._ask({"op": "render", "template": template, "rows": rows})["prompts"] if rows else []

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        _check_size(request["template"])
        child = self._start()
        limits = {"cpu_seconds": CPU_SECONDS, "memory_bytes": MEMORY_BYTES, "prompt_chars": MAX_PROMPT_CHARS}
        line = json.dumps({**request, "limits": limits}, ensure_ascii=False, default=_plain) + "\n"
        try:
            assert child.stdin is not None
            child.stdin.write(line)
            child.stdin.flush()
        except BrokenPipeError:
            raise self._died() from None
        reply = self._read_reply(child)
        if "error" in reply:
            raise TemplateError(reply["error"])
        return reply

    def _start(self) -> subprocess.Popen[str]:
        if self._child is None:
            self._child = subprocess.Popen(
                [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True, encoding="utf-8")
        return self._child

    def _read_reply(self, child: subprocess.Popen[str]) -> dict[str, Any]:
        assert child.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            if not selector.select(WALL_SECONDS):
                self.close()
                raise TemplateError(f"the template took more than {WALL_SECONDS:g} s to render; simplify it")
        line = child.stdout.readline()
        if not line:
            raise self._died()
        return json.loads(line)

    def _died(self) -> TemplateError:
        assert self._child is not None
        code = self._child.wait()
        self._child = None
        if code == -signal.SIGXCPU:  # past its RLIMIT_CPU
            return TemplateError(f"the template needs more than {CPU_SECONDS} s of computing to render; simplify it")
        if code < 0:
            return TemplateError(f"the template could not be rendered: the rendering process was stopped by signal "
                                 f"{-code}, perhaps out of memory (it may use {MEMORY_BYTES >> 20} MiB)")
        return TemplateError(f"the template could not be rendered: the rendering process exited with status {code}")


def _plain(value: Any) -> Any:
    """JSON for what pandas puts in a row besides Python's own types (numpy scalars)."""
    return value.item() if hasattr(value, "item") else str(value)


# -- the child ------------------------------------------------------------------------------------------


def _serve() -> None:
    """Read one request per line on stdin, answer one line on stdout, until stdin closes.

    Before each request the process limits itself as the request says: its address
    space, and the CPU seconds it may still use (SIGXCPU ends it past them).
    """
    sys.stdin.reconfigure(encoding="utf-8")  # type: ignore[union-attr]  # the parent writes UTF-8, whatever the locale
    sys.stdout.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
    env = _environment()
    compiled: dict[str, Any] = {}
    for line in sys.stdin:
        request = json.loads(line)
        limits = request["limits"]
        _limit(resource.RLIMIT_AS, limits["memory_bytes"])
        usage = resource.getrusage(resource.RUSAGE_SELF)
        _limit(resource.RLIMIT_CPU, math.ceil(usage.ru_utime + usage.ru_stime) + limits["cpu_seconds"])
        try:
            if request["op"] == "fields":
                reply: dict[str, Any] = {"fields": sorted(_fields(env, request["template"]))}
            else:
                reply = {"prompts": _render_rows(env, compiled, request["template"], request["rows"],
                                                 limits["prompt_chars"])}
        except TemplateError as exc:
            reply = {"error": str(exc)}
        except MemoryError:
            reply = {"error": f"the template needs more than {limits['memory_bytes'] >> 20} MiB of memory to render"}
        sys.stdout.write(json.dumps(reply, ensure_ascii=False) + "\n")
        sys.stdout.flush()


def _limit(kind: int, soft: int) -> None:
    _, hard = resource.getrlimit(kind)
    resource.setrlimit(kind, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _compiling(step: Any) -> Any:
    """``step()`` (a parse or compile of the template), its errors as :class:`TemplateError`."""
    from jinja2 import TemplateSyntaxError

    try:
        return step()
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template line {exc.lineno}: {_sentence(exc)}") from None
    except (TemplateError, MemoryError):
        raise
    except RecursionError:
        raise TemplateError("the template is nested too deeply") from None
    except Exception as exc:  # Jinja folds constant expressions while compiling: 1/0 fails here
        raise TemplateError(f"the template failed: {type(exc).__name__}: {_sentence(exc)}") from None


def _fields(env: Any, template: str) -> set[str]:
    from jinja2 import meta

    return _compiling(lambda: meta.find_undeclared_variables(env.parse(template)))


def _render_rows(env: Any, compiled: dict[str, Any], template: str, rows: list[dict[str, Any]],
                 max_chars: int) -> list[str]:
    if template not in compiled:
        compiled.clear()
        compiled[template] = _compiling(lambda: env.from_string(template))
    return [_render_one(compiled[template], row, max_chars) for row in rows]


def _render_one(template: Any, row: dict[str, Any], max_chars: int) -> str:
    """The prompt of one row, refused once it grows past ``max_chars``."""
    from jinja2.exceptions import SecurityError, UndefinedError

    seed = row.get("record_id", "?")
    parts, size = [], 0
    try:
        for chunk in template.generate(**row):
            size += len(chunk)
            if size > max_chars:
                raise TemplateError(f"the template makes a prompt longer than {max_chars:,} characters (seed {seed})")
            parts.append(chunk)
    except (TemplateError, MemoryError):
        raise
    except SecurityError as exc:
        raise TemplateError(f"the template is not allowed to do that (seed {seed}): {_sentence(exc)}") from None
    except UndefinedError as exc:
        raise TemplateError(f"the template uses something seed {seed} does not have: {_sentence(exc)}") from None
    except RecursionError:
        raise TemplateError(f"the template recursed too deeply (seed {seed})") from None
    except Exception as exc:  # any error a template can raise (1/0, 'a' + 1, range too big, ...)
        raise TemplateError(f"the template failed on seed {seed}: {type(exc).__name__}: {_sentence(exc)}") from None
    return "".join(parts)


def _sentence(exc: BaseException) -> str:
    text = " ".join(str(getattr(exc, "message", None) or exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


if __name__ == "__main__":
    _serve()
