"""Benchmark of MinHash signatures and of the whole near-duplicate stage, before and after batched LSH.

Run ``python -m bench.minhash_bench --out bench/reports/minhash.md`` (part of
``make bench``). In one process, on one core, timed in that process's CPU seconds (the machine may be shared):

**Signatures.** On the same documents (synthetic records of :mod:`bench.corpus`,
``record_text`` of each), with 128 permutations, it times text → signature for

(a) ``datasketch.MinHash`` per document, ``update`` once per shingle (the loop
    most code writes);
(b) ``datasketch.MinHash.bulk`` over all documents (datasketch's batch path);
(c) :func:`synthscope.algorithms.minhash.shingle_windows` + :func:`~synthscope.algorithms.minhash.signatures`
    (the near-duplicate stage's path: tokenise, hash word 5-grams, sign a batch in numpy).

Shingles are the same word 5-grams for all three: (a) and (b) get each shingle
as the UTF-8 bytes of its normalised tokens joined by spaces and hash them with
datasketch's default (SHA-1, 32 bits); (c) hashes them with the exact stage's
64-bit window hash. All timings include tokenising and shingling. It also
checks, on a sample, that (c) equals datasketch's signature computed from the
same 64-bit shingle set (``hashfunc`` = the fold (c) uses), i.e. that the speed
does not come from a different estimator.

**The whole stage.** On a generated corpus of ``--stage-mb`` (benchmark of
``--items`` items, planted copies: :func:`bench.corpus.plan_plants`), imported into a
fresh workspace, it runs the near-duplicate stage twice from an empty signature
index, side by side, and reports MB of ``record_text`` per second (one core,
:class:`~synthscope.compute.engine.LocalEngine` with one worker):

* *before* — the stage as it was (kept here only, to be measured:
  :func:`near_duplicates_before`): shingle-major signatures, number masking by
  regular expression on every text, one ``datasketch.MinHashLSH.query`` per
  record signature, one :func:`~synthscope.algorithms.minhash.jaccard` call per
  (candidate, field, record text);
* *after* — :func:`synthscope.contamination.minhash.near_duplicates`.

Each is timed as signing (:func:`~synthscope.contamination.minhash.sign_dataset`)
plus the rest (benchmark side, candidates, confirmation, ranking); the two
evidence frames must be equal cell for cell and propose the same number of
candidates.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench import corpus
from bench.ngram_bench import text_stats
from synthscope.algorithms import minhash as shingles
from synthscope.compute.engine import LocalEngine, read_table, row_groups
from synthscope.contamination import minhash as mh
from synthscope.core.text import normalize, record_text
from synthscope.core.workspace import DatasetRef, Workspace

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


# -- the whole near-duplicate stage: before (kept here only) and after -----------------------------


def _mask_all_before(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Number masking as it was: the regular expression on every text."""
    masked, numbers = [], np.zeros(len(texts), dtype=bool)
    for i, text in enumerate(texts):
        out, count = shingles._NUMBER.subn(shingles.PLACEHOLDER, normalize(text))
        masked.append(out)
        numbers[i] = count > 0
    return masked, numbers


