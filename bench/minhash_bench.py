"""Benchmark of MinHash signatures: :mod:`synthscope.contamination.minhash` against datasketch.

Run ``python -m bench.minhash_bench --out bench/reports/minhash.md`` (part of
``make bench``). In one process, on the same documents (synthetic records of
:mod:`bench.corpus`, ``record_text`` of each), with 128 permutations, it times
text → signature for

(a) ``datasketch.MinHash`` per document, ``update`` once per shingle (the loop
    most code writes);
(b) ``datasketch.MinHash.bulk`` over all documents (datasketch's batch path);
(c) :func:`synthscope.contamination.shingles.shingle_windows` + :func:`~synthscope.contamination.shingles.signatures`
    (the near-duplicate stage's path: tokenise, hash word 5-grams, sign a batch in numpy).

Shingles are the same word 5-grams for all three: (a) and (b) get each shingle
as the UTF-8 bytes of its normalised tokens joined by spaces and hash them with
datasketch's default (SHA-1, 32 bits); (c) hashes them with the exact stage's
64-bit window hash. All timings include tokenising and shingling. One core
(numpy and datasketch are single-threaded here). It also checks, on a sample,
that (c) equals datasketch's signature computed from the same 64-bit shingle
set (``hashfunc`` = the fold (c) uses), i.e. that the speed does not come
from a different estimator.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import corpus
from synthscope.algorithms import minhash as shingles
from synthscope.core.text import record_text

NUM_PERM, SHINGLE, SEED = 128, 5, 1


def documents(size_mb: float, seed: int) -> list[str]:
    items = corpus.make_benchmark(50, seed)
    rows = corpus.synthetic_records(int(size_mb * 1e6), items, [], seed)
    return [record_text(r["prompt"], r["response"]) for r in rows]


def shingle_bytes(text: str) -> list[bytes]:
    from synthscope.core.text import tokenize

    tokens = tokenize(text)
    return [" ".join(tokens[i:i + SHINGLE]).encode() for i in range(len(tokens) - SHINGLE + 1)]


def run_update_loop(docs: list[str]) -> np.ndarray:
    from datasketch import MinHash

    out = []
    for doc in docs:
        m = MinHash(num_perm=NUM_PERM, seed=SEED)
        for s in shingle_bytes(doc):
            m.update(s)
        out.append(m.hashvalues)
    return np.array(out)


def run_bulk(docs: list[str]) -> np.ndarray:
    from datasketch import MinHash

    sketches = MinHash.bulk([shingle_bytes(d) for d in docs], num_perm=NUM_PERM, seed=SEED)
    return np.array([m.hashvalues for m in sketches])


def run_ours(docs: list[str]) -> np.ndarray:
    # The stage's path: every window hash in text order; a repeated shingle cannot change a minimum,
    # so the sets need no de-duplication before signing.
    return shingles.signatures(shingles.shingle_windows(docs, SHINGLE), NUM_PERM, SEED)


def same_as_datasketch(docs: list[str]) -> bool:
    """(c) equals datasketch fed the same 64-bit shingle hashes through the same fold."""
    from datasketch import MinHash

    sets = shingles.shingle(docs, SHINGLE)
    ours = run_ours(docs)
    for i in range(len(docs)):
        values = sets.of(i)
        m = MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=lambda v: int(v))
        if len(values):
            m.update_batch(shingles.fold32(np.asarray(values)).tolist())
        if not np.array_equal(m.hashvalues.astype(np.uint32), ours[i]):
            return False
    return True


def timed(fn: Any, docs: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(docs)
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=10.0)
    parser.add_argument("--loop-mb", type=float, default=2.0, help="the per-document loop is slow: a smaller slice")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--out", type=Path, default=Path("bench/reports/minhash.md"))
    args = parser.parse_args(argv)
    import datasketch

    docs = documents(args.size_mb, args.seed)
    mb = sum(len(d.encode()) for d in docs) / 1e6
    loop_docs, loop_mb = [], 0.0
    for d in docs:
        if loop_mb >= args.loop_mb:
            break
        loop_docs.append(d)
        loop_mb += len(d.encode()) / 1e6
    run_ours(docs[:50])  # import and first-call costs out of the timing
    rows = [("datasketch MinHash.update per shingle (a)", loop_docs, loop_mb, timed(run_update_loop, loop_docs, 1)),
            ("datasketch MinHash.bulk (b)", docs, mb, timed(run_bulk, docs, args.repeat)),
            ("synthscope shingles.signatures (c)", docs, mb, timed(run_ours, docs, args.repeat))]
    rates = {name: size / statistics.median(t) for name, _, size, t in rows}
    bulk = rates["datasketch MinHash.bulk (b)"]
    equal = same_as_datasketch(docs[:300])
    lines = [
        "## MinHash signatures (near-duplicate stage)", "",
        f"Generated by `.venv/bin/python -m bench.minhash_bench --out {args.out}` (part of `make bench`), "
        f"{time.strftime('%Y-%m-%d %H:%M')}. Python {platform.python_version()}, numpy {np.__version__}, "
        f"datasketch {datasketch.__version__}; one core.", "",
        f"**Data:** {len(docs):,} synthetic records ({mb:.1f} MB of `record_text`, mixed prose and code, "
        f"`bench/corpus.py`, seed {args.seed}); word {SHINGLE}-gram shingles of the shared normalisation; "
        f"{NUM_PERM} permutations. Every timing goes from text to signatures, tokenising and shingling included. "
        "The per-document loop runs once on a smaller slice; the others run "
        f"{args.repeat} times (median).", "",
        "| path | MB | seconds (median) | MB/s | vs bulk | runs (s) |", "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, _, size, t in rows:
        lines.append(f"| {name} | {size:.1f} | {statistics.median(t):.2f} | {rates[name]:.1f} | "
                     f"{rates[name] / bulk:.2f}x | {', '.join(f'{x:.2f}' for x in t)} |")
    lines += ["", f"**Same signatures:** (c) equals datasketch's `MinHash.update_batch` over the same 64-bit "
              f"shingle hashes on the first 300 documents: {'yes, value for value' if equal else 'NO'}. "
              "(a) and (b) hash shingle strings with SHA-1 instead, so their values differ from (c)'s while "
              "estimating the same Jaccard.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
