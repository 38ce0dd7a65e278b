"""Exact n-gram matching: coverage, spans, buckets and the edge cases."""

from __future__ import annotations

import pytest

from synthscope.contamination.ngram import (
    BenchmarkIndex,
    ExactMatches,
    NgramConfig,
    merge_intervals,
    scan_texts,
)
from synthscope.core.text import record_text, token_spans, tokenize

WORDS = "the quick brown fox jumps over the lazy dog while seven wizards quietly hum a tune".split()
LONG = " ".join(WORDS)  # 16 tokens


def run(prompts: list[str], answers: list[str], records: list[str], config: NgramConfig | None = None):
    config = config or NgramConfig()
    index = BenchmarkIndex(prompts, answers, config.ns)
    matches = ExactMatches(index, config)
    matches.add(scan_texts(index, records, [f"r{i}" for i in range(len(records))], config.top_k))
    return matches.verdicts(), matches.evidence()


def test_verbatim_copy_is_dirty_with_full_coverage_and_span() -> None:
    verdicts, evidence = run([LONG], [""], ["noise before. " + LONG.upper() + " and after"])
    v = verdicts.iloc[0]
    assert (v.bucket, v.verdict, v.coverage, v.longest_span, v.prompt_n) == ("dirty", "exact", 1.0, 16, 13)
    assert v.matched_ngrams == 16 - 13 + 1
    assert evidence.iloc[0].record_id == "r0"
    assert evidence.iloc[0].record_spans == [[2, 18]]


def test_partial_copy_lands_between_thresholds() -> None:
    # 13 of the 16 tokens copied, then a change: coverage 13/16 with n=13 -> dirty;
    # with n=8 only and 10 tokens copied -> 10/16 = 0.625 -> partial.
    copied = " ".join(WORDS[:10]) + " completely different ending words here now"
    verdicts, _ = run([LONG], [""], [copied], NgramConfig(ns=(8,)))
    v = verdicts.iloc[0]
    assert v.coverage == pytest.approx(10 / 16)
    assert v.bucket == "partial"
    assert v.longest_span == 10


def test_thresholds_come_from_config() -> None:
    copied = " ".join(WORDS[:10])
    strict, _ = run([LONG], [""], [copied], NgramConfig(ns=(8,), clean_below=0.7, dirty_from=0.9))
    assert strict.iloc[0].bucket == "clean"
    loose, _ = run([LONG], [""], [copied], NgramConfig(ns=(8,), clean_below=0.1, dirty_from=0.6))
    assert loose.iloc[0].bucket == "dirty"


def test_answer_only_leak_counts() -> None:
    answer = "return sorted set of the values after removing every negative number first"
    verdicts, evidence = run([LONG], [answer], ["Here is my helper: " + answer])
    v = verdicts.iloc[0]
    assert v.prompt_coverage == 0 and v.answer_coverage == 1.0
    assert v.matched_field == "answer" and v.bucket == "dirty"
    assert evidence.iloc[0].item_answer_spans == [[0, len(tokenize(answer))]]


def test_item_shorter_than_every_n_is_reported_not_matched() -> None:
    verdicts, _ = run(["two plus two"], ["four"], ["two plus two four"])
    v = verdicts.iloc[0]
    assert bool(v.too_short) and v.prompt_n == 0 and v.bucket == "clean" and v.coverage == 0


def test_field_between_ns_uses_the_smaller_n() -> None:
    ten = " ".join(WORDS[:10])
    verdicts, _ = run([ten], [""], [ten])
    assert verdicts.iloc[0].prompt_n == 8 and verdicts.iloc[0].coverage == 1.0


def test_repeated_ngrams_count_once_and_do_not_inflate_coverage() -> None:
    item = " ".join(["alpha beta gamma delta epsilon zeta eta theta"] * 3)  # 24 tokens, periodic
    verdicts, evidence = run([item], [""], ["alpha beta gamma delta epsilon zeta eta theta"], NgramConfig(ns=(8,)))
    v = verdicts.iloc[0]
    # Every item 8-gram that equals the record's one 8-gram is matched: positions 0, 8, 16.
    assert v.matched_ngrams == 3
    assert v.coverage == pytest.approx(1.0)
    assert v.longest_span == 8
    assert evidence.iloc[0].item_prompt_spans == [[0, 24]]  # touching intervals merge


def test_ngrams_never_cross_record_boundaries() -> None:
    first, second = " ".join(WORDS[:8]), " ".join(WORDS[8:])
    # Side by side in one batch the two records spell the item; n=13 windows must not span them.
    verdicts, _ = run([LONG], [""], [first, second])
    assert verdicts.iloc[0].matched_ngrams == 0
    assert verdicts.iloc[0].coverage == 0.0


def test_unicode_records_match_after_normalisation() -> None:
    item = "Ｃａｆé crème brûlée recipe with ﬁne sugar, two eggs, vanilla and a pinch of salt today"
    record = "CAFÉ CRÈME BRÛLÉE recipe — with fine sugar / two eggs / vanilla 🍮 and a pinch of salt today"
    verdicts, evidence = run([item], [""], [record])
    assert verdicts.iloc[0].coverage == 1.0
    # The spans map back onto the original characters for highlighting.
    (start, end), = evidence.iloc[0].record_spans
    spans = token_spans(record)
    assert record[spans[start][0]:spans[end - 1][1]].startswith("CAFÉ")


def test_top_k_keeps_the_best_records_per_item() -> None:
    records = [LONG] + [" ".join(WORDS[: 13 + i % 3]) for i in range(8)]
    _, evidence = run([LONG], [""], records, NgramConfig(top_k=3))
    assert evidence["rank"].tolist() == [1, 2, 3]
    assert evidence.iloc[0].record_id == "r0" and evidence.iloc[0].coverage == 1.0


def test_matched_records_counts_every_record_not_only_top_k() -> None:
    verdicts, _ = run([LONG], [""], [LONG] * 7, NgramConfig(top_k=2))
    assert verdicts.iloc[0].matched_records == 7


def test_record_text_positions_cover_prompt_then_answer() -> None:
    text = record_text("completely unrelated question", LONG)
    verdicts, evidence = run([LONG], [""], [text])
    assert evidence.iloc[0].record_spans == [[3, 19]]


def test_merge_intervals() -> None:
    assert merge_intervals([0, 1, 2, 10], 3) == [[0, 5], [10, 13]]
    assert merge_intervals([], 3) == []


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError):
        NgramConfig(ns=())
    with pytest.raises(ValueError):
        NgramConfig(clean_below=0.9, dirty_from=0.5)
