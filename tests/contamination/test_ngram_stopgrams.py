"""Stop-grams: n-grams frequent in the benchmark or in the scanned corpus are not evidence.

Planted corpora where unrelated texts share boilerplate with the items: without
stop-grams the items are flagged; with them they stay clean, while a verbatim
copy is still a copy with full coverage. The production scan is also checked
against the plain-Python oracle (``bench/naive_ngram.py``), which implements
the same definition, whatever the batching, the reading path or the workers.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.naive_ngram import compare_verdicts, naive_verdicts
from synthscope.contamination.cascade import CascadeConfig, config_from, decide
from synthscope.contamination.ngram import BenchmarkIndex, ExactMatches, NgramConfig, scan_records, scan_texts
from synthscope.contamination.scan import run_scan
from synthscope.core.text import tokenize
from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.datasets import ingest as ingest_module
from synthscope.datasets.ingest import ingest
from tests.contamination.test_ngram_reference import SEPARATORS, arrow_columns, production_verdicts

OFF = NgramConfig(stop_item_share=0, stop_record_share=0)

PREAMBLE = ("from typing import List\n\n\n"
            "def is_prime(n: int) -> bool:\n"
            "    if n < 2:\n        return False\n"
            "    for i in range(2, n):\n        if n % i == 0:\n            return False\n"
            "    return True\n\n\n")
HELPER = PREAMBLE.split("\n\n\n")[1]  # the is_prime helper without the import
# Every prompt of items() starts with the preamble and "def": the 13-grams inside that prefix are shared.
SHARED = len(tokenize(PREAMBLE)) + 1 - 13 + 1

TASKS = [
    ("sum_primes", "Return the sum of the prime numbers in the list, or zero when there are none at all."),
    ("count_twins", "Count the pairs of twin primes p and p plus two that both appear in the given list."),
    ("largest_gap", "Find the largest gap between two consecutive primes among the numbers given, in order."),
    ("prime_digits", "For every number, count how many of its decimal digits are themselves prime digits."),
    ("mersenne", "Keep only the numbers that are one less than a power of two and are also prime numbers."),
    ("goldbach", "Split each even number above two into two primes that add up to it, smallest first."),
]
ANSWERS = [
    "    return sum(x for x in numbers if is_prime(x))\n",
    "    seen = set(numbers)\n    return sum(1 for p in seen if is_prime(p) and is_prime(p + 2) and p + 2 in seen)\n",
    "    ps = [x for x in numbers if is_prime(x)]\n    return max((b - a for a, b in zip(ps, ps[1:])), default=0)\n",
    "    return [sum(1 for d in str(abs(x)) if d in '2357') for x in numbers]\n",
    "    return [x for x in numbers if is_prime(x) and (x + 1) & x == 0]\n",
    "    return [next((p, x - p) for p in range(2, x) if is_prime(p) and is_prime(x - p)) for x in numbers]\n",
]


def items() -> tuple[list[str], list[str]]:
    """Six HumanEval-like problems that all start with the same imports and helper."""
    prompts = [f'{PREAMBLE}def {name}(numbers: List[int]):\n    """{doc}"""\n' for name, doc in TASKS]
    return prompts, ANSWERS


def unrelated(count: int, seed: int = 0, preamble: str = PREAMBLE) -> list[str]:
    """Records on other problems that start with the same preamble."""
    rng = random.Random(seed)
    verbs = "sort reverse shuffle rotate flatten deduplicate chunk zip interleave".split()
    nouns = "strings words lines tokens names paths keys values rows columns".split()
    out = []
    for i in range(count):
        verb, noun = rng.choice(verbs), rng.choice(nouns)
        out.append(f"Write a function that will {verb} the {noun} of a collection, case {i}.\n\n"
                   f"{preamble}def {verb}_{noun}_{i}(xs):\n    return {verb}(xs, key=len, seed={i})\n")
    return out


def scan(prompts: list[str], answers: list[str], records: list[str],
         config: NgramConfig) -> tuple[pd.DataFrame, pd.DataFrame, ExactMatches]:
    index = BenchmarkIndex(prompts, answers, config.ns)
    matches = ExactMatches(index, config)
    for start in range(0, len(records), 7):  # several batches: record counts add up across them
        batch = records[start : start + 7]
        matches.add(scan_texts(index, batch, [f"r{start + i}" for i in range(len(batch))], config.top_k))
    return matches.verdicts(), matches.evidence(), matches


def test_boilerplate_shared_with_every_item_flags_nothing_but_a_copy_stays_a_copy() -> None:
    prompts, answers = items()
    copy = "Here is one from my notes:\n" + prompts[3] + answers[3]
    records = unrelated(60) + [copy]

    before, _, _ = scan(prompts, answers, records, OFF)
    assert (before["verdict"] == "exact").all()  # the preamble alone covers a third of every prompt

    verdicts, evidence, matches = scan(prompts, answers, records, NgramConfig())
    assert verdicts["verdict"].tolist() == ["clean", "clean", "clean", "exact", "clean", "clean"]
    three = verdicts.loc[3]
    assert (three.coverage, three.prompt_coverage, three.answer_coverage, three.bucket) == (1.0, 1.0, 1.0, "dirty")
    assert three.matched_records == 1
    assert (verdicts.loc[verdicts["item"] != 3, ["coverage", "matched_ngrams", "matched_records"]] == 0).all().all()
    # Every item's preamble n-grams were matched and discounted, and say so.
    assert (verdicts["discounted_ngrams"] == SHARED).all()
    # The evidence is the copy alone; its spans leave out the preamble, which proves nothing.
    assert evidence[["item", "record_id"]].values.tolist() == [[3, "r60"]]
    row = evidence.iloc[0]
    assert row.discounted_ngrams == SHARED and row.coverage == 1.0
    assert row.item_prompt_spans == [[SHARED, three.prompt_tokens]]
    # The preamble is a benchmark stop-gram (in all six items); no record-side one was needed.
    assert matches.stop_grams() == {"item_threshold": 3, "benchmark": 6 * SHARED, "benchmark_matched": 6 * SHARED,
                                    "record_threshold": 20, "corpus": 0}


def test_a_helper_common_in_the_corpus_is_not_evidence_for_the_one_item_that_uses_it() -> None:
    helper, common = HELPER, len(tokenize(HELPER)) - 13 + 1  # the helper's 13-grams
    prompts = [f'def {name}(numbers):\n    """{doc}"""\n' for name, doc in TASKS]
    answers = list(ANSWERS)
    answers[0] = helper + "\n" + answers[0]  # only item 0 carries the helper
    records = unrelated(40, preamble=helper + "\n")
    records += [f"Copied:\n{prompts[1]}{answers[1]}"]  # a verbatim copy
    records += [f"Copy {k}:\n{prompts[2]}{answers[2]}" for k in range(30)]  # a leak repeated thirty times
    records += [f"{answers[0]}# a verbatim copy of the answer that holds the helper, {k}\n" for k in range(2)]

    before, _, _ = scan(prompts, answers, records[:-2], OFF)
    assert before.loc[0, "bucket"] == "partial" and before.loc[0, "matched_field"] == "answer"

    verdicts, evidence, matches = scan(prompts, answers, records[:-2], NgramConfig())
    assert verdicts["verdict"].tolist() == ["clean", "exact", "exact", "clean", "clean", "clean"]
    zero = verdicts.loc[0]
    assert (zero.coverage, zero.matched_records, zero.longest_span) == (0.0, 0, 0)
    assert zero.discounted_ngrams == common
    # Thirty copies of item 2 are thirty copies: its n-grams are never stop-grams.
    two = verdicts.loc[2]
    assert (two.coverage, two.matched_records, two.discounted_ngrams) == (1.0, 30, 0)
    assert verdicts.loc[1, "coverage"] == 1.0
    assert 0 not in set(evidence["item"])
    assert matches.stop_grams()["corpus"] == common and matches.stop_grams()["benchmark"] == 0

    # A record that copies item 0's whole answer is a copy: the helper counts inside it.
    verdicts, evidence, _ = scan(prompts, answers, records, NgramConfig())
    zero = verdicts.loc[0]
    assert (zero.answer_coverage, zero.bucket, zero.matched_records, zero.discounted_ngrams) == (1.0, "dirty", 2, 0)
    assert set(evidence.loc[evidence["item"] == 0, "discounted_ngrams"]) == {0}


MC = ("{question}\nStatement 1 and Statement 2 are given above; which of them hold?\n"
      "A. True, True\nB. False, False\nC. True, False\nD. False, True")


def test_a_benchmark_whose_items_share_scaffolding_is_not_matched_by_the_scaffolding() -> None:
    questions = [f"Statement 1 | Every group of order {p} is cyclic. Statement 2 | Every ring of order {p} "
                 f"is a field with {p} elements, question {i}." for i, p in enumerate([5, 7, 11, 13, 17])]
    prompts = [MC.format(question=q) for q in questions]
    answers = ["True, True"] * 5  # too short for any n
    records = [MC.format(question=f"Statement 1 | Some claim about topic {k}. Statement 2 | Another one.")
               for k in range(8)] + [prompts[2]]

    before, _, _ = scan(prompts, answers, records, OFF)
    assert (before["bucket"] != "clean").all()

    verdicts, _, matches = scan(prompts, answers, records, NgramConfig())
    assert verdicts["verdict"].tolist() == ["clean", "clean", "exact", "clean", "clean"]
    assert verdicts.loc[2, "coverage"] == 1.0
    assert (verdicts["discounted_ngrams"] > 0).all()
    assert matches.stop_grams()["benchmark"] > 0 and matches.stop_grams()["corpus"] == 0


def test_duplicated_benchmark_items_do_not_make_each_other_stop_grams() -> None:
    prompts, answers = items()
    prompts, answers = prompts[:2] + [prompts[1]] * 3, answers[:2] + [answers[1]] * 3  # item 1 four times
    verdicts, _, matches = scan(prompts, answers, [prompts[1] + answers[1]], NgramConfig(stop_item_min=2))
    assert verdicts["coverage"].tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert matches.stop_grams()["benchmark"] == 5 * SHARED  # the preamble (five distinct texts: not the copies)


def test_off_is_the_old_behaviour() -> None:
    """Both shares 0: every number as before stop-grams (the oracle without them), and nothing discounted."""
    prompts, answers = items()
    records = unrelated(60) + ["noise " + prompts[3] + answers[3]]
    verdicts, evidence, matches = scan(prompts, answers, records, OFF)
    assert compare_verdicts(naive_verdicts(prompts, answers, records, OFF), verdicts) == []
    assert (verdicts["discounted_ngrams"] == 0).all() and (evidence["discounted_ngrams"] == 0).all()
    # Coverage is over the whole field, as it always was.
    n = verdicts.loc[0]
    assert n.prompt_coverage == pytest.approx((SHARED + 12) / n.prompt_tokens)
    assert matches.stop_grams() == {"item_threshold": None, "benchmark": 0, "benchmark_matched": 0,
                                    "record_threshold": None, "corpus": 0}
    assert matches.index.coverable.tolist() == matches.index.lengths.tolist()


def test_settings_are_checked_and_reach_the_manifest_settings() -> None:
    with pytest.raises(ValueError):
        NgramConfig(stop_item_share=1.5)
    with pytest.raises(ValueError):
        NgramConfig(stop_record_min=1)
    assert NgramConfig().item_stop_at(164) == 4 and NgramConfig().item_stop_at(150) == 3
    assert NgramConfig().record_stop_at(2017) == 20 and NgramConfig().record_stop_at(100_000) == 500
    assert OFF.item_stop_at(164) is None and OFF.record_stop_at(10) is None
    config = config_from({"ngram": {"stop_record_share": 0.01}}, {"ngram.stop_item_min": 5})
    ngram = config.settings()["ngram"]
    assert (ngram["stop_item_share"], ngram["stop_item_min"], ngram["stop_record_share"],
            ngram["stop_record_min"]) == (0.02, 5, 0.01, 20)


def test_the_cascade_leaves_items_matched_only_by_boilerplate_clean() -> None:
    prompts, answers = items()
    records = unrelated(60) + ["noise " + prompts[3] + answers[3]]
    for config, expected in ((OFF, ["exact"] * 6), (NgramConfig(), ["clean"] * 3 + ["exact"] + ["clean"] * 2)):
        verdicts, evidence, _ = scan(prompts, answers, records, config)
        v, e = decide(verdicts, evidence, CascadeConfig(stages=("exact",), ngram=config))
        assert v["verdict"].tolist() == expected
        assert "discounted_ngrams" in v and "discounted_ngrams" in e


# -- against the oracle ---------------------------------------------------------------------

STOP = NgramConfig(stop_item_min=3, stop_record_min=4, stop_record_share=0.02)


def boilerplate_corpus(seed: int, items: int = 24, records: int = 160) -> tuple[list[str], list[str], list[str]]:
    """Items that share a header (some of them), records that share helpers with a few items, copies of
    every kind (verbatim, repeated, partial, answer only, several items at once) and noise."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(300)] + ["café", "Straße", "東京"]

    def words(k: int) -> str:
        return " ".join(rng.choice(vocab) for _ in range(k))

    header = "licensed under the apache license version two point zero you may not use this file"
    helpers = [words(18) for _ in range(3)]
    prompts, answers = [], []
    for i in range(items):
        head = header + " " if i % 3 else ""
        prompts.append(head + words(rng.randint(5, 25)))
        answers.append((helpers[i % 3] + "\n" if i % 4 == 0 else "") + words(rng.randint(0, 20)))
    texts = []
    for _ in range(records):
        kind, i = rng.random(), rng.randrange(items)
        noise = words(rng.randint(0, 12))
        if kind < 0.35:
            texts.append(f"{noise} {rng.choice(helpers)} {words(6)}")  # a common helper
        elif kind < 0.45:
            texts.append(f"{header} {words(10)}")  # the benchmark's header, nothing else
        elif kind < 0.55:
            texts.append(f"{noise}\n{prompts[i]}\n\n{answers[i]}")  # verbatim
        elif kind < 0.62:
            texts.append(f"{prompts[0]}\n\n{answers[0]}")  # one item leaked again and again
        elif kind < 0.72:
            tokens = prompts[i].split()
            a = rng.randrange(len(tokens))
            texts.append(" ".join(tokens[a : a + rng.randint(8, 20)]) + " " + noise)  # partial
        elif kind < 0.78:
            texts.append(answers[i].upper())  # answer only
        elif kind < 0.84:
            texts.append(" ".join(prompts[rng.randrange(items)] for _ in range(2)))  # two items
        else:
            texts.append(noise)
    return prompts, answers, texts


