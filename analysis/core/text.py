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
  hot path; it returns a 64-bit hash per token instead of the token strings;
  :func:`hash_ascii` is the same for ASCII texts given as bytes (an Arrow
  string column's buffer), with no Python string per text.

Tests assert that they agree on arbitrary Unicode input (``tests/core/
test_text.py``, ``tests/contamination/test_ngram_reference.py``).

Token hash: for a token with code points ``c_0 … c_{m-1}`` the raw hash is
``sum_k c_k * P**k  (mod 2**64)``, then mixed with a xorshift-multiply
finaliser. On a batch it is computed from one prefix sum
``S[i] = sum_{j<i} c_j * P**j`` as ``(S[end] - S[start]) * P**-start``; ``P`` is
odd, so it has an inverse modulo ``2**64``.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
    """``base**i`` and ``base**-i`` mod 2**64 for ``i < len``, grown on demand (``base`` odd).

    Both tables live in one tuple so a reader in another thread never sees one
    grown and the other not.
    """

    def __init__(self, base: int) -> None:
        self.base = base
        one = np.ones(1, dtype=np.uint64)
        self.tables = (one, one)

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(up, down)``, each at least ``n`` long."""
        up, down = self.tables
        if len(up) >= n:
            return up, down
        size = max(n, 2 * len(up))
        inverse = pow(self.base, -1, 1 << 64)
        with np.errstate(over="ignore"):
            up = np.full(size, self.base, dtype=np.uint64)
            up[0] = 1
            down = np.full(size, inverse, dtype=np.uint64)
            down[0] = 1
            self.tables = (np.cumprod(up, dtype=np.uint64), np.cumprod(down, dtype=np.uint64))
        return self.tables


class _Scratch(threading.local):
    """Work buffers of :func:`hash_tokens`, one set per thread, grown on demand and reused.

    The per-character arrays of a batch (word flags, prefix sums) are large and
    short-lived. Allocated afresh for every batch, numpy gets them from ``mmap``
    and every page is faulted in again on first touch, which cost more than the
    arithmetic; reusing the same buffers keeps the pages (and, for batches of a
    few hundred kilobytes, the cache lines) warm.
    """

    def __init__(self) -> None:
        self.word = np.zeros(0, dtype=bool)
        self.edge = np.zeros(0, dtype=bool)
        self.prefix = np.zeros(0, dtype=np.uint64)

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(word, edge, prefix)`` of lengths ``n + 2``, ``n + 1`` and ``n + 1``."""
        if len(self.word) < n + 2:
            size = max(n + 2, 2 * len(self.word))
            self.word = np.empty(size, dtype=bool)
            self.edge = np.empty(size, dtype=bool)
            self.prefix = np.empty(size, dtype=np.uint64)
        return self.word[: n + 2], self.edge[: n + 1], self.prefix[: n + 1]


_POWERS = _Powers(_P)
_MIX_POWERS = _Powers(int(_MIX))
_SCRATCH = _Scratch()
_WORD_TABLE: np.ndarray | None = None
_ASCII_WORD = np.array([chr(c).isalnum() or c == 0x5F for c in range(256)], dtype=bool)
_ASCII_WORD[128:] = False
# Per byte: its lower-case code if it is an ASCII word character, else 0 (see hash_ascii).
_ASCII_WORD_CODE_BYTES = bytes(ord(chr(c).lower()) if _ASCII_WORD[c] else 0 for c in range(256))


def _word_table() -> np.ndarray:
    """Boolean table over every code point: is it a word character?

    Built from ``re`` itself (the runs of ``\\w`` in a string of every code
    point, made by numpy): a fifth of the time of asking ``str.isalnum`` code
    point by code point, which every scan worker process would pay.
    """
    global _WORD_TABLE
    if _WORD_TABLE is None:
        every = np.arange(0x110000, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
        table = np.zeros(0x110000, dtype=bool)
        for run in WORD.finditer(every):
            table[run.start() : run.end()] = True
        _WORD_TABLE = table
    return _WORD_TABLE


def hash_tokens(texts: Sequence[str]) -> TokenBatch:
    """Hash every token of every text, vectorised over the whole batch.

    The texts are normalised and joined with ``"\\n"`` (not a word character, so
    no token spans two texts) into one array of code points, hashed by
    :func:`_hash_codes`. Batches of a few hundred kilobytes of text are fastest
    (their work arrays stay in the CPU caches).
    """
    normalised = [normalize(t) for t in texts]
    joined = "\n".join(normalised)
    if joined.isascii():
        codes = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
        table = _ASCII_WORD
    else:
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        table = _word_table()
    text_starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(t) + 1 for t in normalised], out=text_starts[1:])
    return _hash_codes(codes, table, text_starts)


def hash_ascii(data: np.ndarray, text_starts: np.ndarray) -> TokenBatch:
    """:func:`hash_tokens` for ASCII texts laid out as bytes, as Arrow stores strings.

    Text ``i`` is ``data[text_starts[i]:text_starts[i + 1]]`` (uint8) and must
    end with a non-word byte such as ``"\\n"``, so that no token runs into the
    next text. For ASCII, normalisation is lower-casing: one table lookup maps
    each byte to its lower-case code if it is a word character and to 0 if not.
    Zeroing non-word codes changes no token hash (a hash only sums the codes
    inside its token). The result equals ``hash_tokens`` of the same texts as
    strings, without making a Python string per text.
    """
    codes = np.frombuffer(data.tobytes().translate(_ASCII_WORD_CODE_BYTES), dtype=np.uint8)  # faster than np.take
    return _hash_codes(codes, None, np.asarray(text_starts, dtype=np.int64))


