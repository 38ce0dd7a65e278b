"""Near-duplicate stage: shingles, signatures equal to datasketch's, exact Jaccard, LSH recall, masking, reuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthscope.compute.engine import LocalEngine
from synthscope.contamination import minhash as mh
from synthscope.contamination.minhash import NearDuplicateConfig, near_duplicates
from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.datasets import ingest as ingest_module
from synthscope.datasets.ingest import ingest
from tests.fixtures.reference_shingles import ref_jaccard, ref_shingles

RNG_WORDS = [f"w{i}x" for i in range(5000)]  # distinct words: every shingle of a random text is distinct


def words(rng: np.random.Generator, n: int) -> list[str]:
    return [RNG_WORDS[i] for i in rng.choice(len(RNG_WORDS), n, replace=False)]


def make_ws(tmp_path: Path, records: list[dict[str, str]], name: str = "syn") -> Workspace:
    ws = Workspace.init(tmp_path / "ws") if not (tmp_path / "ws").exists() else Workspace.open(tmp_path / "ws")
    path = tmp_path / f"{name}.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    ingest(ws, path, name=name, kind="synthetic")
    return ws


def bench(prompts: list[str], answers: list[str] | None = None) -> pd.DataFrame:
    answers = answers or [""] * len(prompts)
    return pd.DataFrame({"item": range(len(prompts)), "item_id": [f"b{i}" for i in range(len(prompts))],
                         "prompt": prompts, "answer": answers})


def record_ids(ws: Workspace, name: str = "syn") -> list[str]:
    return pq.read_table(ws.records_path(ws.resolve(DatasetRef(name))), columns=["record_id"]).column(0).to_pylist()


# -- shingles, signatures, Jaccard ------------------------------------------------------------


def test_config_checks_its_values_and_reports_its_bands() -> None:
    config = NearDuplicateConfig()
    assert config.bands == (37, 3)
    assert config.candidate_probability(0.5) > 0.99 and config.candidate_probability(0.05) < 0.01
    assert config.key == "k5-p128-s1-masked-f1"
    for bad in ({"shingle": 0}, {"num_perm": 1}, {"lsh_threshold": 1.0}, {"flag_at": 0}, {"top_k": 0}):
        with pytest.raises(ValueError):
            NearDuplicateConfig(**bad)


# -- the scan ---------------------------------------------------------------------------------


def test_reported_jaccard_is_the_exact_one_and_flags_nothing_unrelated(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    item = words(rng, 34)
    # 24 shared leading words: 20 of 30 shingles each side shared -> J = 20 / 40 = 0.5 exactly.
    copy = item[:24] + words(rng, 10)
    unrelated = words(rng, 40)
    ws = make_ws(tmp_path, [{"prompt": " ".join(copy)}, {"prompt": " ".join(unrelated)}])
    out = near_duplicates(ws, bench([" ".join(item)]), DatasetRef("syn"))
    assert len(out) == 1
    row = out.iloc[0]
    assert row.record_id == record_ids(ws)[0]
    assert row.jaccard == 0.5  # exact, not a 128-permutation estimate
    assert (row.field, row.record_field, bool(row.number_substituted)) == ("prompt", "prompt", False)


def test_lsh_candidates_near_the_flag_threshold_are_all_found(tmp_path: Path) -> None:
    """Pairs at exactly J = flag_at = 0.5: LSH banded for 0.3 finds all; banded for 0.5 misses some.

    Confirmation by exact Jaccard removes false candidates but cannot restore a
    missed one; the default ``lsh_threshold`` sits below ``flag_at`` for that.
    """
    rng = np.random.default_rng(5)
    items, copies = [], []
    for _ in range(40):
        item = words(rng, 34)
        items.append(" ".join(item))
        copies.append({"prompt": " ".join(item[:24] + words(rng, 10))})
    ws = make_ws(tmp_path, copies)
    ids = record_ids(ws)
    found = near_duplicates(ws, bench(items), DatasetRef("syn"))
    own = found[found["record_id"] == [ids[i] for i in found["item"]]]
    assert (own["jaccard"] == 0.5).all()
    assert len(own) >= 38  # P(candidate | J = 0.5) = 0.993 each: 38 or more of 40 with probability 0.997

    at_midpoint = NearDuplicateConfig(lsh_threshold=0.5)  # b = 25, r = 5: P(candidate | J = 0.5) = 0.548
    assert at_midpoint.candidate_probability(0.5) == pytest.approx(0.548, abs=0.001)
    found = near_duplicates(ws, bench(items), DatasetRef("syn"), at_midpoint)
    own = found[found["record_id"] == [ids[i] for i in found["item"]]]
    assert 10 < len(own) < 34  # about 22 of 40 found: a recall hole right at flag_at


def test_number_substituted_variant_is_flagged(tmp_path: Path) -> None:
    item = ("Tom has 3 apples and buys 5 more at the market. Then he gives 2 apples to his sister Anna. "
            "How many apples does Tom have now?")
    variant = ("Tom has 7 apples and buys 2 more at the market. Then he gives 4 apples to his sister Anna. "
               "How many apples does Tom have now?")
    other = "A train leaves the station at 9 and travels 60 miles per hour for 3 hours. How far does it go?"
    ws = make_ws(tmp_path, [{"prompt": variant, "answer": "Tom has 5 apples."}, {"prompt": other}])
    out = near_duplicates(ws, bench([item], ["Tom has 3 + 5 - 2 = 6 apples now."]), DatasetRef("syn"))
    row = out.iloc[0]
    assert row.record_id == record_ids(ws)[0]
    expected = ref_jaccard(ref_shingles(item, 5), ref_shingles(variant, 5))
    assert row.jaccard == pytest.approx(expected) and row.jaccard < 0.5
    assert row.masked_jaccard == 1.0 and bool(row.number_substituted)
    assert len(out) == 1  # the unrelated word problem is not a candidate

    off = near_duplicates(ws, bench([item]), DatasetRef("syn"), NearDuplicateConfig(mask_numbers=False))
    assert off.empty or not off["number_substituted"].any()


def test_answer_only_leak_is_found_on_the_answer_fields(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    answer = words(rng, 40)
    edited = list(answer)
    edited[20] = "changed"  # one word changed: the 5 shingles through it differ
    long_prompt = " ".join(words(rng, 200))
    ws = make_ws(tmp_path, [{"prompt": long_prompt, "answer": " ".join(edited)}])
    out = near_duplicates(ws, bench(["What is the question here, asked in other words entirely?"],
                                    [" ".join(answer)]), DatasetRef("syn"))
    row = out.iloc[0]
    assert (row.field, row.record_field) == ("answer", "answer")
    assert row.jaccard == pytest.approx(31 / 41)  # 36 shingles each side, 31 shared


def test_short_fields_are_skipped_and_listed(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, [{"prompt": "one two three four five six", "answer": "B"}])
    out = near_duplicates(ws, bench(["one two three four five six", "too short"], ["B", ""]), DatasetRef("syn"))
    assert out["item"].tolist() == [0]
    assert out.attrs["too_short"] == [{"item": 1, "item_id": "b1", "field": "prompt"},
                                      {"item": 0, "item_id": "b0", "field": "answer"}]


def test_top_k_per_item_ranked_by_jaccard_then_record_id(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    item = words(rng, 30)
    records = [{"prompt": " ".join(item)}, {"prompt": " ".join(item)}]  # two exact copies: a tie
    for keep in (28, 26, 24, 22, 20):
        records.append({"prompt": " ".join(item[:keep] + words(rng, 30 - keep))})
    ws = make_ws(tmp_path, records)
    out = near_duplicates(ws, bench([" ".join(item)]), DatasetRef("syn"), NearDuplicateConfig(top_k=4))
    ids = record_ids(ws)
    assert out["record_id"].tolist() == sorted(ids[:2]) + ids[2:4]
    assert out["jaccard"].tolist() == [1.0, 1.0, 24 / 28, 22 / 30]
    assert list(out.columns) == mh.OUTPUT_COLUMNS


def test_signatures_are_stored_as_arrays_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    item = words(rng, 30)
    monkeypatch.setattr(ingest_module, "ROW_GROUP_ROWS", 2)  # several row groups
    records = [{"prompt": " ".join(words(rng, 20)), "answer": f"value {i} of 10"} for i in range(6)]
    records.insert(3, {"prompt": " ".join(item), "answer": "the answer is 12"})
    ws = make_ws(tmp_path, records)
    ref = ws.resolve(DatasetRef("syn"))
    first = near_duplicates(ws, bench([" ".join(item)]), DatasetRef("syn"))

    path = mh.signature_path(ws, ref, NearDuplicateConfig())
    assert path == ws.indexes_dir / "minhash" / "syn" / ref.version / "k5-p128-s1-masked-f1.parquet"
    table = pq.read_table(path)
    assert table.schema.field("signature").type == pa.list_(pa.uint32(), 128)
    assert table.num_rows == 7  # every prompt; no answer has 5 words, no prompt a number
    assert set(table.column("row_group").to_pylist()) == {0, 1, 2, 3}
    assert not list(path.parent.glob("*.tmp")) and not list(path.parent.glob(".*"))

    def must_not_sign(*args, **kwargs):
        raise AssertionError("signatures were recomputed")

    monkeypatch.setattr(mh, "_sign_row_group", must_not_sign)
    again = near_duplicates(ws, bench([" ".join(item)]), DatasetRef("syn"))
    pd.testing.assert_frame_equal(first, again)
    assert again.iloc[0].jaccard == 1.0 and again.iloc[0].record_id == record_ids(ws)[3]
    with pytest.raises(AssertionError, match="recomputed"):  # another key signs again
        near_duplicates(ws, bench([" ".join(item)]), DatasetRef("syn"), NearDuplicateConfig(num_perm=64),
                        engine=LocalEngine(1))


def test_signatures_match_across_worker_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_module, "ROW_GROUP_ROWS", 3)
    rng = np.random.default_rng(6)
    ws = make_ws(tmp_path, [{"prompt": " ".join(words(rng, 12)), "answer": "1 2 3 4 5 6 x"} for _ in range(9)])
    ref = ws.resolve(DatasetRef("syn"))
    other = pq.read_table(mh.sign_dataset(ws, ref, NearDuplicateConfig(shingle=4), engine=LocalEngine(2)))
    keys = ["row_group", "row", "side", "masked"]
    direct = pd.concat([mh._sign_row_group(t, NearDuplicateConfig(shingle=4)).to_pandas()
                        for t in mh.row_groups(ws.records_path(ref))])
    a = other.to_pandas().sort_values(keys).reset_index(drop=True)
    b = direct.sort_values(keys).reset_index(drop=True)
    assert a[keys + ["record_id", "numbers"]].equals(b[keys + ["record_id", "numbers"]])
    assert all(np.array_equal(x, y) for x, y in zip(a["signature"], b["signature"]))
    assert a["masked"].any()  # answers of numbers and one word: a masked signature


def test_shingles_of_the_benchmark_format_are_not_evidence(tmp_path: Path) -> None:
    """Items that share a 20-word scaffold: a record with the scaffold and another question is not a
    near-duplicate once the scaffold's shingles are dropped; a copy still is, at J = 1."""
    rng = np.random.default_rng(5)
    scaffold = words(rng, 20)
    questions = [words(rng, 12) for _ in range(6)]
    prompts = [" ".join(scaffold + q) for q in questions]
    other = " ".join(scaffold + words(rng, 12))
    ws = make_ws(tmp_path, [{"prompt": other}, {"prompt": prompts[4]}])
    ids = record_ids(ws)

    off = near_duplicates(ws, bench(prompts), DatasetRef("syn"), NearDuplicateConfig(stop_item_share=0))
    assert off.attrs["stop_shingles"] == 0
    before = off[off["record_id"] == ids[0]].set_index("item")["jaccard"]
    # 16 of the 28 shingles on each side are the scaffold's: J = 16 / 40.
    assert len(before) == 6 and (before == 16 / 40).all()

    out = near_duplicates(ws, bench(prompts), DatasetRef("syn"))
    assert out.attrs["stop_shingles"] == 16  # the shingles inside the scaffold, in all six items
    # What is left of the other record shares nothing with any item; the copy is whole.
    assert out[["item", "record_id", "jaccard"]].values.tolist() == [[4, ids[1], 1.0]]


