"""Data shown as text where Streamlit renders Markdown: :func:`md`, the one way a value joins such a string.

Streamlit reads as Markdown not only ``st.markdown`` and captions but alerts, titles, widget labels and their
``help``, radio options, metric labels and values, expander labels, page-link labels, progress texts, toasts
and badges. A record id such as ``x ![r](http://host/beacon.png)`` put there as it is makes every viewer's
browser fetch from that host. So every string that came from data (dataset, record, item, run, task and field
names, file names, search text, error and job messages) goes through :func:`md` first.

Where a value is only data, a text element needs no escaping: ``st.code``, ``st.text``, dataframe cells,
selectbox and multiselect options (Streamlit draws those as plain text, so :func:`md` must not touch them).
"""

from __future__ import annotations

import re

# Invisible, and no word character: it splits the patterns Streamlit's Markdown rewrites in the text itself,
# after escapes are undone, so a backslash cannot stop them: emoji (:smile:), icons (:material/home:, which
# also loads a font), the logo image (:streamlit:), link literals (http://, www., name@host.org) and arrows (->).
JOINER = "\u2060"
_TEXT_PATTERNS = re.compile(r"(?<=:)(?=[\w+/-])|(?<=[-<>~])(?=[-<>=])|(?i:(?<=www)(?=\.))|(?<=@)(?=[-\w]+\.)")
# Everything inline Markdown, GitHub's extensions, LaTeX ($) and Streamlit's directives (:red[...]) act on.
_INLINE = re.compile(r"([\\`*_{}\[\]()<>!|~$&:])")
# Block syntax only counts at the start of a line: a heading, quote, list item, rule or setext underline.
_LINE_START = re.compile(r"^(?:([#+=-])|(\d+)\.)")


def md(value: object) -> str:
    """``value`` as Markdown that renders exactly as its text: one line, nothing in it a link, image or markup.

    Runs of whitespace, line breaks included, become one space, and none is left at either end (the way
    Markdown shows them anyway).
    """
    text = " ".join(str(value).split())
    text = _INLINE.sub(r"\\\1", _TEXT_PATTERNS.sub(JOINER, text))
    return _LINE_START.sub(_escape_line_start, text, count=1)


def _escape_line_start(match: re.Match[str]) -> str:
    marker, digits = match.groups()
    return f"\\{marker}" if marker else f"{digits}\\."


def for_badge(markdown: str) -> str:
    """Markdown built with :func:`md`, for ``st.badge``: it escapes ``[`` and ``]`` itself, so undo those escapes.

    Every ``[`` or ``]`` in such Markdown follows its own backslash, so the leftmost ``\\[`` is always one.
    """
    return markdown.replace("\\[", "[").replace("\\]", "]")
