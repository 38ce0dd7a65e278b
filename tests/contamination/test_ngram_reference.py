"""The production exact scan gives the same verdicts as the naive reference (bench/naive_ngram.py).

The reference works on tuples of token strings with dicts and sets; production
hashes tokens with numpy, probes a bitmap and accumulates batch results. They
must agree on every verdict field, whatever the batching, the chunking inside
a batch, the number of workers or the text.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import corpus
from bench.naive_ngram import VERDICT_COLUMNS, compare_verdicts, naive_scan_files, naive_verdicts
from synthscope.contamination.ngram import BenchmarkIndex, ExactMatches, NgramConfig, scan_records, scan_texts
from synthscope.contamination.scan import run_scan
from synthscope.core.text import hash_ascii, hash_tokens, ngram_hashes, tokenize, window_hashes
from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.datasets import ingest as ingest_module
from synthscope.datasets.ingest import ingest

VOCAB = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
         "upsilon phi chi psi omega").split()
UNICODE_WORDS = ["café", "Straße", "naïve", "東京", "данные", "ﬁne", "Ｆｕｌｌ", "e\u0301cole", "snake_case"]
SEPARATORS = [" ", "  ", ", ", ". ", "\n", " — ", " 🙂 ", "\t", "──"]


def arrow_columns(records: list[str], chunks: int = 2, large: bool = False) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Records as prompt and answer columns (split at the first blank line, empty ones as nulls), in chunks."""
    prompts, answers = [], []
    for text in records:
        prompt, _, answer = text.partition("\n\n")  # record_text joins them back: same tokens
        prompts.append(prompt or None)
        answers.append(answer or None)
    kind = pa.large_string() if large else pa.string()
    cut = [len(records) * k // chunks for k in range(chunks + 1)]
    return tuple(pa.chunked_array([pa.array(column[a:b], kind) for a, b in zip(cut, cut[1:])], kind)
                 for column in (prompts, answers))


def production_verdicts(prompts: list[str], answers: list[str], records: list[str], config: NgramConfig,
                        batch_size: int = 3, max_chars: int = 200, via: str = "strings") -> pd.DataFrame:
    """Verdicts from ExactMatches, records fed in batches, each hashed in small chunks.

    ``via``: ``strings`` (:func:`scan_texts`), ``arrow`` (:func:`scan_records`, what run_scan uses) or
    ``arrow-large`` (the same with 64-bit string offsets).
    """
    index = BenchmarkIndex(prompts, answers, config.ns)
    matches = ExactMatches(index, config)
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        ids = [f"r{start + i}" for i in range(len(batch))]
        if via == "strings":
            matches.add(scan_texts(index, batch, ids, config.top_k, max_chars=max_chars))
        else:
            columns = arrow_columns(batch, chunks=min(2, len(batch)), large=via == "arrow-large")
            matches.add(scan_records(index, *columns, ids, config.top_k, max_chars=max_chars))
    return matches.verdicts()


def assert_same(prompts: list[str], answers: list[str], records: list[str], config: NgramConfig,
                **kwargs: int | str) -> pd.DataFrame:
    expected = naive_verdicts(prompts, answers, records, config)
    actual = production_verdicts(prompts, answers, records, config, **kwargs)
    assert compare_verdicts(expected, actual) == []
    return expected


def _words(rng: random.Random, count: int, vocab: list[str]) -> str:
    out = []
    for _ in range(count):
        out.append(rng.choice(vocab))
        out.append(rng.choice(SEPARATORS) if rng.random() < 0.3 else " ")
    return "".join(out).strip()


def generated_corpus(seed: int, items: int = 40, records: int = 120) -> tuple[list[str], list[str], list[str]]:
    """Items of every shape and records with planted verbatim, partial, shouted and multi-item copies."""
    rng = random.Random(seed)
    vocab = VOCAB + UNICODE_WORDS + [f"w{i}" for i in range(200)]
    prompts, answers = [], []
    for i in range(items):
        shape = i % 8
        if shape == 0:
            prompts.append(_words(rng, rng.randint(0, 7), vocab))  # shorter than every n (or empty)
            answers.append("")
        elif shape == 1:
            prompts.append(_words(rng, rng.randint(8, 12), vocab))  # between the two n
            answers.append(_words(rng, rng.randint(0, 3), vocab))
        elif shape == 2:
            prompts.append(" ".join(["one two three four five six seven eight"] * 3))  # repeated n-grams
            answers.append(_words(rng, 15, vocab))
        else:
            prompts.append(_words(rng, rng.randint(13, 60), vocab))
            answers.append(_words(rng, rng.randint(0, 30), vocab))
    texts = []
    for _ in range(records):
        kind = rng.random()
        noise = _words(rng, rng.randint(0, 30), vocab)
        # Items i % 3 == 0 receive whole copies, 1 partial copies, 2 only answer copies: a mix of buckets.
        role = 0 if kind < 0.15 or 0.30 <= kind < 0.50 else 1 if kind < 0.30 else 2
        i = rng.randrange(role, items, 3)
        words = prompts[i].split()
        if kind < 0.15:
            texts.append(f"{noise}\n{prompts[i]}\n\n{answers[i]}")  # verbatim
        elif kind < 0.30:
            length = int(len(words) * rng.uniform(0.3, 0.7))
            a = rng.randint(0, len(words) - length)
            texts.append(" ".join(words[a : a + length]) + " " + noise)  # partial
        elif kind < 0.40:
            texts.append(noise + " " + "  ".join(prompts[i].upper().split()))  # shouted, re-spaced
        elif kind < 0.50:
            texts.append(" ".join(prompts[rng.randrange(0, items, 3)] for _ in range(3)))  # several items
        elif kind < 0.55:
            texts.append("")  # empty
        elif kind < 0.60:
            texts.append(answers[i])  # answer only (may be empty or short)
        else:
            texts.append(noise)
    return prompts, answers, texts


# -- the oracle itself --------------------------------------------------------------------


def test_oracle_on_a_hand_checked_example() -> None:
    item = "a b c d e f g h i j"  # 10 tokens: n = 8 (of 13, 8)
    records = ["x a b c d e f g h y", "a b c d e f g h", "zz"]  # the same 8-gram (position 0) twice
    v = naive_verdicts([item], ["k l m"], records).iloc[0]
    assert (v.prompt_tokens, v.prompt_n, v.answer_tokens, v.answer_n) == (10, 8, 3, 0)
    assert v.matched_ngrams == 1 and v.prompt_coverage == 0.8 and v.coverage == 0.8
    assert (v.longest_span, v.matched_records, v.bucket, v.verdict) == (8, 2, "dirty", "exact")
    assert v.matched_field == "prompt" and not v.too_short


def test_comparison_catches_a_changed_verdict() -> None:
    prompts, answers, records = generated_corpus(1)
    config = NgramConfig()
    expected = naive_verdicts(prompts, answers, records, config)
    actual = production_verdicts(prompts, answers, records, config)
    changes = [("coverage", lambda x: x + 1e-12), ("matched_records", lambda x: x + 1),
               ("bucket", lambda x: "clean" if x == "dirty" else "dirty"), ("matched_field", lambda x: x + "?")]
    for column, change in changes:
        broken = actual.copy()
        broken.loc[5, column] = change(broken.loc[5, column])
        assert any(p.startswith(column) for p in compare_verdicts(expected, broken)), column
    assert compare_verdicts(expected, actual.iloc[:-1]) != []


# -- production against the oracle --------------------------------------------------------


@pytest.mark.parametrize("via", ["strings", "arrow", "arrow-large"])
@pytest.mark.parametrize("seed", range(3))
def test_generated_corpus_matches_the_oracle(seed: int, via: str) -> None:
    prompts, answers, records = generated_corpus(seed)
    verdicts = assert_same(prompts, answers, records, NgramConfig(), via=via)
    # The corpus exercises what it should: dirty, partial and clean items, too short ones, multi-record items.
    assert {"dirty", "partial", "clean"} <= set(verdicts["bucket"])
    assert verdicts["too_short"].any() and (verdicts["matched_records"] > 1).any()


@pytest.mark.parametrize("via", ["strings", "arrow"])
@pytest.mark.parametrize(("batch_size", "max_chars"), [(1, 1), (7, 50), (1000, 4_000_000)])
def test_batching_and_chunking_do_not_change_verdicts(batch_size: int, max_chars: int, via: str) -> None:
    prompts, answers, records = generated_corpus(11)
    assert_same(prompts, answers, records, NgramConfig(), batch_size=batch_size, max_chars=max_chars, via=via)


@pytest.mark.parametrize("config", [NgramConfig(ns=(8,)), NgramConfig(ns=(3, 5, 13)),
                                    NgramConfig(ns=(1,), clean_below=0.5, dirty_from=0.5),
                                    NgramConfig(ns=(13, 8), clean_below=0.0, dirty_from=1.0)])
def test_other_configurations_match_the_oracle(config: NgramConfig) -> None:
    prompts, answers, records = generated_corpus(5)
    assert_same(prompts, answers, records, config)


@pytest.mark.parametrize("via", ["strings", "arrow"])
def test_edge_cases_match_the_oracle(via: str) -> None:
    long = " ".join(VOCAB[:16])
    prompts = ["", "short one", long, long.upper(), "Ｃａｆé " + long, " ".join(["x y"] * 20), long]
    answers = ["", "", "", long, "", "", " ".join(VOCAB[5:20])]
    records = ["", "   ", long, "CAFÉ " + long.title(), " ".join(["x y"] * 3), " ".join(["X, Y"] * 30),
               " ".join(VOCAB[:10]), " ".join(VOCAB[10:]), " ".join(VOCAB[5:20]) + "\n\n" + long, "🙂" * 50]
    verdicts = assert_same(prompts, answers, records, NgramConfig(), via=via)
    assert verdicts.loc[0, "too_short"] and verdicts.loc[1, "too_short"]


@pytest.mark.parametrize("via", ["strings", "arrow"])
def test_non_ascii_letters_are_part_of_their_word(via: str) -> None:
    """Read as bytes, "hé" would be the token "h" and complete the item's 8-gram; it must not."""
    prompts = ["a b c d e f g h", "one two three four five six seven eight nine"]
    records = ["a b c d e f g hé", "x a b c d e f g Hé", "ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE 東"]
    verdicts = assert_same(prompts, ["", ""], records, NgramConfig(), via=via)
    assert verdicts["bucket"].tolist() == ["clean", "dirty"]


def test_planted_benchmark_corpus_matches_the_oracle() -> None:
    """A small slice of the benchmark's own corpus generator, planted kinds included."""
    items = corpus.make_benchmark(120, seed=3)
    plants = corpus.plan_plants(items, seed=3)
    rows = list(corpus.synthetic_records(400_000, items, plants, seed=3, plant_every=3))
    records = [corpus.record_text(r["prompt"], r["response"]) for r in rows]
    verdicts = assert_same([it.question for it in items], [it.answer for it in items], records, NgramConfig(),
                           batch_size=17, max_chars=20_000)
    planted = {p.item: corpus.PLANT_KINDS[p.kind] for p in plants}
    assert all(verdicts.loc[i, "bucket"] == bucket for i, bucket in planted.items())


_vocab = st.sampled_from(["a", "b", "c", "Ä", "ß", "ss", "東", "x_1"])
_text = st.lists(_vocab, max_size=14).flatmap(
    lambda words: st.lists(st.sampled_from(SEPARATORS), min_size=len(words), max_size=len(words)).map(
        lambda seps: "".join(w + s for w, s in zip(words, seps))))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompts=st.lists(_text, min_size=1, max_size=4), answers=st.data(), records=st.lists(_text, max_size=6),
       ns=st.sets(st.integers(1, 5), min_size=1, max_size=3), batch_size=st.integers(1, 4),
       max_chars=st.integers(1, 60), via=st.sampled_from(["strings", "arrow"]))
