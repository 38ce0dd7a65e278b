"""A static embedding model distilled from the semantic stage's model: cheap enough to read a whole corpus.

Distillation (model2vec)
    Every token of the model's vocabulary is run through the full model on its
    own; the output vector, reduced by PCA to 256 dimensions and down-weighted
    for frequent tokens (SIF, ``w = 1e-4 / (1e-4 + p(token))`` with ``p`` from
    the token's Zipf rank), becomes that token's static vector. A text's vector
    is then the mean of its tokens' vectors::

        v(text) = mean_t E[t]

    No attention, so no length limit and no windows, and on a CPU it embeds
    a corpus roughly a thousand times faster than the model it came from
    (``make bench``, "cascade at scale"). It sees which words occur, not in what
    order or sense, so it ranks rephrasings far worse than the full model: it
    may shortlist, never decide (:mod:`synthscope.contamination.shortlist`).

Cache
    Distilling reads the model once per vocabulary token (about 20 s for
    all-MiniLM-L6-v2 on 2 CPU cores) and depends on nothing but the model, so
    the result is kept in the machine's cache (:func:`synthscope.core.cache.cache_root`)
    under ``static/<model_key>-pca<dims>/`` (safetensors and JSON, no pickles),
    shared by every workspace, built in a staging folder and renamed into place.

>>> from synthscope.compute.embeddings import embedder
>>> model = static_model(embedder())                          # doctest: +SKIP
>>> encode(model, ["Return the sum of a list.", "Add up the numbers."]).shape  # doctest: +SKIP
(2, 256)
"""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from synthscope.compute.device import limit_cpu_threads
from synthscope.compute.embeddings import Embedder
from synthscope.core.cache import cache_root

PCA_DIMS = 256


def static_dir(model: Embedder, dims: int = PCA_DIMS) -> Path:
    """Where the static model distilled from ``model`` lives in the machine's cache."""
    return cache_root() / "static" / f"{model.model_key}-pca{dims}"


def static_model(model: Embedder, dims: int = PCA_DIMS) -> Any:
    """The ``model2vec.StaticModel`` distilled from ``model`` (distilled and cached on first use)."""
    return _load(str(static_dir(model, dims)), model.path, model.device, dims, model.trust_remote_code)


@functools.lru_cache(maxsize=2)
def _load(folder: str, source: str, device: str, dims: int, trust_remote_code: bool) -> Any:
    from model2vec import StaticModel

    out = Path(folder)
    if not (out / "model.safetensors").is_file():
        _distil(out, source, device, dims, trust_remote_code)
    return StaticModel.from_pretrained(out)


def _distil(out: Path, source: str, device: str, dims: int, trust_remote_code: bool) -> None:
    from model2vec.distill import distill

    if device == "cpu":
        limit_cpu_threads()
    staging = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
    try:
        distill(model_name=source, device=device, pca_dims=dims, trust_remote_code=trust_remote_code) \
            .save_pretrained(str(staging))
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(staging, out)
        except OSError:
            if not (out / "model.safetensors").is_file():  # else another process distilled it first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def encode(model: Any, texts: list[str]) -> np.ndarray:
    """float32 vectors of whole ``texts`` (no truncation; not normalised). An empty text gets a zero vector."""
    if not texts:
        return np.zeros((0, model.dim), dtype=np.float32)
    vectors = model.encode(texts, max_length=None, use_multiprocessing=False, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)