@pytest.mark.parametrize("via", ["strings", "arrow"])
@pytest.mark.parametrize(("seed", "batch_size"), [(0, 1), (1, 7), (2, 1000)])
def test_stop_grams_match_the_oracle(seed: int, batch_size: int, via: str) -> None:
    prompts, answers, records = boilerplate_corpus(seed)
    expected = naive_verdicts(prompts, answers, records, STOP)
    actual = production_verdicts(prompts, answers, records, STOP, batch_size=batch_size, max_chars=300, via=via)
    assert compare_verdicts(expected, actual) == []
    # The corpus exercises both sources and copies that are never discounted.
    assert (expected["discounted_ngrams"] > 0).sum() >= 5 and (expected["bucket"] == "dirty").sum() >= 5
    # Item 0, leaked again and again, shares a helper with the corpus: its copies keep every n-gram.
    assert expected.loc[0, "coverage"] == 1.0 and expected.loc[0, "discounted_ngrams"] == 0
    off = naive_verdicts(prompts, answers, records, OFF)
    assert (off["bucket"] != "clean").sum() > (expected["bucket"] != "clean").sum()


@pytest.mark.parametrize("seed", range(2))
def test_evidence_does_not_depend_on_the_batching(seed: int) -> None:
    prompts, answers, records = boilerplate_corpus(seed)
    frames = []
    for batch_size in (1, 9, 1000):
        index = BenchmarkIndex(prompts, answers, STOP.ns)
        matches = ExactMatches(index, STOP)
        for start in range(0, len(records), batch_size):
            batch = records[start : start + batch_size]
            columns = arrow_columns(batch, chunks=min(2, len(batch)))
            matches.add(scan_records(index, *columns, [f"r{start + i:04d}" for i in range(len(batch))], STOP.top_k))
        frames.append(matches.evidence().sort_values(["item", "rank"]).reset_index(drop=True))
    for other in frames[1:]:
        pd.testing.assert_frame_equal(frames[0], other)
    assert (frames[0]["discounted_ngrams"] > 0).any()


