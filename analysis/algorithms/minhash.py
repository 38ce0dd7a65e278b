"""MinHash over word shingles: the sets, their exact Jaccard and signatures equal to datasketch's.

Both concerns that compare texts by shingles use it: the near-duplicate contamination stage
(:mod:`synthscope.contamination.minhash`) and the duplicate metrics of the scorecard
(:mod:`synthscope.scorecard.quality`).

Shingles
    A text's tokens ``t_0 … t_{L-1}`` come from the one normalisation of
    :mod:`synthscope.core.text` (:func:`~synthscope.core.text.hash_tokens`). Its shingle set is
    the set of its word ``k``-grams, each represented by the 64-bit window hash
    of :func:`~synthscope.core.text.ngram_hashes` — the very values the exact stage
    looks up, so both stages see the same words::

        S(text) = { W(t_i … t_{i+k-1}) : 0 <= i <= L - k }

    A text of fewer than ``k`` tokens has no shingles and cannot be compared;
    benchmark fields that short are skipped and listed in the result's
    ``attrs["too_short"]``.

Jaccard and MinHash
    The similarity of two texts is the Jaccard index of their shingle sets,
    ``J(A, B) = |A ∩ B| / |A ∪ B|``. For a random permutation ``π`` of the hash
    space, ``P[min π(A) = min π(B)] = J(A, B)``; a MinHash signature keeps
    ``min π_j(S)`` for ``num_perm`` permutations, and the share of equal
    coordinates of two signatures estimates ``J`` with standard deviation
    ``sqrt(J (1 - J) / num_perm)`` (0.044 at ``J = 0.5`` with 128).
    Signatures are datasketch's ``affine32`` scheme: each shingle hash is folded
    to 32 bits (``x = hi ⊕ lo``), mixed once with the MurmurHash3 finaliser and
    permuted by ``π_j(x) = a_j · fmix32(x) + b_j  (mod 2**32)``, ``a_j`` odd, the
    ``(a_j, b_j)`` drawn by ``datasketch.MinHash(num_perm, seed)``. They are
    computed for a whole batch at once in numpy; the tests check them against
    ``MinHash(hashfunc=identity).update_batch`` value for value.

Number masking
    :func:`mask_numbers` replaces every number token by one placeholder, for
    number-substituted variants (see :mod:`synthscope.contamination.minhash`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synthscope.core.text import char_chunks, hash_tokens, ngram_hashes, normalize

PLACEHOLDER = "0"
_NUMBER = re.compile(r"(?<!\w)\d+(?!\w)")  # a whole token of decimal digits (a \w run with only \d in it)
_ASCII_DIGITS = "0123456789"
_UINT32_MAX = np.uint32(0xFFFFFFFF)
_CHUNK = 1 << 13  # shingles permuted at once: a (num_perm x chunk) uint32 work array, 4 MB at 128


def mask_numbers(text: str) -> str:
    """``text`` normalised, with every number token replaced by :data:`PLACEHOLDER`.

    Its tokens are those of :func:`synthscope.core.text.tokenize`, except that a token of
    decimal digits only (``str.isdecimal``) becomes ``"0"``: ``"3.5"`` is two
    number tokens, ``"x2"`` and ``"1st"`` are words.
    """
    return _NUMBER.sub(PLACEHOLDER, normalize(text))


def _mask_all(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """:func:`mask_numbers` of every text, and whether it had any number token.

    An ASCII text without an ASCII digit has no number token (its only decimal
    digits are ``0-9``) and skips the regular expression, whose look-behind at
    every character costs about three times the ten substring scans.
    """
    masked, numbers = [], np.zeros(len(texts), dtype=bool)
    for i, text in enumerate(texts):
        norm = normalize(text)
        if norm.isascii() and not any(digit in norm for digit in _ASCII_DIGITS):
            masked.append(norm)
            continue
        out, count = _NUMBER.subn(PLACEHOLDER, norm)
        masked.append(out)
        numbers[i] = count > 0
    return masked, numbers


@functools.lru_cache(maxsize=1)
def _placeholder_hash() -> np.uint64:
    return hash_tokens([PLACEHOLDER]).hashes[0]


@dataclass(frozen=True)
class Shingles:
    """Shingle hashes of a batch of texts: text ``i`` owns ``values[offsets[i]:offsets[i+1]]``.

    From :func:`shingle` they are sorted and distinct per text (sets); from
    :func:`shingle_windows` they are in text order, repeats included (enough for
    a signature: a minimum ignores repeats).
    """

    values: np.ndarray  # uint64
    offsets: np.ndarray  # int64, len(texts) + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def of(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, rows: np.ndarray) -> Shingles:
        """The shingles of texts ``rows`` only, in that order."""
        sizes = self.sizes()[rows]
        offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        index = np.repeat(self.offsets[rows] - offsets[:-1], sizes) + np.arange(int(offsets[-1]))
        return Shingles(self.values[index], offsets)


def shingle_windows(texts: Sequence[str], k: int, premasked: bool = False, max_chars: int = 256_000) -> Shingles:
    """Every ``k``-word window hash of every text, in order (see :class:`Shingles`).

    Texts are hashed in chunks of about ``max_chars`` characters, as the exact
    stage does (:func:`synthscope.core.text.char_chunks`). ``premasked`` says the texts
    went through :func:`mask_numbers`; windows of placeholders only are then dropped.
    """
    values: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    for start, end in char_chunks(texts, max_chars):
        batch = hash_tokens(texts[start:end])
        windows = ngram_hashes(batch.hashes, k)
        if len(windows):
            owner = batch.text_of_token()
            keep = owner[: len(windows)] == owner[k - 1 :]  # the window lies inside one text
            if premasked:
                placeholder = np.concatenate(([0], np.cumsum(batch.hashes == _placeholder_hash())))
                keep &= (placeholder[k:] - placeholder[: len(windows)]) < k
            index = np.flatnonzero(keep)
            values.append(windows[index])
            owners.append(owner[index] + start)
    flat = np.concatenate(values) if values else np.empty(0, dtype=np.uint64)
    owner = np.concatenate(owners) if owners else np.empty(0, dtype=np.int64)
    return Shingles(flat, np.searchsorted(owner, np.arange(len(texts) + 1), side="left").astype(np.int64))


def shingle(texts: Sequence[str], k: int, masked: bool = False) -> Shingles:
    """The ``k``-word shingle *set* of every text (sorted, distinct; see the module docstring).

    With ``masked``, number tokens are replaced first (:func:`mask_numbers`) and
    shingles made of placeholders only are dropped.
    """
    windows = shingle_windows(_mask_all(texts)[0] if masked else list(texts), k, premasked=masked)
    text = np.repeat(np.arange(len(texts), dtype=np.int64), windows.sizes())
    order = np.lexsort((windows.values, text))
    text, values = text[order], windows.values[order]
    distinct = np.ones(len(values), dtype=bool)
    distinct[1:] = (values[1:] != values[:-1]) | (text[1:] != text[:-1])
    text, values = text[distinct], values[distinct]
    return Shingles(values, np.searchsorted(text, np.arange(len(texts) + 1), side="left").astype(np.int64))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard of two sorted arrays of distinct shingle hashes (0 when both are empty)."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)


def pair_jaccards(left: Shingles, li: np.ndarray, right: Shingles, ri: np.ndarray) -> np.ndarray:
    """Exact Jaccard of ``left.of(li[k])`` and ``right.of(ri[k])`` for every ``k``: :func:`jaccard`'s value, batched.

    Both sides are sets (from :func:`shingle`). Let ``U`` be the sorted distinct
    values of the left sets in use and ``rank(x)`` a value's place in ``U``. A
    right value outside ``U`` is in no intersection and is dropped; the others
    become ``t · |U| + rank(x)`` for the ``t``-th right set in use — one sorted
    array, since each set is sorted and the sets follow each other. Then::

        |A_k ∩ B_k| = #{ a in A_k : ri'[k] · |U| + rank(a) is in that array }   (np.searchsorted)
        J_k = |A_k ∩ B_k| / (|A_k| + |B_k| - |A_k ∩ B_k|),   0 when A_k or B_k is empty

    The work is ``sum_k |A_k|`` look-ups plus one pass over the right sets in use,
    so put the small sets (benchmark fields) left. Integer counts divided in
    float64 round exactly as Python's ``int / int``.
    """
    li, ri = np.asarray(li, dtype=np.int64), np.asarray(ri, dtype=np.int64)
    out = np.zeros(len(li), dtype=np.float64)
    if len(li) == 0:
        return out
    lsets, lpos = np.unique(li, return_inverse=True)
    rsets, rpos = np.unique(ri, return_inverse=True)
    lsub, rsub = left.subset(lsets), right.subset(rsets)
    universe = np.unique(lsub.values)
    # The right side, reduced to values in the universe, keyed text-major.
    at = np.searchsorted(universe, rsub.values)
    inside = at < len(universe)
    inside[inside] = universe[at[inside]] == rsub.values[inside]
    owner = np.repeat(np.arange(len(rsets), dtype=np.int64), rsub.sizes())
    keys = owner[inside] * len(universe) + at[inside]
    # Every left value of every pair, as the key it would have in pair k's right set.
    lsize = lsub.sizes()[lpos]
    lstart = lsub.offsets[lpos]
    ends = np.cumsum(lsize)
    index = np.repeat(lstart - (ends - lsize), lsize) + np.arange(int(ends[-1]) if len(ends) else 0)
    wanted = np.repeat(rpos, lsize) * len(universe) + np.searchsorted(universe, lsub.values)[index]
    found = np.searchsorted(keys, wanted)
    hit = found < len(keys)
    hit[hit] = keys[found[hit]] == wanted[hit]
    common = np.bincount(np.repeat(np.arange(len(li)), lsize), weights=hit, minlength=len(li))
    rsize = rsub.sizes()[rpos]
    both = (lsize > 0) & (rsize > 0)
    out[both] = common[both] / (lsize[both] + rsize[both] - common[both])
    return out


# -- signatures -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def permutations(num_perm: int, seed: int) -> np.ndarray:
    """datasketch's ``affine32`` permutation parameters ``[a, b]`` (uint32, shape ``(2, num_perm)``)."""
    from datasketch import MinHash

    perms = np.asarray(MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations, dtype=np.uint32)
    perms.setflags(write=False)
    return perms


