"""Semantic contamination: benchmark items whose meaning reappears in other words.

Rephrasings, translations and renamed identifiers share almost no n-grams or
shingles with the original; their embeddings stay close. Each synthetic record
(``record_text(prompt, answer)``) and each benchmark item is embedded in token
windows (:mod:`synthscope.compute.embeddings`: overlapping windows, never truncation), and
the score of an (item, record) pair is the best cosine between any item window
and any record window.

First pass
    Embedding every window of a corpus is the whole cost of this stage on a CPU.
    With ``first_pass = "shortlist"`` two cheap rankers (TF-IDF over words, and a
    static model distilled from the embedding model; :mod:`.shortlist`) read
    every record once, memory flat in the corpus, and keep each item's
    ``shortlist`` best records under either; the model then embeds only those
    (through the cache) into an in-memory index and scores them exactly as
    below. The default, ``"auto"``, reads a corpus of at most ``2 * shortlist``
    records per item whole (the shortlist could hold all of it): the first pass
    runs where it pays.
    Measured on the known rephrasings of HumanEval and three MMLU subjects among
    CodeAlpaca's real coding tasks, the shortlist kept all 454 pairs the model
    flags reading every record (``make bench``, "cascade at scale").
    ``first_pass = "none"`` always reads every record.

Index per dataset version (every record read)
    The record windows of a synthetic dataset version go into a FAISS index
    stored at ``indexes/faiss/<name>/<version>/<model_key>-w<window>-s<stride>/``
    as ``index.faiss`` (``faiss.write_index``, no pickles), ``windows.parquet``
    (FAISS row → ``record_id``, window number, character span in the record's
    text) and ``meta.json``. A dataset version never changes, so the index is
    built once (staged under ``tmp/``, then renamed into place) and every later
    scan, against any benchmark, only searches it. Window vectors come from the
    workspace's embedding cache, so a new version that shares most rows with an
    old one embeds only its new rows; building its index is then little more
    than reading vectors back.

    The index is exact inner product over unit vectors (``IndexFlatIP``, i.e.
    exact cosine): right up to a few million windows on one machine. Beyond that
    switch this seam to ``IndexHNSWFlat`` (no training, ~95-99 % recall@k) or
    ``IndexIVFFlat``/``IndexIVFPQ`` trained on a sample (memory-bounded, on GPU
    with ``faiss-gpu``), and re-score the top candidates exactly.

Thresholds (cosine of the best window pair; calibrated, not guessed)
    Measured with all-MiniLM-L6-v2, windows of 128 tokens every 64, on known
    rephrasings (``../shared/data/real``: LLM rephrasings of HumanEval and of
    three MMLU subjects, empty rephrasings left out) against every shuffled
    pair ``i != j``:

    * ``flag_at = 0.67``: at or above, the item is flagged ``semantic``. The
      1 %-FPR thresholds were HumanEval 0.636, MMLU abstract algebra 0.648, US
      history 0.494, sociology 0.452 (code and algebra look alike to the model
      even when unrelated). A scan compares each item with thousands of records,
      not one, so the default sits above all of them: pair FPR 0.53 % on
      HumanEval, 0.82 % on abstract algebra, <= 0.09 % on the prose subjects;
      recall 0.94 on HumanEval, 0.95 / 0.36 / 0.82 on the three subjects. At
      0.65 the demo's 3,000 unrelated coding tasks already put three false
      flags (cosines 0.651-0.657) on HumanEval items.
    * ``candidate_at = 0.50``: from here up to ``flag_at`` a pair is a
      *candidate*, handed to the judge when it runs; 0.50 is the 1 %-FPR
      threshold of the three MMLU subjects pooled (recall 0.91 there), so the
      judge sees what prose rephrasings the stricter flag misses.

    ``synthscope calibrate`` re-measures both on your own known pairs.

A record is evidence for the items it matches best
    A synthetic row that copies item A is, in embedding space, also fairly close
    to item B on the same topic; flagging B for it would be wrong. So a pair
    only flags when its cosine is within ``margin`` of the record's best cosine
    with any item (``record_best``): mutual nearest neighbours, with slack for
    a record that really does merge two items.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synthscope.compute.embeddings import DEFAULT_MODEL, Embedder, EmbeddingCache, embed, embed_blocks, embedder
from synthscope.compute.engine import Engine, LocalEngine, RowGroup, read_records, read_rows, read_table, row_groups
from synthscope.core.base import utc_now
from synthscope.core.storage import is_remote
from synthscope.core.text import record_texts
from synthscope.core.workspace import DatasetRef, Workspace, owned_name

Progress = Callable[[int, int, str], None]
COLUMNS = ["item", "record_id", "cosine", "record_best", "item_span", "record_span"]
FIRST_PASSES = ("auto", "shortlist", "none")
EMBED_BLOCK = 1024  # shortlisted records embedded (and reported) at a time


@dataclass(frozen=True)
class SemanticConfig:
    """Settings of the semantic stage.

    ``flag_at``: the best-window cosine from which an (item, record) pair flags
    the item as ``semantic`` (1 %-FPR on every calibration set; see the module
    docstring). ``candidate_at``: the lower cosine from which an undecided item's
    best pair goes to the judge (when it runs). ``margin``: a pair flags only
    within this of its record's best cosine with any item. ``window``/``stride``:
    model tokens per window and between window starts (``None``: the model's
    maximum, half a window).
    """

    model: str = DEFAULT_MODEL  # the packaged default, a local folder, or a hub id (online only)
    device: str = "auto"  # CUDA when present, else CPU
    top_k: int = 5  # records kept per item
    flag_at: float = 0.67  # best-window cosine from which a mutual-best pair is a semantic match (checked)
    candidate_at: float = 0.50  # best-window cosine from which a pair is a candidate (and the judge, if on, asked)
    likely_at: float = 0.80  # a semantic match from here counts as likely without a task-aware check
    margin: float = 0.05  # a pair flags only within this of its record's best cosine with any item
    window: int | None = 128  # tokens per window; None: the model's maximum (254 for MiniLM)
    stride: int | None = None  # tokens between window starts; None: half a window
    batch_size: int = 64
    trust_remote_code: bool = False
    first_pass: str = "auto"  # "shortlist": cheap rankers pick the records the model reads; "none": it reads all;
    # "auto": the shortlist where it can spare the model work (more records than 2 x shortlist per item)
    shortlist: int = 50  # records per item kept by each first-pass ranker

    def __post_init__(self) -> None:
        if self.first_pass not in FIRST_PASSES:
            raise ValueError(f"first_pass must be one of {', '.join(FIRST_PASSES)}, got {self.first_pass!r}")
        if self.shortlist < 1:
            raise ValueError(f"shortlist must be at least 1, got {self.shortlist}")
        # likely_at below flag_at is allowed: every match (from flag_at) then counts as likely
        if not (-1.0 <= self.candidate_at <= self.flag_at <= 1.0 and -1.0 <= self.likely_at <= 1.0):
            raise ValueError("need -1 <= candidate_at <= flag_at <= 1 and -1 <= likely_at <= 1, got "
                             f"{self.candidate_at}, {self.flag_at}, {self.likely_at}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")

    def flags(self, cosine: pd.Series, record_best: pd.Series) -> pd.Series:
        """Which pairs this stage flags (see the module docstring)."""
        return (cosine >= self.flag_at) & (cosine >= record_best - self.margin)

    def embedder(self) -> Embedder:
        return embedder(self.model, self.device, self.batch_size, self.trust_remote_code)


@dataclass
class RecordIndex:
    """A synthetic dataset version's window vectors, searchable."""

    index: object  # faiss.Index over unit vectors: inner product = cosine
    record_id: np.ndarray  # object (n,): per window, its record
    number: np.ndarray  # int64 (n,): per window, its position in the record
    spans: np.ndarray  # int64 (n, 2): per window, its characters in record_text of its record
    folder: Path | None  # where it is stored; None: built in memory for one benchmark (the first pass)

    @property
    def windows(self) -> int:
        return int(self.index.ntotal)


