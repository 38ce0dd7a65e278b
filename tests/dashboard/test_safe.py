"""``md``: any string as Markdown that Streamlit renders as exactly that string, and nothing else.

What Streamlit renders is modelled by :func:`tests.fixtures.markdown.render`; the browser test
(``tests/browser/test_markdown_browser.py``) checks the same strings in Streamlit's own frontend.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from synthscope.dashboard.components.safe import JOINER, md
from tests.fixtures.hostile_ws import NAMES, TASK, file_payload, payloads
from tests.fixtures.markdown import render

HOSTILE = [*payloads("http://127.0.0.1:9"), file_payload(), *NAMES, TASK,
           "- a list item", "+ another", "1. an ordered one", "12) and another", "# a heading", "> a quote",
           "=== an underline", "---", "***", "```fenced", "~~~ fenced", "    indented code", "| a | b |",
           "trailing backslash \\", "two  spaces\nand a line break", "&lt;b&gt; &#x41; &copy;", "\\*escaped\\*",
           ":material/home:", ":streamlit:", ":+1: :-1:", ":red[a] :red-background[b] :small[c] :help[d]",
           "WWW.EXAMPLE.COM", "a@b.co", "https://example.com", "<-> -> <- -- >= <= ~=", "$$x$$", "\\$x$",
           "[a]: http://127.0.0.1:9/ref", "[^1]", "~a~ ~~b~~", "__a__ *b* _c_", ""]


def shown(text: str) -> tuple[str, list]:
    rendered = render(md(text))
    return rendered.plain(), rendered.made


def as_written(text: str) -> str:
    """``text`` as a reader sees it: whitespace as Markdown shows it, no (invisible) word joiner."""
    return " ".join(text.split()).replace(JOINER, "")


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_renders_as_itself(text: str) -> None:
    assert shown(text) == (as_written(text), [])


# NUL is the one character CommonMark itself replaces (with U+FFFD); surrogates cannot be encoded.
@given(st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",))))
def test_any_text_renders_as_itself(text: str) -> None:
    assert shown(text) == (as_written(text), [])


@given(st.text(alphabet="\\`*_{}[]()#+-.!|<>~$&:=@w/ \n1aH"))
def test_any_text_of_markdown_characters_renders_as_itself(text: str) -> None:
    assert shown(text) == (as_written(text), [])


def test_ordinary_names_are_left_alone() -> None:
    """Dataset references, record ids and paths read the same in a test as on the page."""
    for text in ("code-instruct@v1", "HumanEval/4", "ci-0001", "/tmp/a-b/c", "scan 20240101-120000-abc"):
        assert md(text) == text


def test_a_badge_shows_its_label_as_text() -> None:
    """``st.badge`` escapes ``[`` and ``]`` itself; :func:`for_badge` keeps them from being escaped twice."""
    def page(labels: list[str]) -> None:
        import streamlit as st

        from synthscope.dashboard.components.safe import for_badge, md

        for label in labels:
            st.badge(for_badge(md(label)))

    labels = [text for text in HOSTILE if text.strip()]
    at = AppTest.from_function(page, args=(labels,)).run()
    assert [b.value for b in at.markdown] == [f":blue-badge[{md(label)}]" for label in labels]