def test_stop_shingles_count_distinct_texts_not_repeated_items() -> None:
    from synthscope.algorithms.minhash import shingle

    a, b = "one two three four five six", "seven eight nine ten eleven twelve"
    sets = shingle([a, a, a, b], 5)
    assert len(mh.stop_shingles([sets], 2)) == 0  # `a` three times is one text
    assert len(mh.stop_shingles([sets, shingle([a], 5)], 2)) == 0  # and once more as another field
    assert mh.stop_shingles([sets], None).tolist() == []
    both = shingle([a + " x", a + " y", "z " + a], 5)
    assert mh.stop_shingles([both], 3).tolist() == sorted(set(shingle([a], 5).values.tolist()))
    assert NearDuplicateConfig().stop_at(164) == 4 and NearDuplicateConfig(stop_item_share=0).stop_at(164) is None
    with pytest.raises(ValueError):
        NearDuplicateConfig(stop_item_min=1)


# -- candidates: the band join against datasketch's MinHashLSH.query ---------------------------------


def _near_copies(rng: np.random.Generator, items: list[list[str]], count: int) -> list[str]:
    """Edited copies of random items: a share of their words replaced, and some numbers changed."""
    out = []
    for _ in range(count):
        item = list(items[int(rng.integers(len(items)))])
        for k in np.flatnonzero(rng.random(len(item)) < rng.uniform(0.0, 0.3)):
            item[k] = str(int(rng.integers(100))) if item[k].isdigit() else RNG_WORDS[int(rng.integers(5000))]
        out.append(" ".join(item))
    return out