def _signatures_before(sets: shingles.Shingles, num_perm: int, seed: int) -> np.ndarray:
    """Signatures as they were: shingle-major ``(chunk, num_perm)`` arrays reduced along axis 0 (same values)."""
    a, b = shingles.permutations(num_perm, seed)
    out = np.full((len(sets), num_perm), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    if len(sets.values) == 0:
        return out
    owner = np.repeat(np.arange(len(sets), dtype=np.int64), sets.sizes())
    mixed = shingles._fmix32(shingles.fold32(sets.values))
    for start in range(0, len(mixed), 1 << 15):
        stop = min(start + (1 << 15), len(mixed))
        permuted = mixed[start:stop, None] * a[None, :] + b[None, :]
        who = owner[start:stop]
        first = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        texts = who[first]
        out[texts] = np.minimum(out[texts], np.minimum.reduceat(permuted, first, axis=0))
    return out


@contextlib.contextmanager
def _as_before() -> Iterator[None]:
    """Signing and masking as they were, wherever the stage calls them (this process only)."""
    saved = (mh.signatures, mh._mask_all, shingles._mask_all)
    mh.signatures, mh._mask_all, shingles._mask_all = _signatures_before, _mask_all_before, _mask_all_before
    try:
        yield
    finally:
        mh.signatures, mh._mask_all, shingles._mask_all = saved


def _benchmark_before(benchmark: pd.DataFrame, config: mh.NearDuplicateConfig) -> dict[str, Any]:
    """The benchmark side as it was: per-field sets, and two ``datasketch.MinHashLSH`` filled one item at a time."""
    from datasketch import MinHash, MinHashLSH

    perms = shingles.permutations(config.num_perm, config.seed)
    plain, masked = [], []
    lshs = [MinHashLSH(num_perm=config.num_perm, params=config.bands) for _ in range(2)]
    for name in mh.FIELDS:
        texts = [t if isinstance(t, str) else "" for t in benchmark[name].tolist()]
        plain.append(shingles.shingle(texts, config.shingle))
        if config.mask_numbers:
            masked.append(shingles.shingle(texts, config.shingle, masked=True))
    at = config.stop_at(len(benchmark))
    stop_plain, stop_masked = mh.stop_shingles(plain, at), mh.stop_shingles(masked, at)
    plain = [mh.without(sets, stop_plain) for sets in plain]
    masked = [mh.without(sets, stop_masked) for sets in masked]
    for f in range(len(mh.FIELDS)):
        kinds = [(plain[f], lshs[0])] + ([(masked[f], lshs[1])] if config.mask_numbers else [])
        for field_sets, lsh in kinds:
            sigs = mh.signatures(field_sets, config.num_perm, config.seed)
            for pos in np.flatnonzero(field_sets.sizes() > 0):
                lsh.insert((int(pos), f), MinHash(seed=config.seed, hashvalues=sigs[pos], permutations=perms,
                                                  scheme="affine32"), check_duplication=False)
    return {"items": benchmark["item"].to_numpy(), "plain": plain, "masked": masked if config.mask_numbers else None,
            "lsh_plain": lshs[0], "lsh_masked": lshs[1], "stop_plain": stop_plain, "stop_masked": stop_masked}


def near_duplicates_before(ws: Workspace, benchmark: pd.DataFrame, synthetic: DatasetRef,
                           config: mh.NearDuplicateConfig) -> pd.DataFrame:
    """The near-duplicate stage as it was (signatures already signed): one ``MinHashLSH.query`` per record
    signature, then one exact Jaccard per (candidate, field, record text). Call inside :func:`_as_before`."""
    from datasketch import MinHash

    synthetic = ws.resolve(synthetic)
    bench = _benchmark_before(benchmark.reset_index(drop=True), config)
    path = mh.sign_dataset(ws, synthetic, config, engine=LocalEngine(1))
    perms = shingles.permutations(config.num_perm, config.seed)
    found: set[tuple[int, int, int, int]] = set()
    signatures = pq.ParquetFile(path, pre_buffer=False)
    for batch in signatures.iter_batches(batch_size=8192, columns=list(mh._SIGNATURE_COLUMNS)):
        sigs = mh.signature_matrix(batch.column("signature"), config.num_perm)
        groups, rows = batch.column("row_group").to_numpy(), batch.column("row").to_numpy()
        masked = batch.column("masked").to_numpy(zero_copy_only=False)
        numbers = batch.column("numbers").to_numpy(zero_copy_only=False)
        for i in range(len(sigs)):
            m = MinHash(seed=config.seed, hashvalues=sigs[i], permutations=perms, scheme="affine32")
            keys = []
            if not masked[i]:
                keys += bench["lsh_plain"].query(m)
            if config.mask_numbers and (masked[i] or not numbers[i]):
                keys += bench["lsh_masked"].query(m)
            g, r = int(groups[i]), int(rows[i])
            found.update((pos, f, g, r) for pos, f in keys)

    by_group: dict[int, dict[int, set[int]]] = {}
    for pos, _f, g, r in found:
        by_group.setdefault(g, {}).setdefault(r, set()).add(pos)
    tasks = {t.index: t for t in row_groups(ws.records_path(synthetic))}
    out: list[dict[str, Any]] = []
    for g in sorted(by_group):
        wanted = sorted(by_group[g])
        taken = read_table(tasks[g], ["record_id", "prompt", "answer"]).take(pa.array(wanted, type=pa.int64()))
        ids = taken.column("record_id").to_pylist()
        prompts = [p or "" for p in taken.column("prompt").to_pylist()]
        answers = [a or "" for a in taken.column("answer").to_pylist()]
        texts = [*prompts, *answers, *(record_text(p, a) for p, a in zip(prompts, answers))]
        n = len(wanted)
        plain = mh.without(shingles.shingle(texts, config.shingle), bench["stop_plain"])
        masked_sets = mh.without(shingles.shingle(texts, config.shingle, masked=True), bench["stop_masked"]) \
            if config.mask_numbers else None
        for j, r in enumerate(wanted):
            for pos in sorted(by_group[g][r]):
                best: tuple[float, float, str, str] = (-1.0, -1.0, "", "")
                best_masked = np.nan
                for f, field in enumerate(mh.FIELDS):
                    item_set = bench["plain"][f].of(pos)
                    if len(item_set) == 0:
                        continue
                    for s, side in enumerate(mh.RECORD_FIELDS):
                        jac = shingles.jaccard(item_set, plain.of(s * n + j))
                        mjac = np.nan
                        if masked_sets is not None and bench["masked"] is not None:
                            mjac = shingles.jaccard(bench["masked"][f].of(pos), masked_sets.of(s * n + j))
                            best_masked = mjac if np.isnan(best_masked) else max(best_masked, mjac)
                        if (jac, -1.0 if np.isnan(mjac) else mjac) > best[:2]:
                            best = (jac, -1.0 if np.isnan(mjac) else mjac, field, side)
                if best[2]:
                    out.append({"item": bench["items"][pos], "record_id": ids[j], "field": best[2],
                                "record_field": best[3], "jaccard": best[0], "masked_jaccard": best_masked})
    result = mh._rank(pd.DataFrame(out, columns=mh.OUTPUT_COLUMNS[:-1]), config)
    result.attrs["candidates"] = len({(p, g, r) for p, _, g, r in found})
    return result


def stage_corpus(root: Path, size_mb: float, items: int, seed: int) -> tuple[Workspace, pd.DataFrame]:
    """A workspace holding a generated corpus (``syn``) with planted copies of a generated benchmark (``bench``)."""
    from synthscope.datasets.ingest import ingest

    bench_items = corpus.make_benchmark(items, seed)
    corpus.write_benchmark(root / "bench.jsonl", bench_items)
    corpus.write_jsonl(root / "syn.jsonl", corpus.synthetic_records(
        int(size_mb * 1e6), bench_items, corpus.plan_plants(bench_items, seed), seed))
    ws = Workspace.init(root / "ws")
    ingest(ws, root / "bench.jsonl", name="bench", kind="benchmark")
    ingest(ws, root / "syn.jsonl", name="syn", kind="synthetic")
    table = pq.read_table(ws.records_path(ws.resolve(DatasetRef("bench"))), columns=["record_id", "prompt", "answer"])
    frame = pd.DataFrame({"item": range(table.num_rows), "item_id": table.column("record_id").to_pylist(),
                          "prompt": table.column("prompt").to_pylist(), "answer": table.column("answer").to_pylist()})
    return ws, frame


def run_stage(ws: Workspace, items: pd.DataFrame, path: str) -> tuple[pd.DataFrame, float, float, float]:
    """One pass of the stage (``path``: before or after) from an empty signature index.

    Returns the frame, the CPU seconds of signing and of the rest (this process's
    CPU time: every worker runs in it, and other load on the machine does not
    count), and the wall seconds of the whole pass.
    """
    config = mh.NearDuplicateConfig()
    ref = ws.resolve(DatasetRef("syn"))
    shutil.rmtree(ws.indexes_dir / "minhash", ignore_errors=True)
    with _as_before() if path == "before" else contextlib.nullcontext():
        wall, t0 = time.perf_counter(), time.process_time()
        mh.sign_dataset(ws, ref, config, engine=LocalEngine(1))
        t1 = time.process_time()
        if path == "before":
            frame = near_duplicates_before(ws, items, ref, config)
        else:
            frame = mh.near_duplicates(ws, items, ref, config, engine=LocalEngine(1))
        t2 = time.process_time()
    return frame, t1 - t0, t2 - t1, time.perf_counter() - wall


def timed(fn: Any, docs: list[str], repeat: int) -> list[float]:
    """CPU seconds of this process per run (all three paths are single-threaded; other load does not count)."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn(docs)
        times.append(time.process_time() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=10.0)
    parser.add_argument("--loop-mb", type=float, default=2.0, help="the per-document loop is slow: a smaller slice")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--stage-mb", type=float, default=64.0, help="corpus of the whole-stage comparison")
    parser.add_argument("--items", type=int, default=1000, help="benchmark items of the whole-stage comparison")
    parser.add_argument("--stage-repeat", type=int, default=3, help="before/after pairs of runs (median)")
    parser.add_argument("--workdir", type=Path, help="where the stage's corpus goes (default: a temporary folder)")
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
        "## MinHash signatures and the near-duplicate stage", "", "### Signatures", "",
        f"Generated by `nice .venv/bin/python -m bench.minhash_bench --size-mb {args.size_mb:g} "
        f"--stage-mb {args.stage_mb:g} --items {args.items} --stage-repeat {args.stage_repeat} --out {args.out}` "
        "(`make bench` runs it with the defaults), "
        f"{time.strftime('%Y-%m-%d %H:%M')}. Python {platform.python_version()}, numpy {np.__version__}, "
        f"datasketch {datasketch.__version__}; one core, timed in CPU seconds of the measuring process "
        "(the machine is shared: wall seconds would count other jobs).", "",
        f"**Data:** {len(docs):,} synthetic records ({mb:.1f} MB of `record_text`, mixed prose and code, "
        f"`bench/corpus.py`, seed {args.seed}); word {SHINGLE}-gram shingles of the shared normalisation; "
        f"{NUM_PERM} permutations. Every timing goes from text to signatures, tokenising and shingling included. "
        "The per-document loop runs once on a smaller slice; the others run "
        f"{args.repeat} times (median).", "",
        "| path | MB | CPU seconds (median) | MB/s | vs bulk | runs (CPU s) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, _, size, t in rows:
        lines.append(f"| {name} | {size:.1f} | {statistics.median(t):.2f} | {rates[name]:.1f} | "
                     f"{rates[name] / bulk:.2f}x | {', '.join(f'{x:.2f}' for x in t)} |")
    lines += ["", f"**Same signatures:** (c) equals datasketch's `MinHash.update_batch` over the same 64-bit "
              f"shingle hashes on the first 300 documents: {'yes, value for value' if equal else 'NO'}. "
              "(a) and (b) hash shingle strings with SHA-1 instead, so their values differ from (c)'s while "
              "estimating the same Jaccard.", ""]
    stage_lines, same = measure_stage(args)
    lines += stage_lines
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0 if equal and same else 1


def measure_stage(args: argparse.Namespace) -> tuple[list[str], bool]:
    """The whole stage before and after, alternating, on one generated corpus; the report's lines, frames equal."""
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        t0 = time.perf_counter()
        ws, items = stage_corpus(Path(tmp), args.stage_mb, args.items, args.seed)
        built = time.perf_counter() - t0
        records, mb = text_stats(ws.records_path(ws.resolve(DatasetRef("syn"))))
        runs: dict[str, list[tuple[float, float, float]]] = {"before": [], "after": []}
        frames: dict[str, pd.DataFrame] = {}
        mh.NearDuplicateConfig().bands, shingles.permutations(128, SEED)  # imports and caches out of the timing
        for _ in range(args.stage_repeat):
            for path in ("before", "after"):
                frames[path], sign_s, rest_s, wall_s = run_stage(ws, items, path)
                runs[path].append((sign_s, rest_s, wall_s))
                print(f"{path}: signing {sign_s:.2f} s, the rest {rest_s:.2f} s CPU; {wall_s:.2f} s wall", flush=True)
    try:
        pd.testing.assert_frame_equal(frames["before"], frames["after"])
        same = frames["before"].attrs["candidates"] == frames["after"].attrs["candidates"]
    except AssertionError:
        same = False
    after = frames["after"]
    flagged = int(((after["jaccard"] >= mh.NearDuplicateConfig().flag_at) | after["number_substituted"]).sum())
    median = {path: sorted(runs[path], key=lambda run: run[0] + run[1])[len(runs[path]) // 2] for path in runs}
    rate = {path: mb / (median[path][0] + median[path][1]) for path in runs}
    lines = [
        "### The whole near-duplicate stage, before and after batched LSH", "",
        f"Same command, same process: {records:,} synthetic records ({mb:.1f} MB of `record_text`, `bench/corpus.py`, "
        f"seed {args.seed}, generated and imported in {built:.0f} s, not timed) with planted copies of a generated "
        f"benchmark of {len(items):,} items; default settings (word 5-grams, 128 permutations, LSH "
        f"b x r = {'x'.join(map(str, mh.NearDuplicateConfig().bands))}, number masking on). Each pass starts from an "
        "empty signature index on one core (`LocalEngine(1)`: everything runs in the measuring process), timed "
        "as that process's CPU seconds, which other load on a shared machine does not inflate (wall seconds "
        "beside them): *signing* is `sign_dataset` (prompt and answer, plain and number-masked); *the rest* is "
        "the benchmark side, candidate generation, exact-Jaccard confirmation and ranking. Before and after "
        f"alternate, {args.stage_repeat} pair(s) of runs; the table shows the run of median total. *Before* is "
        "the stage as it was, kept in `bench/minhash_bench.py` only "
        "(`near_duplicates_before`: one `datasketch.MinHashLSH.query` per record signature, one Jaccard call per "
        "pair, shingle-major signatures, the number regex on every text).", "",
        "| path | signing (CPU s) | the rest (CPU s) | total (CPU s) | MB/s per core | vs before | "
        "runs: signing + rest (CPU s), wall (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for path in ("before", "after"):
        sign_s, rest_s, _ = median[path]
        each = "; ".join(f"{s:.2f} + {r:.2f}, {w:.2f}" for s, r, w in runs[path])
        lines.append(f"| {path} | {sign_s:.2f} | {rest_s:.2f} | {mb / rate[path]:.2f} | {rate[path]:.1f} | "
                     f"{rate[path] / rate['before']:.2f}x | {each} |")
    lines += ["", f"**Same result:** {'yes' if same else 'NO'} — the evidence frames of before and after are "
              f"equal cell for cell ({len(after):,} rows, {flagged:,} flagged) from "
              f"{after.attrs['candidates']:,} candidate (item, record) pairs in both.", ""]
    return lines, same


if __name__ == "__main__":
    raise SystemExit(main())
