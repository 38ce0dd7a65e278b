"""The semantic stage's first pass: which records the full embedding model needs to read at all.

Embedding every window of a corpus with the full model is the whole cost of the
semantic stage on a CPU (about 50 windows a second on 2 cores). Almost every
record is far from every benchmark item, and two cheap rankers can say which:

* **lexical** — TF-IDF cosine over words and word pairs, the IDF learned from the
  benchmark's items (a word every item uses, ``def`` or ``return``, weighs
  nothing; ``palindrome`` weighs a lot), term frequency sublinear
  (``1 + log tf``). Rephrasings keep their content words: the measured best ranker.
* **static** — cosine of the static model distilled from the full one
  (:mod:`synthscope.compute.static_embeddings`), both sides centred on the mean
  item vector (a static model puts every text in one narrow cone; centring
  spreads the benchmark's own topics apart). It finds what shares meaning but no words.

A record is **shortlisted for an item** when it is among the item's
``per_item`` best records under either ranker and its score there reaches that
ranker's floor (:data:`LEXICAL_FLOOR`, :data:`STATIC_FLOOR`: below them no known
rephrasing that the full model flags was seen). The full model then embeds only
the shortlisted records and scores them exactly as it would have without the
first pass (:func:`synthscope.contamination.semantic.semantic_neighbours`).

Memory is flat in the corpus: records stream by row group and only
``items x per_item`` scores per ranker are kept.

Measured (``make bench``, "cascade at scale"): on the known rephrasings of
HumanEval and three MMLU subjects among CodeAlpaca's 2,017 real coding tasks,
the shortlist kept all 454 pairs the model flags when it reads every record
(``per_item`` = 50). Per record, the first pass costs about 200x less than the
model on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthscope.compute.embeddings import Embedder
from synthscope.compute.engine import read_rows, read_table, row_groups
from synthscope.compute.static_embeddings import encode, static_model
from synthscope.core.text import record_texts

Progress = Callable[[int, int, str], None]
LEXICAL_FLOOR = 0.03  # TF-IDF cosine; the flagged known rephrasings measured 0.043 and up
STATIC_FLOOR = 0.03  # centred static cosine; the flagged known rephrasings measured 0.047 and up
BLOCK = 4096  # records scored at once: items x BLOCK floats per ranker


class TopK:
    """Per row (item), the ``k`` largest scores seen so far and the columns (records) they came from."""

    def __init__(self, rows: int, k: int) -> None:
        self.k = k
        self.scores = np.full((rows, 0), -np.inf, dtype=np.float32)
        self.columns = np.zeros((rows, 0), dtype=np.int64)

    def add(self, scores: np.ndarray, first_column: int) -> None:
        """Merge a block of scores whose column ``j`` is overall column ``first_column + j``."""
        columns = np.broadcast_to(np.arange(first_column, first_column + scores.shape[1]), scores.shape)
        merged = np.concatenate([self.scores, scores.astype(np.float32, copy=False)], axis=1)
        merged_columns = np.concatenate([self.columns, columns], axis=1)
        if merged.shape[1] > self.k:
            keep = np.argpartition(-merged, self.k - 1, axis=1)[:, :self.k]
            merged = np.take_along_axis(merged, keep, axis=1)
            merged_columns = np.take_along_axis(merged_columns, keep, axis=1)
        self.scores, self.columns = merged, merged_columns

    def kept(self, floor: float) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, columns)`` of the kept scores at or above ``floor``."""
        rows, slots = np.nonzero(self.scores >= floor)
        return rows, self.columns[rows, slots]


@dataclass
class Shortlist:
    """What the first pass sends to the full model."""

    record_ids: list[str]  # shortlisted records, in corpus order
    pairs: int  # shortlisted (item, record) pairs, both rankers together
    records: int  # records read


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


class Rankers:
    """Both first-pass rankers, fitted on a benchmark's item texts."""

    def __init__(self, items: list[str], model: Embedder) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b",
                                     dtype=np.float32)
        self.lexical_items = self.tfidf.fit_transform(items) if any(t.strip() for t in items) else None
        self.static = static_model(model)
        vectors = encode(self.static, items)
        self.centre = vectors.mean(axis=0) if len(vectors) else np.zeros(self.static.dim, np.float32)
        self.static_items = _unit(vectors - self.centre)

    def lexical(self, texts: list[str]) -> np.ndarray:
        """items x texts TF-IDF cosines."""
        if self.lexical_items is None:
            return np.zeros((0, len(texts)), dtype=np.float32)
        return np.asarray((self.lexical_items @ self.tfidf.transform(texts).T).todense(), dtype=np.float32)

    def semantic(self, texts: list[str]) -> np.ndarray:
        """items x texts centred static cosines."""
        return self.static_items @ _unit(encode(self.static, texts) - self.centre).T


def shortlist(items: list[str], records: Path, model: Embedder, per_item: int,
              progress: Progress | None = None) -> Shortlist:
    """The records of ``records`` (a dataset version's records file) the full model must score for ``items``."""
    rankers = Rankers(items, model)
    lexical, static = TopK(len(items), per_item), TopK(len(items), per_item)
    tasks = row_groups(records)
    total = sum(t.rows for t in tasks)
    read = 0
    for task in tasks:
        table = read_table(task, ["prompt", "answer"])
        texts = record_texts(table.column("prompt").to_pylist(), table.column("answer").to_pylist())
        for start in range(0, len(texts), BLOCK):
            block = texts[start:start + BLOCK]
            if rankers.lexical_items is not None:
                lexical.add(rankers.lexical(block), read + start)
            static.add(rankers.semantic(block), read + start)
        read += len(texts)
        if progress:
            progress(read, total, f"first pass: {read:,}/{total:,} records read")
    lex_items, lex_records = lexical.kept(LEXICAL_FLOOR)
    sta_items, sta_records = static.kept(STATIC_FLOOR)
    pairs = np.unique(np.stack([np.r_[lex_items, sta_items], np.r_[lex_records, sta_records]]), axis=1)
    ids = [i for t in read_rows(tasks, np.unique(pairs[1]), ["record_id"]) for i in t.column("record_id").to_pylist()]
    return Shortlist(ids, pairs.shape[1], read)