def test_property_small_vocabulary_matches_the_oracle(prompts: list[str], answers: st.DataObject,
                                                       records: list[str], ns: set[int], batch_size: int,
                                                       max_chars: int, via: str) -> None:
    """Tiny vocabularies and small n make shared and repeated n-grams the rule, not the exception."""
    answer_texts = answers.draw(st.lists(_text, min_size=len(prompts), max_size=len(prompts)))
    config = NgramConfig(ns=tuple(sorted(ns)))
    assert_same(prompts, answer_texts, records, config, batch_size=batch_size, max_chars=max_chars, via=via)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30), min_size=2,
                max_size=6))
def test_property_arbitrary_unicode_matches_the_oracle(texts: list[str]) -> None:
    """Arbitrary text as items and as records (each item also copied into a record)."""
    prompts = texts[: len(texts) // 2]
    records = texts[len(texts) // 2 :] + [p.upper() for p in prompts]
    for via in ("strings", "arrow"):
        assert_same(prompts, [""] * len(prompts), records, NgramConfig(ns=(2, 1)), via=via)


_ascii = st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(_ascii, max_size=6))
def test_property_byte_hashing_equals_string_hashing(texts: list[str]) -> None:
    """hash_ascii over Arrow-style bytes gives hash_tokens' hashes and offsets for ASCII texts."""
    laid_out = [t + "\n" for t in texts]
    data = np.frombuffer("".join(laid_out).encode("ascii"), dtype=np.uint8)
    starts = np.concatenate(([0], np.cumsum([len(t) for t in laid_out]))).astype(np.int64)
    by_bytes, by_strings = hash_ascii(data, starts), hash_tokens(texts)
    assert by_bytes.hashes.tolist() == by_strings.hashes.tolist()
    assert by_bytes.offsets.tolist() == by_strings.offsets.tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), max_size=40), st.sets(st.integers(1, 15), min_size=1, max_size=4))
