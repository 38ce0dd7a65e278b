"""MinHash shingle sets, exact Jaccard and signatures equal to datasketch's (synthscope.algorithms.minhash)."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash

from synthscope.algorithms import minhash as shingles
from synthscope.core.text import hash_tokens, ngram_hashes, normalize, tokenize
from tests.fixtures.reference_shingles import ref_jaccard, ref_shingles

TEXTS = [
    "Tom has 3 apples and buys 5 more apples. How many apples does Tom have?",
    "Café naïve — ÉCOLE ２０２４ résumé, the ｆｕｌｌｗｉｄｔｈ words 🙂 and box ─ drawing 42 x2 1st 3.5",
    "def add(a, b):\n    return a + b  # adds 1 and 2",
    "short one",
    "",
    "1 2 3 4 5 6 7 8 9 10 11 12",
]


@pytest.mark.parametrize("masked", [False, True])
def test_shingle_sets_are_the_word_kgrams_of_the_shared_tokens(masked: bool) -> None:
    sets = shingles.shingle(TEXTS, 3, masked=masked)
    for i, text in enumerate(TEXTS):
        assert len(sets.of(i)) == len(ref_shingles(text, 3, masked)), text
        assert np.all(np.diff(sets.of(i).astype(np.float64)) >= 0)  # sorted
    # Unmasked shingles are exactly the exact stage's n-gram hashes.
    tokens = hash_tokens([TEXTS[0]]).hashes
    assert np.array_equal(shingles.shingle([TEXTS[0]], 3).of(0), np.unique(ngram_hashes(tokens, 3)))


def test_masking_replaces_whole_number_tokens_only() -> None:
    assert tokenize(shingles.mask_numbers("Tom has 3.5 apples, x2 and 1st; ２０２４!")) == \
        ["tom", "has", "0", "0", "apples", "x2", "and", "1st", "0"]


def test_exact_jaccard_equals_a_direct_set_computation() -> None:
    rng = np.random.default_rng(3)
    vocab = "a b c d e f 1 2 3".split()
    texts = [" ".join(rng.choice(vocab, int(rng.integers(0, 14)))) for _ in range(40)]
    for masked in (False, True):
        sets = shingles.shingle(texts, 2, masked=masked)
        for i in range(0, 40, 2):
            expected = ref_jaccard(ref_shingles(texts[i], 2, masked), ref_shingles(texts[i + 1], 2, masked))
            assert shingles.jaccard(sets.of(i), sets.of(i + 1)) == pytest.approx(expected, abs=1e-12)


def test_signatures_equal_datasketch_update_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shingles, "_CHUNK", 7)  # texts straddle chunks: their minima must be merged
    sets = shingles.shingle_windows(TEXTS + [" ".join(f"t{i}" for i in range(60))], 3)
    sigs = shingles.signatures(sets, 64, seed=5)
    for i in range(len(sets)):
        m = MinHash(num_perm=64, seed=5, hashfunc=int)
        m.update_batch(shingles.fold32(sets.of(i)).tolist())
        assert np.array_equal(sigs[i], m.hashvalues), i  # empty texts keep datasketch's empty value too


def test_pair_jaccards_equal_jaccard_pair_by_pair() -> None:
    rng = np.random.default_rng(9)
    vocab = "a b c d e f g h 1 2".split()
    texts = [" ".join(rng.choice(vocab, int(rng.integers(0, 30)))) for _ in range(60)]
    texts[5], texts[25] = "a", ""  # an empty set on each side
    for masked in (False, True):
        left, right = shingles.shingle(texts[:20], 2, masked=masked), shingles.shingle(texts[20:], 2, masked=masked)
        li, ri = rng.integers(0, 20, size=500), rng.integers(0, 40, size=500)  # repeats, empty sets included
        got = shingles.pair_jaccards(left, li, right, ri)
        expected = [shingles.jaccard(left.of(a), right.of(b)) for a, b in zip(li, ri)]
        assert got.tolist() == expected  # the same floats, not approximately
        assert (left.sizes() == 0).any() and (right.sizes() == 0).any() and (got > 0).any() and (got < 1).any()
    assert shingles.pair_jaccards(left, np.empty(0, int), right, np.empty(0, int)).tolist() == []


def test_mask_all_equals_mask_numbers_with_and_without_the_digit_shortcut() -> None:
    texts = [*TEXTS, "no digits at all here", "ARABIC-INDIC ٣ and devanagari ४२ digits", "x2 1st", "naïve 7"]
    masked, numbers = shingles._mask_all(texts)
    assert masked == [shingles.mask_numbers(t) for t in texts]
    assert numbers.tolist() == [shingles.mask_numbers(t) != normalize(t) for t in texts]
    assert numbers.tolist()[-4:] == [False, True, False, True]
