"""User templates render in a bounded child process: hostile ones end with one sentence, not a hung server."""

from __future__ import annotations

import pytest

from synthscope.compute import sandbox
from synthscope.compute.sandbox import Renderer, TemplateError

ROWS = [{"record_id": "s0", "prompt": "Say hello.", "n": 3}]
NESTED_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


@pytest.mark.parametrize("template, message", [
    ("{{ prompt.__class__ }}", "not allowed to do that (seed s0): access to attribute '__class__'"),
    ("{{ prompt.__class__.__mro__[1].__subclasses__() }}", "not allowed to do that"),
    ("{{ prompt.nosuch }}", "uses something seed s0 does not have: 'str object' has no attribute 'nosuch'"),
    ("{{ topic }}", "uses something seed s0 does not have: 'topic' is undefined"),
    ("{{ 'a' * 10**10 }}", "needs more than 512 MiB of memory"),
    ("{{ 'x'.ljust(10**10) }}", "needs more than 512 MiB of memory"),
    ("{{ 'a' * 200000 }}", "makes a prompt longer than 100,000 characters (seed s0)"),
    ("{% for i in range(100000) %}{{ prompt }}{% endfor %}", "makes a prompt longer than 100,000 characters"),
    ("{{ range(10**9) | list }}", "Range too big"),
    ("{{ 1 / 0 }}", "failed on seed s0: ZeroDivisionError: division by zero"),
    ("{{ prompt + 1 }}", "failed on seed s0: TypeError"),
    ("{% if %}", "template line 1: "),
    ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "seed s0"),
    ("x" * (sandbox.MAX_TEMPLATE_CHARS + 1), "at most 50,000 are allowed"),
])
def test_a_hostile_template_is_refused_with_one_sentence(template: str, message: str) -> None:
    with Renderer() as renderer, pytest.raises(TemplateError, match="^the template|^template line") as caught:
        renderer.render(template, ROWS)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_template_that_computes_too_long_is_stopped_by_its_cpu_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "CPU_SECONDS", 1)
    with Renderer() as renderer:
        with pytest.raises(TemplateError, match="needs more than 1 s of computing to render"):
            renderer.render(NESTED_LOOPS, ROWS)
        assert renderer.render("{{ prompt }} x{{ n }}", ROWS * 2) == ["Say hello. x3"] * 2  # a fresh child takes over


def test_the_parent_stops_waiting_after_its_wall_clock_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "CPU_SECONDS", 3600)
    monkeypatch.setattr(sandbox, "WALL_SECONDS", 0.5)
    with Renderer() as renderer, pytest.raises(TemplateError, match="took more than 0.5 s to render"):
        renderer.render(NESTED_LOOPS, ROWS)


def test_rows_render_in_order_with_every_field() -> None:
    rows = [{"record_id": f"s{i}", "prompt": f"p{i}", "tags": ["a", "b"], "score": 0.5, "ok": True} for i in range(3)]
    with Renderer() as renderer:
        assert renderer.render("{{ prompt }}|{{ tags | join(',') }}|{{ score }}|{{ ok }}|é", rows) == [
            f"p{i}|a,b|0.5|True|é" for i in range(3)]
        assert renderer.render("{{ prompt }}", []) == []


def test_the_calling_process_never_parses_or_compiles_a_template(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jinja runs template code while compiling (constant folding): 'a' * 10**10 there would take the server."""
    import jinja2

    from synthscope.generation import generate as gen

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a template was parsed or compiled in the calling process")

    for name in ("parse", "compile", "from_string", "_parse"):
        monkeypatch.setattr(jinja2.Environment, name, refuse)
    assert gen.template_fields("{% set x = 1 %}{{ prompt }} {{ tags | join(',') }} {{ x }}") == {"prompt", "tags"}
    with pytest.raises(gen.GenerationError, match="template line 1"):
        gen.template_fields("{% if %}")
    with Renderer() as renderer:
        assert renderer.render("{{ prompt }}!", ROWS) == ["Say hello.!"]
