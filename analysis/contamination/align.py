"""Which words two texts share, in order: the highlight for a rephrasing that no n-gram matched.

A rephrased benchmark item keeps few runs of 8 words, so the exact stage marks
nothing, yet a reviewer still wants to see what the two texts have in common:
the identifiers, the doctest, the odd phrase. :func:`align` lines up the word
tokens of both texts (:mod:`synthscope.core.text`: NFKC, case-folded, Unicode word
characters) with :class:`difflib.SequenceMatcher` and keeps the runs worth
showing: two or more tokens in a row, or a single token of four or more
characters (a lone ``a`` or ``is`` shared by two texts says nothing). The runs
come back as character ranges of the *original* texts, so a viewer can mark them.

Pure functions, no I/O; cost grows with the product of the token counts, so
callers pass records of ordinary size (or a window of a long one).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from synthscope.core.text import token_spans, tokenize

Range = tuple[int, int]


@dataclass(frozen=True)
class Alignment:
    """Shared runs of word tokens: run ``k`` is ``left[k]`` in the first text and ``right[k]`` in the second.

    Ranges are ``[start, end)`` character offsets into the original texts, from
    the first character of a run's first token to the last of its last token,
    in text order on both sides (the runs never cross).
    """

    left: list[Range] = field(default_factory=list)
    right: list[Range] = field(default_factory=list)
    tokens: int = 0  # tokens in the kept runs (the same count on both sides)
    left_tokens: int = 0  # tokens in the first text
    right_tokens: int = 0

    @property
    def share(self) -> float:
        """Share of the shorter text's tokens that lie in kept runs (0 when either text has none)."""
        shorter = min(self.left_tokens, self.right_tokens)
        return self.tokens / shorter if shorter else 0.0


def _tokens(text: str) -> tuple[list[str], list[Range]]:
    """Normalised tokens of ``text`` and their spans in the original text (always the same length)."""
    return tokenize(text), token_spans(text)


def align(left: str, right: str, min_tokens: int = 2, min_chars: int = 4) -> Alignment:
    """The runs of word tokens ``left`` and ``right`` share, in order, as character ranges of each.

    A run is a matching block of :class:`difflib.SequenceMatcher` (``autojunk``
    off, so frequent tokens such as ``the`` still align) over the normalised
    tokens; it is kept when it has at least ``min_tokens`` tokens, or is a single
    token of at least ``min_chars`` characters.
    """
    a_tokens, a_spans = _tokens(left)
    b_tokens, b_spans = _tokens(right)
    matcher = difflib.SequenceMatcher(None, a_tokens, b_tokens, autojunk=False)
    out_left: list[Range] = []
    out_right: list[Range] = []
    shared = 0
    for i, j, size in matcher.get_matching_blocks():
        if size == 0:
            continue
        if size < min_tokens and not (size == 1 and len(a_tokens[i]) >= min_chars):
            continue
        out_left.append((a_spans[i][0], a_spans[i + size - 1][1]))
        out_right.append((b_spans[j][0], b_spans[j + size - 1][1]))
        shared += size
    return Alignment(out_left, out_right, shared, len(a_tokens), len(b_tokens))


def split_ranges(ranges: list[Range], prompt: str, answer: str) -> tuple[list[Range], list[Range]]:
    """Ranges of ``record_text(prompt, answer)`` split into ranges of ``prompt`` and of ``answer``.

    :func:`synthscope.core.text.record_text` is ``prompt + "\\n\\n" + answer`` (just
    ``prompt`` when the answer is empty); a range crossing the separator is cut
    in two, and the separator itself belongs to neither field.
    """
    offset = len(prompt) + 2
    in_prompt: list[Range] = []
    in_answer: list[Range] = []
    for start, end in ranges:
        a, b = max(start, 0), min(end, len(prompt))
        if a < b:
            in_prompt.append((a, b))
        if answer:
            a, b = max(start - offset, 0), min(end - offset, len(answer))
            if a < b:
                in_answer.append((a, b))
    return in_prompt, in_answer


MAX_CHARS = 30_000  # per text: beyond this, align the given windows (SequenceMatcher is quadratic)


def _shift(ranges: list[Range], offset: int) -> list[Range]:
    return [(a + offset, b + offset) for a, b in ranges]


def align_bounded(left: str, right: str, left_window: Range | None = None, right_window: Range | None = None,
                  max_chars: int = MAX_CHARS) -> Alignment:
    """:func:`align`, bounded in cost: a text longer than ``max_chars`` is cut to its window.

    ``left_window``/``right_window`` (``[start, end)`` characters, e.g. the best
    semantic windows) say which part of a long text to align; without one, its
    first ``max_chars`` characters. Short texts are aligned whole. Ranges point
    into the full texts either way.
    """
    def part(text: str, window: Range | None) -> tuple[str, int]:
        if len(text) <= max_chars:
            return text, 0
        start, end = window if window is not None else (0, max_chars)
        start = max(0, min(int(start), len(text)))
        end = max(start, min(int(end), start + max_chars, len(text)))
        return text[start:end], start

    a, a_offset = part(left, left_window)
    b, b_offset = part(right, right_window)
    found = align(a, b)
    return Alignment(_shift(found.left, a_offset), _shift(found.right, b_offset), found.tokens,
                     found.left_tokens, found.right_tokens)