def test_candidates_are_datasketch_queries_of_every_signature(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The band join proposes exactly the (record, item) pairs a ``MinHashLSH.query`` per record signature did
    (plain signatures against the plain index, masked ones and number-free ones against the masked index),
    and batching the join or the confirmation changes nothing."""
    from datasketch import MinHash, MinHashLSH

    monkeypatch.setattr(ingest_module, "ROW_GROUP_ROWS", 40)
    rng = np.random.default_rng(21)
    items = [words(rng, 30) + [str(int(rng.integers(100))) for _ in range(int(rng.integers(0, 4)))]
             for _ in range(25)]
    prompts = [" ".join(item) for item in items]
    copies = _near_copies(rng, items, 120)
    boilerplate = [" ".join(items[0])] * 60  # one band key shared by 60 records: a crowded bucket
    records = [{"prompt": p, "answer": a} for p, a in zip(copies, rng.permutation(copies))]
    records += [{"prompt": b, "answer": f"copy {RNG_WORDS[k]}"} for k, b in enumerate(boilerplate)]  # distinct
    records += [{"prompt": " ".join(words(rng, 40))} for _ in range(40)]
    ws = make_ws(tmp_path, records)
    ref = ws.resolve(DatasetRef("syn"))
    config = NearDuplicateConfig()
    frame = bench(prompts, [" ".join(words(rng, 12)) for _ in prompts])
    built = mh._Benchmark.build(frame, config)
    path = mh.sign_dataset(ws, ref, config)

    # The reference: datasketch indexes of the benchmark's signatures, one query per stored record signature.
    indexes = {}
    for kind, sets in (("plain", built.plain), ("masked", built.masked)):
        indexes[kind] = MinHashLSH(num_perm=config.num_perm, params=config.bands)
        sigs = mh.signatures(sets, config.num_perm, config.seed)
        for t in np.flatnonzero(sets.sizes() > 0):
            indexes[kind].insert(int(t), MinHash(num_perm=config.num_perm, hashvalues=sigs[t], scheme="affine32"))
    expected = set()
    table = pq.read_table(path)
    sigs = mh.signature_matrix(table.column("signature"), config.num_perm)
    for row in range(table.num_rows):
        m = MinHash(num_perm=config.num_perm, hashvalues=sigs[row], scheme="affine32")
        masked, numbers = table.column("masked")[row].as_py(), table.column("numbers")[row].as_py()
        keys = (indexes["plain"].query(m) if not masked else []) + \
            (indexes["masked"].query(m) if masked or not numbers else [])
        g, r = table.column("row_group")[row].as_py(), table.column("row")[row].as_py()
        expected.update((g, r, int(t) % len(prompts)) for t in keys)

    found = mh.candidates(path, built, config)
    assert [tuple(c) for c in found.tolist()] == sorted(expected)
    assert len(expected) > 100 and (found[:, 2] == 0).sum() >= 60  # every boilerplate copy proposed for item 0
    assert [tuple(c) for c in mh.candidates(path, built, config, batch_rows=7).tolist()] == sorted(expected)

    whole = near_duplicates(ws, frame, DatasetRef("syn"))
    assert whole.attrs["candidates"] == len(expected)
    monkeypatch.setattr(mh, "CONFIRM_LOOKUPS", 50)  # confirmation in batches of a candidate or two
    pd.testing.assert_frame_equal(near_duplicates(ws, frame, DatasetRef("syn")), whole)


# -- real data ----------------------------------------------------------------------------------


@pytest.mark.realdata
def test_near_duplicates_on_rephrased_humaneval_is_the_low_baseline(tmp_path: Path) -> None:
    from tests.conftest import REAL_DATA

    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not present at {REAL_DATA} (it is in CI; a user's machine does not have it)")
    ws = Workspace.init(tmp_path / "ws")
    ingest(ws, REAL_DATA / "humaneval_test.jsonl", name="humaneval", kind="benchmark")
    ingest(ws, REAL_DATA / "humaneval_test.jsonl", name="copy", kind="synthetic")
    ingest(ws, REAL_DATA / "humaneval_rephrase_python.jsonl", name="rephrased", kind="synthetic")
    table = pq.read_table(ws.records_path(ws.resolve(DatasetRef("humaneval"))))
    items = bench([p or "" for p in table.column("prompt").to_pylist()],
                  [a or "" for a in table.column("answer").to_pylist()])

    copies = near_duplicates(ws, items, DatasetRef("copy"))
    best = copies.groupby("item")["jaccard"].max()
    assert len(best) == 164 and (best == 1.0).all()

    rephrased = near_duplicates(ws, items, DatasetRef("rephrased"))
    ids = record_ids(ws, "rephrased")
    own = rephrased[rephrased["record_id"] == [ids[i] for i in rephrased["item"]]]
    # Baseline (measured): no rephrased problem keeps even 0.3 of its 5-word shingles (max 0.19,
    # median 0.005 over all 164 pairs), so LSH proposes none and the stage finds 0 of 164.
    # Rephrasings are the semantic stage's job.
    assert (own["jaccard"] >= 0.5).sum() == 0
    assert not rephrased["number_substituted"].any()