def fold32(values: np.ndarray) -> np.ndarray:
    """64-bit shingle hashes to the 32-bit values a signature permutes: ``hi XOR lo``."""
    return (values ^ (values >> np.uint64(32))).astype(np.uint32)


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser (datasketch pre-mixes every input hash with it)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def signatures(sets: Shingles, num_perm: int, seed: int) -> np.ndarray:
    """MinHash signature of every set, ``(len(sets), num_perm)`` uint32, equal to datasketch's.

    ``min_x (a_j · fmix32(fold32(x)) + b_j) mod 2**32`` over each set, computed on
    chunks of shingles across text boundaries. A chunk is permuted into one
    reused ``(num_perm, chunk)`` work array, permutation-major, so that
    ``np.minimum.reduceat`` takes each text's minimum along contiguous memory
    (about four times faster than shingle-major rows); a text spread over chunks
    keeps the smaller. An empty set keeps datasketch's empty value (all ``2**32 - 1``).
    """
    a, b = permutations(num_perm, seed)
    out = np.full((len(sets), num_perm), _UINT32_MAX, dtype=np.uint32)
    if len(sets.values) == 0:
        return out
    owner = np.repeat(np.arange(len(sets), dtype=np.int64), sets.sizes())
    mixed = _fmix32(fold32(sets.values))
    work = np.empty((num_perm, min(_CHUNK, len(mixed))), dtype=np.uint32)
    for start in range(0, len(mixed), _CHUNK):
        stop = min(start + _CHUNK, len(mixed))
        permuted = work[:, : stop - start]
        np.multiply(a[:, None], mixed[None, start:stop], out=permuted)  # uint32 arithmetic wraps: mod 2**32
        np.add(permuted, b[:, None], out=permuted)
        who = owner[start:stop]
        first = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        texts = who[first]
        out[texts] = np.minimum(out[texts], np.minimum.reduceat(permuted, first, axis=1).T)
    return out
