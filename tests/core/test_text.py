"""The shared normalisation: both tokenisers agree, spans point into the original text."""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from synthscope.core.text import hash_tokens, normalize, record_text, token_spans, tokenize


def test_normalisation_folds_case_width_ligatures_and_punctuation() -> None:
    assert tokenize("Hello, WORLD!") == ["hello", "world"]
    assert tokenize("Ｆｕｌｌ　ｗｉｄｔｈ") == ["full", "width"]  # NFKC
    assert tokenize("ﬁnd the ﬂag") == ["find", "the", "flag"]  # ligatures
    assert tokenize("Straße") == tokenize("STRASSE")  # case-fold, not lower
    assert tokenize("a,b;c\n\td") == tokenize("a b c d")


def test_word_characters_are_unicode_not_bytes() -> None:
    # Emoji and box drawing separate words; they do not glue onto them.
    assert tokenize("def📦foo──bar") == ["def", "foo", "bar"]
    assert tokenize("naïve café 東京") == ["naïve", "café", "東京"]
    assert tokenize("snake_case_name") == ["snake_case_name"]


def test_empty_and_separator_only_texts_have_no_tokens() -> None:
    assert tokenize("") == []
    assert tokenize(" \n\t,.;") == []
    batch = hash_tokens(["", "  ", "x"])
    assert batch.offsets.tolist() == [0, 0, 0, 1]


def test_word_table_matches_python_re_on_every_code_point() -> None:
    from synthscope.core.text import _word_table

    table = _word_table()
    word = re.compile(r"\w")
    sample = list(range(0, 0x3000)) + list(range(0xFF00, 0xFFF0)) + list(range(0x1F300, 0x1F700))
    assert [bool(word.match(chr(c))) for c in sample] == [bool(table[c]) for c in sample]


def test_token_spans_point_into_the_original_text() -> None:
    text = "Ｈｅｌｌｏ, e\u0301cole ﬁsh — 東京!"
    spans = token_spans(text)
    assert len(spans) == len(tokenize(text))
    assert [normalize(text[a:b]) for a, b in spans] == tokenize(text)


def test_same_token_same_hash_anywhere() -> None:
    batch = hash_tokens(["alpha beta", "beta   ALPHA", "ｂｅｔａ"])
    h = batch.hashes
    assert h[0] == h[3] and h[1] == h[2] == h[4] and h[0] != h[1]
    assert batch.text_of_token().tolist() == [0, 0, 1, 1, 2]


def test_record_text_joins_prompt_and_answer() -> None:
    assert record_text("q", "") == "q"
    assert tokenize(record_text("what is", "two")) == ["what", "is", "two"]


_texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(_texts, min_size=1, max_size=5))
def test_vectorised_hashing_agrees_with_the_readable_tokeniser(texts: list[str]) -> None:
    batch = hash_tokens(texts)
    for i, text in enumerate(texts):
        tokens = tokenize(text)
        own = batch.hashes[batch.offsets[i] : batch.offsets[i + 1]]
        assert len(own) == len(tokens)
        # Re-hashing the reference tokens one per text gives the same hashes.
        again = hash_tokens(tokens).hashes if tokens else np.empty(0, np.uint64)
        assert own.tolist() == again.tolist()
        assert len(token_spans(text)) == len(tokens)


def test_char_chunks_cover_every_text_once_in_order() -> None:
    from synthscope.core.text import char_chunks

    texts = ["a" * 5, "b" * 5, "c" * 20, "d" * 3, "e" * 3, "f" * 3]
    chunks = list(char_chunks(texts, 10))
    assert chunks == [(0, 2), (2, 3), (3, 6)]  # the 20-character text is a chunk of its own
    assert list(char_chunks([], 10)) == []