def _hash_codes(codes: np.ndarray, table: np.ndarray | None, text_starts: np.ndarray) -> TokenBatch:
    """Token hashes of normalised code points; text ``i`` starts at ``codes[text_starts[i]]``.

    ``table`` says which codes are word characters; ``None`` means exactly the
    non-zero ones. Word flags are padded with ``False`` on both sides, so token
    starts and ends are exactly the places where the flag changes, and they
    alternate: the positions of all changes, in order, are ``start_0, end_0,
    start_1, end_1, ...``; one pass finds both. Work buffers are reused between
    calls (:class:`_Scratch`).
    """
    n = len(codes)
    word, edge, prefix = _SCRATCH.get(n)
    word[0] = word[n + 1] = False
    if table is None:
        np.not_equal(codes, 0, out=word[1 : n + 1])
    else:
        np.take(table, codes, out=word[1 : n + 1], mode="clip")  # codes are always inside the table
    np.not_equal(word[1:], word[:-1], out=edge)  # edge[i]: codes[i] starts or codes[i - 1] ends a token
    changes = np.flatnonzero(edge)
    starts, ends = changes[0::2], changes[1::2]
    if len(starts) == 0:
        return TokenBatch(np.empty(0, np.uint64), np.zeros(len(text_starts), np.int64))

    up, down = _POWERS.get(n + 1)
    prefix[0] = 0
    with np.errstate(over="ignore"):
        np.multiply(codes, up[:n], out=prefix[1:], casting="unsafe")
        np.cumsum(prefix[1:], out=prefix[1:])
        hashes = prefix[ends]
        hashes -= prefix[starts]
        hashes *= down[starts]
        hashes ^= hashes >> np.uint64(29)
        hashes *= _MIX
        hashes ^= hashes >> np.uint64(32)
    # How many tokens start before each text.
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


def window_hashes(tokens: np.ndarray, ns: Sequence[int]) -> dict[int, np.ndarray]:
    """:func:`ngram_hashes` for several ``n`` at once, from one prefix sum.

    With ``M = _MIX`` (odd, so invertible mod 2**64), the window hash of
    :func:`ngram_hashes` is ``W[i] = sum_{j<n} t[i+j] * M**(n-1-j)``. With the
    prefix sum ``Q[k] = sum_{j<k} t[j] * M**-j`` it is
    ``(Q[i+n] - Q[i]) * M**(i+n-1)``: a few passes over the tokens for every
    ``n`` together instead of ``n - 1`` multiply-add passes per ``n``. Same
    values, exactly (all arithmetic is mod 2**64).
    """
    count = len(tokens)
    out = {n: np.empty(0, dtype=np.uint64) for n in ns}
    if count < min(ns):
        return out
    up, down = _MIX_POWERS.get(count + 1)
    prefix = np.empty(count + 1, dtype=np.uint64)
    prefix[0] = 0
    with np.errstate(over="ignore"):
        np.multiply(tokens, down[:count], out=prefix[1:])
        np.cumsum(prefix[1:], out=prefix[1:])
        for n in out:
            if count >= n:
                windows = prefix[n:] - prefix[: count - n + 1]
                windows *= up[n - 1 : count]
                out[n] = windows
    return out


def char_chunks(texts: Sequence[str], max_chars: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` slices of ``texts`` of about ``max_chars`` characters each, in order.

    A text longer than ``max_chars`` is a chunk of its own. Hashing in such chunks
    keeps the per-character work arrays in the CPU caches and memory bounded
    whatever the input's size (measured: chunks of 128-256 thousand characters hash
    about three times faster than chunks of 4 million).
    """
    start = 0
    while start < len(texts):
        end, size = start, 0
        while end < len(texts) and (end == start or size + len(texts[end]) <= max_chars):
            size += len(texts[end])
            end += 1
        yield start, end
        start = end


def record_text(prompt: str, answer: str) -> str:
    """The one text of a record that every method scans: prompt, blank line, answer."""
    return f"{prompt}\n\n{answer}" if answer else prompt


def record_texts(prompts: Iterable[str | None], answers: Iterable[str | None]) -> list[str]:
    """:func:`record_text` of each (prompt, answer); a missing field reads as empty."""
    return [record_text(p or "", a or "") for p, a in zip(prompts, answers, strict=True)]


def record_layout(prompts: pa.Array | pa.ChunkedArray, answers: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """Per row of two Arrow string columns: prompt, ``"\\n"``, answer, ``"\\n"`` (nulls read as empty).

    It has exactly the tokens of :func:`record_text` (separators only separate),
    and every text ends with a non-word character, as :func:`hash_ascii` needs;
    Arrow builds it in one pass over the bytes.
    """
    large = pa.types.is_large_string(prompts.type) or pa.types.is_large_string(answers.type)
    kind = pa.large_string() if large else pa.string()
    prompts, answers = (pc.fill_null(column.cast(kind), "") for column in (prompts, answers))
    out = pc.binary_join_element_wise(prompts, answers, pa.scalar("", kind), pa.scalar("\n", kind))
    return out if isinstance(out, pa.ChunkedArray) else pa.chunked_array([out])