def index_dir(ws: Workspace, ref: DatasetRef, config: SemanticConfig) -> Path:
    """Where the FAISS index of ``ref`` (resolved to a version) under ``config``'s model and windows lives."""
    model = config.embedder()
    size, stride = model.window_size(config.window, config.stride)
    return ws.indexes_dir / "faiss" / ref.name / str(ref.version) / f"{model.model_key}-w{size}-s{stride}"


def record_index(ws: Workspace, ref: DatasetRef, config: SemanticConfig | None = None,
                 progress: Progress | None = None, engine: Engine | None = None) -> RecordIndex:
    """The FAISS index of ``ref``'s records: loaded if built before, else built (on ``engine``), stored and loaded."""
    import faiss

    config = config or SemanticConfig()
    ref = ws.resolve(ref)
    folder = index_dir(ws, ref, config)
    if not (folder / "index.faiss").exists():
        _build_index(ws, ref, config, folder, progress, engine or LocalEngine())
    elif progress:
        progress(1, 1, f"reusing the index of {ref}")
    windows = pq.read_table(folder / "windows.parquet")
    return RecordIndex(faiss.read_index(str(folder / "index.faiss")),
                       np.asarray(windows.column("record_id").to_pylist(), dtype=object),
                       windows.column("window").to_numpy().astype(np.int64),
                       np.stack([windows.column("start").to_numpy(), windows.column("end").to_numpy()],
                                axis=1).astype(np.int64).reshape(-1, 2),
                       folder)