def test_property_window_hashes_equal_one_n_at_a_time(tokens: list[int], ns: set[int]) -> None:
    array = np.array(tokens, dtype=np.uint64)
    windows = window_hashes(array, sorted(ns))
    assert {n: w.tolist() for n, w in windows.items()} == {n: ngram_hashes(array, n).tolist() for n in ns}


# -- the whole scan through a workspace ---------------------------------------------------


def _workspace(tmp_path: Path, prompts: list[str], answers: list[str], records: list[str]) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    with open(tmp_path / "bench.jsonl", "w", encoding="utf-8") as fh:
        for i, (p, a) in enumerate(zip(prompts, answers)):
            fh.write(json.dumps({"id": f"item-{i}", "question": p, "answer": a}, ensure_ascii=False) + "\n")
    with open(tmp_path / "synthetic.jsonl", "w", encoding="utf-8") as fh:
        for i, text in enumerate(records):
            prompt, _, answer = text.partition("\n\n")  # record_text joins them back with a blank line
            fh.write(json.dumps({"id": f"rec-{i}", "prompt": prompt, "response": answer}, ensure_ascii=False) + "\n")
    ingest(ws, tmp_path / "bench.jsonl", name="bench", kind="benchmark")
    ingest(ws, tmp_path / "synthetic.jsonl", name="syn", kind="synthetic")
    return ws


