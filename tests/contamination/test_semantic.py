"""The semantic stage: FAISS index per dataset version, reuse, cache across versions, top-k, recall on real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from synthscope.compute.embeddings import Embedder, embedder
from synthscope.contamination import semantic
from synthscope.contamination.semantic import SemanticConfig, index_dir, record_index, semantic_neighbours
from synthscope.core.text import record_text
from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.datasets.ingest import IngestOptions, ingest

ROWS = [
    {"id": "add", "prompt": "Write a Python function that returns the sum of two integers.", "response": "a + b"},
    {"id": "paris", "prompt": "Which city is the capital of France?", "response": "Paris"},
    {"id": "empty", "prompt": "", "response": ""},
    {"id": "boil", "prompt": "filler words " * 200 + "At what temperature does water boil at sea level?",
     "response": "100 degrees Celsius"},
    {"id": "sort", "prompt": "Sort a list of numbers in ascending order.", "response": "sorted(xs)"},
]
ITEMS = pd.DataFrame({
    "item": [0, 1, 2, 3],
    "item_id": ["i-add", "i-capital", "i-boil", "i-blank"],
    "prompt": ["Implement a function adding two whole numbers and returning the result.",
               "What is the capital city of France?", "What is the boiling point of water at sea level?", ""],
    "answer": ["", "", "", ""],
})


IDS = IngestOptions(prompt_fields=("prompt",), answer_fields=("response",), id_field="id")


@pytest.fixture(scope="module")
def model() -> Embedder:
    return embedder()


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    ingest(ws, _write(tmp_path / "syn.jsonl", ROWS), name="syn", kind="synthetic",
           options=IDS)
    return ws


def test_config_checks_its_thresholds() -> None:
    with pytest.raises(ValueError, match="candidate_at"):
        SemanticConfig(flag_at=0.4, candidate_at=0.5)
    with pytest.raises(ValueError, match="top_k"):
        SemanticConfig(top_k=0)
    config = SemanticConfig()
    assert config.candidate_at < config.flag_at
    flags = config.flags(pd.Series([0.9, 0.9, 0.5]), pd.Series([0.9, 0.97, 0.5]))
    assert flags.tolist() == [True, False, False]  # the second record matches another item better


def test_neighbours_rank_the_rephrasing_first_with_its_spans(ws: Workspace, model: Embedder) -> None:
    seen: list[tuple[int, int, str]] = []
    out = semantic_neighbours(ws, ITEMS, DatasetRef("syn"), SemanticConfig(top_k=2),
                              lambda done, total, message: seen.append((done, total, message)))
    assert list(out.columns) == ["item", "record_id", "cosine", "record_best", "item_span", "record_span"]
    assert seen and seen[-1][0] == seen[-1][1]
    assert all(a[0] / a[1] <= b[0] / b[1] for a, b in zip(seen, seen[1:]))  # a bar that never goes back
    assert out["item"].tolist() == [0, 0, 1, 1, 2, 2]  # the blank item has no rows
    best = out.groupby("item").head(1).set_index("item")
    assert best["record_id"].tolist() == ["add", "paris", "boil"]
    assert best.loc[1, "cosine"] > 0.9 and best.loc[0, "cosine"] > SemanticConfig().flag_at
    # Sorted by item then cosine descending; record_best is the record's best over all items.
    assert (out.groupby("item")["cosine"].diff().dropna() <= 0).all()
    assert (out["record_best"] >= out["cosine"] - 1e-9).all()
    # Spans point at the windows that matched: the long record's last window holds the question.
    texts = {r["id"]: record_text(r["prompt"], r["response"]) for r in ROWS}
    start, end = best.loc[2, "record_span"]
    assert start > 0 and end == len(texts["boil"]) and "boil" in texts["boil"][start:end]
    assert best.loc[2, "item_span"] == [0, len(ITEMS.at[2, "prompt"])]


def test_equal_scores_are_ordered_by_record_id(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    same = {"prompt": "Which city is the capital of France?", "response": "Paris"}
    ingest(ws, _write(tmp_path / "dup.jsonl", [{"id": i, **same} for i in ("c", "a", "b")]), name="dup",
           kind="synthetic", options=IDS)
    out = semantic_neighbours(ws, ITEMS.iloc[[1]], DatasetRef("dup"), SemanticConfig(top_k=3))
    assert out["record_id"].tolist() == ["a", "b", "c"] and out["cosine"].nunique() == 1


def test_the_index_is_built_once_per_version_and_reused(ws: Workspace, model: Embedder,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    config = SemanticConfig(top_k=2, first_pass="none")  # the full model reads every record: a stored index
    first = semantic_neighbours(ws, ITEMS, DatasetRef("syn"), config)
    folder = index_dir(ws, DatasetRef("syn", "v1"), config)
    assert folder.parent == ws.indexes_dir / "faiss" / "syn" / "v1"
    assert sorted(p.name for p in folder.iterdir()) == ["index.faiss", "meta.json", "windows.parquet"]
    meta = json.loads((folder / "meta.json").read_text())
    assert (meta["window"], meta["stride"], meta["records"]) == (128, 64, 5) and meta["windows"] > 4
    windows = pq.read_table(folder / "windows.parquet").to_pandas()
    assert "empty" not in set(windows["record_id"]) and (windows["record_id"] == "boil").sum() > 1
    assert list(windows.columns) == ["record_id", "window", "start", "end"]
    assert not list((ws.root / "tmp").iterdir())  # staging cleaned up

    def no_build(*args: object) -> None:
        raise AssertionError("the index should have been reused")

    monkeypatch.setattr(semantic, "_build_index", no_build)
    calls = model.calls
    again = semantic_neighbours(ws, ITEMS, DatasetRef("syn"), config)  # also by the newest version's name
    pd.testing.assert_frame_equal(first, again)
    assert model.calls == calls  # items came from the embedding cache too
    # Other windowing is another index.
    with pytest.raises(AssertionError, match="reused"):
        record_index(ws, DatasetRef("syn"), SemanticConfig(window=64, first_pass="none"))


def test_a_new_version_embeds_only_its_new_rows(ws: Workspace, tmp_path: Path, model: Embedder) -> None:
    config = SemanticConfig(top_k=2, first_pass="none")
    semantic_neighbours(ws, ITEMS, DatasetRef("syn"), config)
    new = {"id": "new", "prompt": "How many legs does a spider have?", "response": "Eight."}
    ingest(ws, _write(tmp_path / "syn2.jsonl", ROWS + [new]), name="syn", kind="synthetic",
           options=IDS)
    encoded = model.encoded
    found = record_index(ws, DatasetRef("syn", "v2"), config)
    assert model.encoded - encoded == 1  # the spider question's one window; the rest came from the cache
    assert found.folder.parent.name == "v2" and set(found.record_id) == {"add", "paris", "boil", "sort", "new"}
    assert json.loads((found.folder / "meta.json").read_text())["windows_embedded"] == 1


def test_top_k_distinct_records_even_when_one_record_fills_the_nearest_windows(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    rows = [{"id": "long", "prompt": "Which city is the capital of France? " * 300, "response": ""}]
    rows += [{"id": f"other{i}", "prompt": f"Unrelated note {i} about gardening tomatoes.", "response": ""}
             for i in range(3)]
    ingest(ws, _write(tmp_path / "long.jsonl", rows), name="long", kind="synthetic",
           options=IDS)
    config = SemanticConfig(top_k=3, window=16, first_pass="none")  # every record searched: widening needed
    assert record_index(ws, DatasetRef("long"), config).windows > 8 * config.top_k
    out = semantic_neighbours(ws, ITEMS.iloc[[1]], DatasetRef("long"), config)
    assert out["record_id"].tolist()[0] == "long" and out["record_id"].nunique() == 3


def test_empty_inputs_give_empty_frames(ws: Workspace) -> None:
    empty = semantic_neighbours(ws, ITEMS.iloc[0:0], DatasetRef("syn"))
    assert empty.empty and list(empty.columns) == semantic.COLUMNS
    assert semantic_neighbours(ws, ITEMS.iloc[[3]], DatasetRef("syn")).empty  # a blank item


# -- real data: recall on known rephrasings at a 1 % false-positive rate -----------------------------

MMLU = ("abstract_algebra", "high_school_us_history", "sociology")


def recall_at_fpr(scores: np.ndarray, fpr: float = 0.01) -> tuple[float, float, float]:
    """(recall, threshold, fpr): the lowest threshold whose false-positive rate on the shuffled pairs is <= ``fpr``.

    ``scores[i, j]`` scores item i against record j; row i of the records rephrases item i.
    """
    n = len(scores)
    pos = np.diag(scores)
    neg = np.sort(scores[~np.eye(n, dtype=bool)])[::-1]
    threshold = float(np.nextafter(neg[int(fpr * len(neg))], 1.0))
    return float((pos >= threshold).mean()), threshold, float((neg >= threshold).mean())


def pair_scores(ws: Workspace, benchmark: str, synthetic: str, config: SemanticConfig) -> np.ndarray:
    """The stage's score of every (item, record) pair, rephrasings with no text left out as records."""
    records = pq.read_table(ws.records_path(DatasetRef(benchmark)), columns=["record_id", "prompt", "answer"])
    bench = records.to_pandas().fillna("")
    bench = pd.DataFrame({"item": range(len(bench)), "item_id": bench["record_id"], "prompt": bench["prompt"],
                          "answer": bench["answer"]})
    syn = pq.read_table(ws.records_path(DatasetRef(synthetic)), columns=["record_id", "prompt"]).to_pandas()
    kept = syn["prompt"].fillna("").str.strip() != ""
    out = semantic_neighbours(ws, bench, DatasetRef(synthetic), config.__class__(**{**config.__dict__,
                                                                                   "top_k": len(syn)}))
    column = {rid: j for j, rid in enumerate(syn["record_id"])}
    scores = np.full((len(bench), len(syn)), -1.0)
    scores[out["item"].to_numpy(), out["record_id"].map(column).to_numpy()] = out["cosine"].to_numpy()
    keep = np.flatnonzero(kept.to_numpy())
    return scores[np.ix_(keep, keep)]  # rephrasing j of item j, for the non-empty ones