class _EmbedRowGroup:
    """One row group's record windows and their vectors (a task for :meth:`Engine.map_model`).

    Vectors come from the workspace's embedding cache, which embeds and stores
    what it lacks (shards are append-only and uniquely named, so workers may
    write side by side). The cache is opened on first use in each process and
    not pickled with the task. A row group read from object storage (a Ray
    worker on a node without the workspace's disk) is embedded without it.
    """

    def __init__(self, ws: Workspace, config: SemanticConfig) -> None:
        self.ws, self.config = ws, config
        self._cache: EmbeddingCache | None = None

    def __getstate__(self) -> dict[str, object]:
        return {"ws": self.ws, "config": self.config, "_cache": None}

    def __call__(self, task: RowGroup) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        model = self.config.embedder()
        size, stride = model.window_size(self.config.window, self.config.stride)
        table = read_table(task, ["record_id", "prompt", "answer"])
        texts = record_texts(table.column("prompt").to_pylist(), table.column("answer").to_pylist())
        windows = model.windows(texts, size, stride)
        if not len(windows):
            vectors = np.zeros((0, model.dim), np.float32)
        elif is_remote(task.path):
            vectors = model.encode(windows.texts)
        else:
            if self._cache is None:
                self._cache = EmbeddingCache(self.ws, model)
            vectors = self._cache.get(windows.texts)
        record_ids = table.column("record_id").to_pylist()
        return [record_ids[o] for o in windows.owner], windows.number, windows.spans, vectors


