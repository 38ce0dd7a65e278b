"""The one normalisation and tokenisation every contamination method shares.

Normalisation is Unicode NFKC followed by case-folding. A *token* is a maximal
run of Unicode word characters (``str.isalnum()`` or ``_``, exactly what
Python's ``re`` calls ``\\w``) in the normalised text. Punctuation and
whitespace only separate tokens, so ``"a, b"``, ``"A  b"`` and ``"a\\n\\tb"``
tokenise the same. Tokenising by code point rather than by byte keeps n-grams
intact next to emoji and box-drawing characters.

Two implementations of the same definition live here:

* :func:`tokenize` / :func:`token_spans` — readable, per text, used for display
  (the spans point into the *original* text so evidence can be highlighted);
* :func:`hash_tokens` — vectorised with numpy over a batch of texts, used on the
  hot path; it returns a 64-bit hash per token instead of the token strings.

Tests assert that both agree on arbitrary Unicode input.

Token hash: for a token with code points ``c_0 … c_{m-1}`` the raw hash is
``sum_k c_k * P**k  (mod 2**64)``, then mixed with a xorshift-multiply
finaliser. On a batch it is computed from one prefix sum
``S[i] = sum_{j<i} c_j * P**j`` as ``(S[end] - S[start]) * P**-start``; ``P`` is
odd, so it has an inverse modulo ``2**64``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

WORD = re.compile(r"\w+")

_P = 0x100000001B3  # FNV-64 prime: odd, hence invertible mod 2**64
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MASK64 = (1 << 64) - 1


def normalize(text: str) -> str:
    """NFKC, then case-fold. ASCII text takes a fast path with the same result."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", text).casefold()


def tokenize(text: str) -> list[str]:
    """The normalised word tokens of ``text``."""
    return WORD.findall(normalize(text))


def token_spans(text: str) -> list[tuple[int, int]]:
    """Character span ``(start, end)`` in the *original* text of each token.

    ``len(token_spans(t)) == len(tokenize(t))`` always; token ``i`` of
    :func:`tokenize` comes from ``text[start:end]`` of span ``i``.
    """
    if text.isascii():
        return [m.span() for m in WORD.finditer(text)]
    # Normalise piece by piece (a base character with its combining marks), and
    # remember which original piece each normalised character came from.
    pieces: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or not unicodedata.combining(text[i]):
            pieces.append((start, i))
            start = i
    normalised: list[str] = []
    origin: list[tuple[int, int]] = []
    for a, b in pieces:
        piece = normalize(text[a:b])
        normalised.append(piece)
        origin.extend([(a, b)] * len(piece))
    joined = "".join(normalised)
    if joined != normalize(text):
        # Composition across pieces (rare: conjoining jamo, unusual mark order).
        # Fall back to proportional positions rather than wrong tokens.
        whole = normalize(text)
        scale = len(text) / max(len(whole), 1)
        return [
            (int(m.start() * scale), max(int(m.end() * scale), int(m.start() * scale) + 1))
            for m in WORD.finditer(whole)
        ]
    return [(origin[m.start()][0], origin[m.end() - 1][1]) for m in WORD.finditer(joined)]


@dataclass(frozen=True)
class TokenBatch:
    """Token hashes of a batch of texts: text ``i`` owns ``hashes[offsets[i]:offsets[i+1]]``."""

    hashes: np.ndarray  # uint64, one per token
    offsets: np.ndarray  # int64, len(texts) + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def text_of_token(self) -> np.ndarray:
        """Index of the text each token belongs to."""
        counts = np.diff(self.offsets)
        return np.repeat(np.arange(len(counts), dtype=np.int64), counts)


class _Powers:
    """``P**i`` and ``P**-i`` mod 2**64 for ``i < len``, grown on demand."""

    def __init__(self) -> None:
        self.up = np.ones(1, dtype=np.uint64)
        self.down = np.ones(1, dtype=np.uint64)

    def ensure(self, n: int) -> None:
        if len(self.up) >= n:
            return
        size = max(n, 2 * len(self.up))
        inverse = pow(_P, -1, 1 << 64)
        with np.errstate(over="ignore"):
            up = np.full(size, _P, dtype=np.uint64)
            up[0] = 1
            down = np.full(size, inverse, dtype=np.uint64)
            down[0] = 1
            self.up = np.cumprod(up, dtype=np.uint64)
            self.down = np.cumprod(down, dtype=np.uint64)


_POWERS = _Powers()
_WORD_TABLE: np.ndarray | None = None
_ASCII_WORD = np.array([chr(c).isalnum() or c == 0x5F for c in range(256)], dtype=bool)
_ASCII_WORD[128:] = False


def _word_table() -> np.ndarray:
    """Boolean table over every code point: is it a word character?"""
    global _WORD_TABLE
    if _WORD_TABLE is None:
        _WORD_TABLE = np.fromiter(
            (chr(c).isalnum() or c == 0x5F for c in range(0x110000)), dtype=bool, count=0x110000
        )
    return _WORD_TABLE


def hash_tokens(texts: Sequence[str]) -> TokenBatch:
    """Hash every token of every text, vectorised over the whole batch."""
    normalised = [normalize(t) for t in texts]
    joined = "\n".join(normalised)  # "\n" is not a word character: tokens never cross texts
    if joined.isascii():
        codes = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
        is_word = _ASCII_WORD[codes]
    else:
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        is_word = _word_table()[codes]
    n = len(codes)
    if n == 0 or not is_word.any():
        return TokenBatch(np.empty(0, np.uint64), np.zeros(len(texts) + 1, np.int64))

    starts = np.flatnonzero(is_word[1:] & ~is_word[:-1]) + 1
    ends = np.flatnonzero(is_word[:-1] & ~is_word[1:]) + 1
    if is_word[0]:
        starts = np.concatenate(([0], starts))
    if is_word[-1]:
        ends = np.concatenate((ends, [n]))

    _POWERS.ensure(n + 1)
    prefix = np.empty(n + 1, dtype=np.uint64)
    prefix[0] = 0
    with np.errstate(over="ignore"):
        np.multiply(codes, _POWERS.up[:n], out=prefix[1:], casting="unsafe")
        np.cumsum(prefix[1:], out=prefix[1:])
        hashes = (prefix[ends] - prefix[starts]) * _POWERS.down[starts]
        hashes ^= hashes >> np.uint64(29)
        hashes *= _MIX
        hashes ^= hashes >> np.uint64(32)

    # Where each text starts in `joined`, then how many tokens start before it.
    text_starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(t) + 1 for t in normalised], out=text_starts[1:])
    offsets = np.searchsorted(starts, text_starts, side="left").astype(np.int64)
    return TokenBatch(hashes, offsets)


def ngram_hashes(tokens: np.ndarray, n: int) -> np.ndarray:
    """Hash of each window of ``n`` consecutive token hashes (``len - n + 1`` of them)."""
    count = len(tokens) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    out = tokens[:count].copy()
    with np.errstate(over="ignore"):
        for j in range(1, n):
            out *= _MIX
            out += tokens[j : j + count]
    return out


def record_text(prompt: str, answer: str) -> str:
    """The one text of a record that every method scans: prompt, blank line, answer."""
    return f"{prompt}\n\n{answer}" if answer else prompt