_vocab = st.sampled_from(["a", "b", "c", "d", "Ä", "ß", "東"])
_text = st.lists(_vocab, max_size=12).flatmap(
    lambda words: st.lists(st.sampled_from(SEPARATORS), min_size=len(words), max_size=len(words)).map(
        lambda seps: "".join(w + s for w, s in zip(words, seps))))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompts=st.lists(_text, min_size=1, max_size=6), answers=st.data(), records=st.lists(_text, max_size=10),
       ns=st.sets(st.integers(1, 4), min_size=1, max_size=2), item_min=st.integers(2, 4),
       record_min=st.integers(2, 4), shares=st.sampled_from([(0.02, 0.005), (0.0, 0.3), (0.5, 0.0), (0.0, 0.0)]),
       dirty_from=st.sampled_from([0.5, 0.8, 1.0]), batch_size=st.integers(1, 4),
       via=st.sampled_from(["strings", "arrow"]))
def test_property_stop_grams_match_the_oracle(prompts: list[str], answers: st.DataObject, records: list[str],
                                              ns: set[int], item_min: int, record_min: int,
                                              shares: tuple[float, float], dirty_from: float, batch_size: int,
                                              via: str) -> None:
    """Tiny vocabularies make shared n-grams the rule: both sources, copies and their interplay."""
    answer_texts = answers.draw(st.lists(_text, min_size=len(prompts), max_size=len(prompts)))
    config = NgramConfig(ns=tuple(sorted(ns)), clean_below=min(0.2, dirty_from), dirty_from=dirty_from,
                         stop_item_share=shares[0], stop_item_min=item_min, stop_record_share=shares[1],
                         stop_record_min=record_min)
    expected = naive_verdicts(prompts, answer_texts, records, config)
    actual = production_verdicts(prompts, answer_texts, records, config, batch_size=batch_size, max_chars=30,
                                 via=via)
    assert compare_verdicts(expected, actual) == []