def _build_index(ws: Workspace, ref: DatasetRef, config: SemanticConfig, folder: Path,
                 progress: Progress | None, engine: Engine) -> None:
    import faiss

    model = config.embedder()
    size, stride = model.window_size(config.window, config.stride)
    tasks = row_groups(ws.records_path(ref))
    total, done = sum(t.rows for t in tasks), 0
    embedded: dict[int, tuple[list[str], np.ndarray, np.ndarray, np.ndarray]] = {}
    cached_before = len(EmbeddingCache(ws, model))
    for task, result in engine.map_model(_EmbedRowGroup(ws, config), tasks):
        embedded[task.index] = result
        done += task.rows
        if progress:
            progress(done, total, f"{done}/{total} records of {ref} embedded")
    index = faiss.IndexFlatIP(model.dim)
    ids: list[str] = []
    numbers: list[np.ndarray] = []
    spans: list[np.ndarray] = []
    for number in sorted(embedded):  # row-group order, whatever order the engine finished them in
        record_ids, windows, window_spans, vectors = embedded.pop(number)
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            ids += record_ids
            numbers.append(windows)
            spans.append(window_spans)
    spans_all = np.concatenate(spans) if spans else np.zeros((0, 2), dtype=np.int64)
    meta = {"dataset": str(ref), "model": model.name, "model_key": model.model_key, "window": size,
            "stride": stride, "dim": model.dim, "records": total, "windows": int(index.ntotal),
            "windows_embedded": len(EmbeddingCache(ws, model)) - cached_before, "index": "IndexFlatIP",
            "built_at": utc_now()}
    tmp = ws.root / "tmp" / owned_name("faiss")
    tmp.mkdir(parents=True)
    try:
        faiss.write_index(index, str(tmp / "index.faiss"))
        pq.write_table(pa.table({
            "record_id": pa.array(ids, pa.string()),
            "window": pa.array(np.concatenate(numbers) if numbers else np.zeros(0, np.int64), pa.int32()),
            "start": pa.array(spans_all[:, 0], pa.int64()),
            "end": pa.array(spans_all[:, 1], pa.int64()),
        }), tmp / "windows.parquet", compression="zstd")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp.rename(folder)
        except OSError:
            if not (folder / "index.faiss").exists():  # else a concurrent build of the same index won
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def uses_first_pass(ws: Workspace, synthetic: DatasetRef, config: SemanticConfig, items: int) -> bool:
    """Whether the first pass runs: always with ``"shortlist"``, never with ``"none"``; with ``"auto"`` only when
    it can spare the model work, the corpus holding more records than the rankers could shortlist (``2 *
    shortlist`` per item). A corpus read whole goes into its stored index."""
    if config.first_pass != "auto":
        return config.first_pass == "shortlist"
    records = sum(t.rows for t in row_groups(ws.records_path(ws.resolve(synthetic))))
    return records > 2 * config.shortlist * items


def shortlisted_index(ws: Workspace, items: list[str], synthetic: DatasetRef, config: SemanticConfig,
                      progress: Progress | None = None) -> RecordIndex:
    """An in-memory index of the records the first pass shortlists for ``items`` (:mod:`.shortlist`).

    The full model embeds (through the workspace's cache) only those records' windows, so the
    cost follows the shortlist, not the corpus; the index depends on the benchmark and is not stored.
    """
    import faiss

    from synthscope.contamination.shortlist import shortlist

    ref = ws.resolve(synthetic)
    model = config.embedder()
    path = ws.records_path(ref)
    # One count of records that never goes back: those the first pass reads, then those the model embeds,
    # counted against the most it can be asked to embed until the shortlist says how many.
    most = min(pq.ParquetFile(path).metadata.num_rows, 2 * config.shortlist * len(items))
    first = (lambda done, total, message: progress(done, total + most, message)) if progress else None
    chosen = shortlist(items, path, model, config.shortlist, first)
    index = faiss.IndexFlatIP(model.dim)
    ids, numbers, spans = [], [], []
    if chosen.record_ids:
        records = read_records(path, chosen.record_ids, ["record_id", "prompt", "answer"])
        texts = record_texts(records.column("prompt").to_pylist(), records.column("answer").to_pylist())
        record_ids = records.column("record_id").to_pylist()
        blocks = embed_blocks(EmbeddingCache(ws, model), texts, config.window, config.stride, EMBED_BLOCK)
        for done, windows, vectors in blocks:
            if len(windows):
                index.add(np.ascontiguousarray(vectors, dtype=np.float32))
                ids += [record_ids[o] for o in windows.owner]
                numbers.append(windows.number)
                spans.append(windows.spans)
            if progress:
                progress(chosen.records + done, chosen.records + len(texts),
                         f"{done:,}/{len(texts):,} shortlisted records of {ref} embedded ({chosen.records:,} read)")
    if progress:
        progress(1, 1, f"the model read {len(chosen.record_ids):,} of {chosen.records:,} records of {ref}")
    return RecordIndex(index, np.asarray(ids, dtype=object),
                       np.concatenate(numbers) if numbers else np.zeros(0, np.int64),
                       np.concatenate(spans) if spans else np.zeros((0, 2), np.int64), None)


