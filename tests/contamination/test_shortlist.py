"""The semantic stage's first pass: cheap rankers choose which records the full model reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthscope.compute import static_embeddings
from synthscope.compute.embeddings import Embedder, embedder
from synthscope.contamination.semantic import SemanticConfig, chance_of_flag, semantic_neighbours, uses_first_pass
from synthscope.contamination.shortlist import TopK, shortlist
from synthscope.core.text import record_text
from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.datasets.ingest import IngestOptions, ingest

TOPICS = ["tomato gardening in raised beds", "tuning a guitar by ear", "baking sourdough bread at home",
          "the rules of cricket", "repairing a bicycle puncture", "knitting a wool scarf"]
ITEMS = pd.DataFrame({
    "item": [0, 1],
    "item_id": ["i-add", "i-capital"],
    "prompt": ["Implement a function adding two whole numbers and returning the result.",
               "What is the capital city of France?"],
    "answer": ["", ""],
})
IDS = IngestOptions(prompt_fields=("prompt",), answer_fields=("response",), id_field="id")


@pytest.fixture(scope="module")
def model() -> Embedder:
    return embedder()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    rows = [{"id": f"note{i:02d}", "prompt": f"Some notes on {TOPICS[i % len(TOPICS)]}, part {i}.", "response": ""}
            for i in range(40)]
    rows.insert(17, {"id": "add", "prompt": "Write a Python function that returns the sum of two integers.",
                     "response": "def add(a, b):\n    return a + b"})
    rows.insert(29, {"id": "paris", "prompt": "Which city is the capital of France?", "response": "Paris"})
    path = tmp_path / "syn.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ws = Workspace.init(tmp_path / "ws")
    ingest(ws, path, name="syn", kind="synthetic", options=IDS)
    return ws


def test_top_k_keeps_the_largest_scores_of_every_row_across_blocks() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(7, 230)).astype(np.float32)
    top = TopK(7, 5)
    for start in range(0, 230, 64):  # blocks, as records stream in
        top.add(scores[:, start:start + 64], start)
    for row in range(7):
        assert sorted(top.columns[row].tolist()) == sorted(np.argsort(-scores[row])[:5].tolist())
    rows, columns = top.kept(floor=1.0)
    assert (scores[rows, columns] >= 1.0).all() and len(rows) == (top.scores >= 1.0).sum()


def test_the_shortlist_holds_each_items_rephrasing_and_little_else(ws: Workspace, model: Embedder) -> None:
    items = [record_text(p, a) for p, a in zip(ITEMS["prompt"], ITEMS["answer"])]
    seen: list[tuple[int, int]] = []
    found = shortlist(items, ws.records_path(ws.resolve(DatasetRef("syn"))), model, per_item=2,
                      progress=lambda done, total, message: seen.append((done, total)))
    assert {"add", "paris"} <= set(found.record_ids)
    assert len(found.record_ids) <= 2 * 2 * len(items) and found.records == 42
    assert seen[-1] == (42, 42)


def test_with_a_shortlist_the_model_reads_fewer_records_and_ranks_alike(ws: Workspace, model: Embedder) -> None:
    encoded = model.encoded
    short = semantic_neighbours(ws, ITEMS, DatasetRef("syn"), SemanticConfig(top_k=2, shortlist=2))
    read_with_shortlist = model.encoded - encoded
    full = semantic_neighbours(ws, ITEMS, DatasetRef("syn"), SemanticConfig(top_k=2, first_pass="none"))
    assert read_with_shortlist < 20  # the items and a handful of records, not the 42 records
    best = short.groupby("item").head(1)
    assert best["record_id"].tolist() == ["add", "paris"]
    # Each item's best pair is the same pair, with the same cosine, as without the first pass.
    pd.testing.assert_frame_equal(best.reset_index(drop=True), full.groupby("item").head(1).reset_index(drop=True))


def test_the_chance_of_a_flag_does_not_depend_on_the_first_pass(ws: Workspace) -> None:
    with_first = chance_of_flag(ws, ITEMS, DatasetRef("syn"), 0.8, SemanticConfig())
    without = chance_of_flag(ws, ITEMS, DatasetRef("syn"), 0.8, SemanticConfig(first_pass="none"))
    pd.testing.assert_series_equal(with_first, without)
    assert ((with_first >= 0) & (with_first <= 1)).all()


def test_the_static_model_is_distilled_once_into_the_machines_cache(model: Embedder,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    first = static_embeddings.static_model(model)  # distilled now, or by an earlier test of this session
    folder = static_embeddings.static_dir(model)
    assert (folder / "model.safetensors").is_file() and not list(folder.parent.glob(".*.tmp"))
    static_embeddings._load.cache_clear()

    def no_distil(*args: object) -> None:
        raise AssertionError("the cached static model should have been loaded")

    monkeypatch.setattr(static_embeddings, "_distil", no_distil)
    again = static_embeddings.static_model(model)
    vectors = static_embeddings.encode(again, ["a long text " * 400, ""])
    assert vectors.shape == (2, first.dim) and vectors.dtype == np.float32
    assert np.abs(vectors[0]).sum() > 0 and np.abs(vectors[1]).sum() == 0


def test_first_pass_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="first_pass"):
        SemanticConfig(first_pass="bm25")
    with pytest.raises(ValueError, match="shortlist"):
        SemanticConfig(shortlist=0)


def test_auto_runs_the_first_pass_only_where_it_spares_the_model_work(ws: Workspace) -> None:
    syn = DatasetRef("syn")  # 42 records
    assert not uses_first_pass(ws, syn, SemanticConfig(), items=2)  # 42 <= 2 x 50 x 2: the shortlist could be it all
    assert uses_first_pass(ws, syn, SemanticConfig(shortlist=10), items=2)  # 42 > 2 x 10 x 2
    assert uses_first_pass(ws, syn, SemanticConfig(first_pass="shortlist"), items=2)
    assert not uses_first_pass(ws, syn, SemanticConfig(first_pass="none", shortlist=1), items=2)