@pytest.fixture(scope="module")
def real_scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    from tests.conftest import REAL_DATA

    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not present at {REAL_DATA} (it is in CI; a user's machine does not have it)")
    ws = Workspace.init(tmp_path_factory.mktemp("semantic-real") / "ws")
    config = SemanticConfig(first_pass="none")  # the model's own recall: every pair scored
    ingest(ws, REAL_DATA / "humaneval_test.jsonl", name="humaneval", kind="benchmark")
    ingest(ws, REAL_DATA / "humaneval_rephrase_python.jsonl", name="humaneval-rephrased", kind="synthetic")
    out = {"humaneval": pair_scores(ws, "humaneval", "humaneval-rephrased", config)}
    for subject in MMLU:
        ingest(ws, REAL_DATA / f"mmlu_{subject}_test.csv", name=f"mmlu-{subject}", kind="benchmark",
               options=IngestOptions(preset="mmlu"))
        ingest(ws, REAL_DATA / f"mmlu_{subject}_rephrase_english.jsonl", name=f"mmlu-{subject}-rephrased",
               kind="synthetic")
        out[subject] = pair_scores(ws, f"mmlu-{subject}", f"mmlu-{subject}-rephrased", config)
    return out


@pytest.mark.realdata
def test_recall_on_real_rephrasings_at_one_percent_fpr(real_scores: dict[str, np.ndarray]) -> None:
    # Rephrasings with no text (HumanEval 17 of 164; MMLU 4, 12, 4) are no evidence of anything: left out.
    assert [len(real_scores[k]) for k in ("humaneval", *MMLU)] == [147, 96, 192, 197]
    recall, threshold, fpr = recall_at_fpr(real_scores["humaneval"])
    assert recall >= 0.97 and fpr <= 0.01 and 0.60 < threshold < 0.66  # measured 0.973 at 0.636
    # MMLU pooled: each subject's shuffled pairs stay within the subject.
    pos = np.concatenate([np.diag(real_scores[s]) for s in MMLU])
    neg = np.concatenate([real_scores[s][~np.eye(len(real_scores[s]), dtype=bool)] for s in MMLU])
    threshold = float(np.nextafter(np.sort(neg)[::-1][int(0.01 * len(neg))], 1.0))
    recall = float((pos >= threshold).mean())
    assert recall >= 0.90 and (neg >= threshold).mean() <= 0.01 and 0.48 < threshold < 0.53  # measured 0.911 at 0.510
    # Long US-history passages are what windows are for (truncated whole texts: 0.45 recall).
    assert recall_at_fpr(real_scores["high_school_us_history"])[0] >= 0.80


@pytest.mark.realdata
def test_default_thresholds_hold_their_false_positive_budget(real_scores: dict[str, np.ndarray]) -> None:
    config = SemanticConfig()
    for name, scores in real_scores.items():
        negatives = scores[~np.eye(len(scores), dtype=bool)]
        assert (negatives >= config.flag_at).mean() <= 0.01, name
    assert (np.diag(real_scores["humaneval"]) >= config.flag_at).mean() >= 0.93  # measured 0.939
    pos = np.concatenate([np.diag(real_scores[s]) for s in MMLU])
    assert (pos >= config.candidate_at).mean() >= 0.90  # the judge sees most of what flag_at leaves