def _search(found: RecordIndex, vectors: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query window, enough nearest record windows to hold ``top_k`` distinct records.

    Searching ``top_k`` windows is not enough: one long record's several windows
    can fill the list. Start with ``8 * top_k`` and widen, for the queries that
    need it, until each list holds ``top_k`` distinct records or every window.
    Then each item's true ``top_k`` records (by best window) are in its lists.
    """
    n = found.windows
    k = min(n, 8 * top_k)
    scores, rows = found.index.search(vectors, k)
    while k < n:
        short = [q for q in range(len(rows)) if len(set(found.record_id[rows[q][rows[q] >= 0]])) < top_k]
        if not short:
            break
        k = min(n, k * 4)
        more_scores, more_rows = found.index.search(vectors[short], k)
        pad = k - scores.shape[1]
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        rows = np.pad(rows, ((0, 0), (0, pad)), constant_values=-1)
        scores[short], rows[short] = more_scores, more_rows
    return scores, rows


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                         zip(COLUMNS, ["int64", object, "float64", "float64", object, object])})


def semantic_neighbours(ws: Workspace, benchmark: pd.DataFrame, synthetic: DatasetRef,
                        config: SemanticConfig | None = None, progress: Progress | None = None,
                        engine: Engine | None = None) -> pd.DataFrame:
    """Each item's ``top_k`` synthetic records by best window cosine.

    ``benchmark`` has columns ``item`` (int), ``item_id``, ``prompt``, ``answer``;
    the records are those of ``synthetic`` (its index is built on first use).
    Returns columns ``item, record_id, cosine, record_best, item_span,
    record_span``: ``cosine`` is the best cosine between a window of the item's
    and of the record's ``record_text``, the spans (``[start, end]`` characters)
    are those two windows, and ``record_best`` is the record's best cosine with
    any item (as far as the search saw). Sorted by item, then cosine descending,
    ties by record id. Items or records with no text have no rows.
    """
    config = config or SemanticConfig()
    items = record_texts(benchmark["prompt"], benchmark["answer"])
    if uses_first_pass(ws, synthetic, config, len(items)):
        found = shortlisted_index(ws, items, synthetic, config, progress)
    else:
        found = record_index(ws, synthetic, config, progress, engine)
    if found.windows == 0 or benchmark.empty:
        return _empty()
    vectors, windows = embed(ws, config.embedder(), items, config.window, config.stride)
    if len(windows) == 0:
        return _empty()
    scores, rows = _search(found, np.ascontiguousarray(vectors, dtype=np.float32), config.top_k)
    k = rows.shape[1]
    hits = pd.DataFrame({
        "item": np.repeat(benchmark["item"].to_numpy()[windows.owner], k),
        "item_window": np.repeat(np.arange(len(windows)), k),
        "window": rows.reshape(-1), "cosine": scores.reshape(-1).astype(float),
    })
    hits = hits[hits["window"] >= 0]
    hits["record_id"] = found.record_id[hits["window"].to_numpy()]
    best = (hits.sort_values(["item", "record_id", "cosine", "item_window", "window"],
                             ascending=[True, True, False, True, True], kind="stable")
            .drop_duplicates(["item", "record_id"]))
    best["record_best"] = best.groupby("record_id")["cosine"].transform("max")
    best = (best.sort_values(["item", "cosine", "record_id"], ascending=[True, False, True], kind="stable")
            .groupby("item", sort=False).head(config.top_k))
    best["item_span"] = [windows.spans[w].tolist() for w in best["item_window"]]
    best["record_span"] = [found.spans[w].tolist() for w in best["window"]]
    return best[COLUMNS].reset_index(drop=True)


SAMPLE_BLOCK = 256  # sampled records embedded (and reported) at a time: the count moves every few seconds
NULL_SAMPLE = 2000  # records whose cosines with every item estimate the item's chance scores (as calibrated:
# the "within 1.3x" below was measured with CodeAlpaca's 2,017 records as the sample)


def chance_of_flag(ws: Workspace, benchmark: pd.DataFrame, synthetic: DatasetRef, at: float,
                   config: SemanticConfig | None = None, seed: int = 0,
                   progress: Progress | None = None) -> pd.Series:
    """Per item, the probability that chance alone gives it a record with best-window cosine ``>= at``.

    A scan compares each item with every record, so even a strict threshold is
    reached by chance somewhere in a large corpus; this says how often. The
    model is an item's own null distribution: its best-window cosines with the
    records (a sample of up to :data:`NULL_SAMPLE`; the few true twins among
    thousands barely move it) fitted by a normal ``N(mu_i, sigma_i)``, and the
    chance that the best of ``N`` records reaches ``at``:

        P_i = 1 - Phi((at - mu_i) / sigma_i) ** N

    Summed over items it is the number of flags expected by chance. Measured on
    CodeAlpaca-2k against HumanEval, where every flag was read and labelled, it
    came within 1.3x of the labelled false flags from cosine 0.67 to 0.75 and
    over-estimated above (9.8 expected, 4 found at 0.80): a cautious figure.
    Indexed by ``item``; items with no text get 0. ``progress`` counts the sampled records embedded
    (the full model embeds those the cache lacks: after a scan with the first pass, most of them).
    """
    from scipy.stats import norm

    config = config or SemanticConfig()
    out = pd.Series(0.0, index=benchmark["item"].to_numpy())
    sample, first, records = _null_sample(ws, ws.resolve(synthetic), config, seed, progress)
    if len(sample) == 0 or benchmark.empty:
        return out
    items = record_texts(benchmark["prompt"], benchmark["answer"])
    vectors, windows = embed(ws, config.embedder(), items, config.window, config.stride)
    if len(windows) == 0:
        return out
    owners = windows.owner
    item_first = np.r_[0, np.flatnonzero(owners[1:] != owners[:-1]) + 1]  # an item's windows are consecutive too
    bounds = np.r_[item_first, len(vectors)]
    best = np.empty((len(item_first), len(first)), dtype=np.float32)
    for a in range(0, len(item_first), 512):  # blocks of items bound the memory
        b = min(a + 512, len(item_first))
        scores = np.asarray(vectors[bounds[a]:bounds[b]], np.float32) @ sample.T
        per_record = np.maximum.reduceat(scores, first, axis=1)
        best[a:b] = np.maximum.reduceat(per_record, bounds[a:b] - bounds[a], axis=0)
    mu, sigma = best.mean(axis=1), best.std(axis=1).clip(min=1e-6)
    chance = 1.0 - norm.cdf((at - mu) / sigma) ** records
    item_of = benchmark["item"].to_numpy()[owners[item_first]]
    out.loc[item_of] = chance
    return out


def _null_sample(ws: Workspace, ref: DatasetRef, config: SemanticConfig, seed: int,
                 progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Window vectors of up to :data:`NULL_SAMPLE` records drawn at random, where each record's first
    window is, and the number of records in the version.

    Vectors come through the workspace's embedding cache: after a scan without the first pass they
    are all there already; with it, the sample costs :data:`NULL_SAMPLE` records of the full model.
    """
    model = config.embedder()
    tasks = row_groups(ws.records_path(ref))
    records = sum(t.rows for t in tasks)
    pick = np.sort(np.random.default_rng(seed).choice(records, min(records, NULL_SAMPLE), replace=False))
    texts: list[str] = []
    for table in read_rows(tasks, pick, ["prompt", "answer"]):
        texts += record_texts(table.column("prompt").to_pylist(), table.column("answer").to_pylist())
    parts, owned = [np.zeros((0, model.dim), np.float32)], [np.zeros(0, np.int64)]
    for done, windows, vectors in embed_blocks(EmbeddingCache(ws, model), texts, config.window, config.stride,
                                               SAMPLE_BLOCK):
        parts.append(vectors)
        owned.append(windows.owner)
        if progress:
            progress(done, len(texts), f"{done:,}/{len(texts):,} sampled records of {ref} embedded (chance scores)")
    owners = np.concatenate(owned)
    first = np.r_[0, np.flatnonzero(owners[1:] != owners[:-1]) + 1] if len(owners) else np.zeros(0, np.int64)
    return np.concatenate(parts), first.astype(np.int64), records