@pytest.mark.parametrize("workers", [1, 2])
def test_run_scan_through_a_workspace_matches_the_oracle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         workers: int) -> None:
    monkeypatch.setattr(ingest_module, "ROW_GROUP_ROWS", 23)  # several row groups, hence several tasks
    prompts, answers, records = generated_corpus(7, items=30, records=150)
    ws = _workspace(tmp_path, prompts, answers, records)
    expected = naive_verdicts(prompts, answers, records, NgramConfig())
    # The oracle reading the workspace files sees the same texts as the one given the lists.
    assert compare_verdicts(expected, naive_scan_files(ws.records_path(DatasetRef("bench")),
                                                       ws.records_path(DatasetRef("syn")))) == []

    summary = run_scan(ws, DatasetRef("bench"), [DatasetRef("syn")], NgramConfig(), workers=workers)  # exact only
    verdicts = pd.read_parquet(ws.scans_dir / summary.scan_id / "verdicts.parquet")
    assert compare_verdicts(expected, verdicts) == []
    assert verdicts["item_id"].tolist() == [f"item-{i}" for i in verdicts["item"]]
    assert set(VERDICT_COLUMNS) <= set(verdicts.columns)
    assert summary.per_synthetic[0].records == len(records)
    assert summary.per_synthetic[0].contaminated == int((expected["verdict"] != "clean").sum()) > 0


def test_tokenisation_of_generated_records_is_nontrivial() -> None:
    """Guard against a corpus that would make the comparisons vacuous."""
    prompts, _, records = generated_corpus(2)
    assert sum(len(tokenize(r)) for r in records) > 1000
    assert any(not r.isascii() for r in records) and any(not p.isascii() for p in prompts)
