"""The embedding path on a GPU: device ``auto`` picks CUDA, vectors agree with the CPU's, the cache costs little.

Run on a machine with CUDA, from the repository root::

    python -m bench.gpu_embeddings reference --model MODEL_DIR   # on the CPU machine: writes reference.npy
    python -m bench.gpu_embeddings measure --model MODEL_DIR --batch-size 256 --size-mb 8

``reference`` embeds the first 256 windows of a small corpus on this machine
and saves them; ``measure`` (on the GPU machine) checks that ``Embedder``
chose CUDA, compares the same 256 windows with the reference (cosine), then
times ``SentenceTransformer.encode`` on the windows of ``--size-mb`` of text
against ``Embedder.encode`` (on a GPU: float16, batches of at least 512, the next batch
tokenised by a thread meanwhile) and :class:`synthscope.compute.embeddings.EmbeddingCache`
filling an empty cache and reading a full one. It prints one JSON line, with windows per
second of each path and the GPU memory the process held at most. The GPU image has no DuckDB; the
embedding path never opens a connection, so a stand-in module is used there.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

try:
    import duckdb  # noqa: F401
except ImportError:
    sys.modules["duckdb"] = types.ModuleType("duckdb")

from bench import corpus  # noqa: E402
from synthscope.compute.embeddings import Embedder, EmbeddingCache  # noqa: E402
from synthscope.core.text import record_text  # noqa: E402

SEED = 20261124


def texts(size_mb: float) -> list[str]:
    items = corpus.make_benchmark(50, SEED)
    return [record_text(r["prompt"], r["response"])
            for r in corpus.synthetic_records(int(size_mb * 1e6), items, [], SEED)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["reference", "measure"])
    parser.add_argument("--model", required=True, help="a sentence-transformers model folder")
    parser.add_argument("--reference", type=Path, default=Path("reference.npy"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size-mb", type=float, default=8.0)
    args = parser.parse_args(argv)
    model = Embedder(args.model, device="auto", batch_size=args.batch_size)
    sample = model.windows(texts(0.3), 128, 64).texts[:256]
    if args.mode == "reference":
        np.save(args.reference, model.encode(sample))
        print(json.dumps({"device": model.device, "windows": len(sample)}))
        return 0
    import torch

    out: dict[str, object] = {"device": model.device, "gpu": torch.cuda.get_device_name(0)}
    out["min_cosine_vs_reference"] = float((np.load(args.reference) * model.encode(sample)).sum(1).min())
    corpus_texts = texts(args.size_mb)
    t0 = time.perf_counter()
    windows = model.windows(corpus_texts, 128, 64).texts
    out |= {"windowing_s": time.perf_counter() - t0, "windows": len(windows),
            "mb": sum(len(t.encode()) for t in corpus_texts) / 1e6}
    model.model.encode(windows[:2048], batch_size=args.batch_size)  # warm-up
    runs: dict[str, list[float]] = {"direct_s": [], "embedder_s": [], "cache_cold_s": [], "cache_warm_s": []}
    for _ in range(2):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.model.encode(windows, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                           show_progress_bar=False)
        runs["direct_s"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.encode(windows)
        runs["embedder_s"].append(time.perf_counter() - t0)
        ws = types.SimpleNamespace(indexes_dir=Path(tempfile.mkdtemp()))
        for key in ("cache_cold_s", "cache_warm_s"):
            t0 = time.perf_counter()
            EmbeddingCache(ws, model).get(windows)  # type: ignore[arg-type]
            runs[key].append(time.perf_counter() - t0)
    out |= {f"{key[:-2]}_windows_per_s": len(windows) / min(values) for key, values in runs.items()
            if key in ("direct_s", "embedder_s")}
    out |= {"half": model.half, "batch_size": model.batch_size,
            "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20}
    print(json.dumps(out | runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