# -- through a workspace ------------------------------------------------------------------


def _workspace(tmp_path: Path, prompts: list[str], answers: list[str], records: list[str]) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    with open(tmp_path / "bench.jsonl", "w", encoding="utf-8") as fh:
        for i, (p, a) in enumerate(zip(prompts, answers)):
            fh.write(json.dumps({"id": f"item-{i}", "question": p, "answer": a}, ensure_ascii=False) + "\n")
    with open(tmp_path / "synthetic.jsonl", "w", encoding="utf-8") as fh:
        for i, text in enumerate(records):
            prompt, _, answer = text.partition("\n\n")
            fh.write(json.dumps({"id": f"rec-{i:04d}", "prompt": prompt, "response": answer},
                                ensure_ascii=False) + "\n")
    ingest(ws, tmp_path / "bench.jsonl", name="bench", kind="benchmark")
    ingest(ws, tmp_path / "synthetic.jsonl", name="syn", kind="synthetic")
    return ws


@pytest.mark.parametrize("workers", [1, 2])
def test_run_scan_writes_the_discounted_ngrams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               workers: int) -> None:
    monkeypatch.setattr(ingest_module, "ROW_GROUP_ROWS", 23)  # several row groups, hence several tasks
    prompts, answers, records = boilerplate_corpus(3)
    ws = _workspace(tmp_path, prompts, answers, records)
    summary = run_scan(ws, DatasetRef("bench"), [DatasetRef("syn")], STOP, workers=workers)
    scan_dir = ws.scans_dir / summary.scan_id
    verdicts = pd.read_parquet(scan_dir / "verdicts.parquet")
    assert compare_verdicts(naive_verdicts(prompts, answers, records, STOP), verdicts) == []
    evidence = pd.read_parquet(scan_dir / "evidence.parquet")
    assert evidence["discounted_ngrams"].notna().all() and (evidence["discounted_ngrams"] > 0).any()
    settings = json.loads((scan_dir / "manifest.json").read_text())["config"]["ngram"]
    assert (settings["stop_item_min"], settings["stop_record_min"], settings["stop_record_share"]) == (3, 4, 0.02)
