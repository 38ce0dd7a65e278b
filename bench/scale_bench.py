"""Team-scale benchmark: local vs Ray engine, scaling of each stage, and the peers on the same data.

Run ``python -m bench.scale_bench --out bench/reports/scale.md`` (part of ``make bench``). In one run it

1. **Same verdicts, local and Ray** — scans the demo workspace (all three stages)
   and a generated corpus of ``--size-mb`` (1 GB by default; exact and MinHash
   stages: embedding a gigabyte on two CPU cores would take a day) once with
   :class:`~synthscope.compute.engine.LocalEngine` and once with a Ray cluster started on
   this machine (``num_cpus=2``), each from empty indexes, and compares the
   verdict and evidence frames cell by cell;
2. **Scaling** — times each stage alone on one core at 1x, 2x and 4x corpus
   size (each size a prefix of the next) with its peak memory: exact n-grams
   and MinHash from ``--scale-mb``, embeddings from ``--semantic-mb``;
3. **Peers** — on the first ``--peer-mb`` of the corpus: datatrove's n-gram
   decontamination filter, lm-eval's janitor (its Python path, and its C++
   helper when built, see :mod:`bench.peers`), datasketch's per-document
   MinHash loop and its bulk API, beside our exact stage and our signatures,
   one core each.

Every scan runs in a fresh subprocess (:func:`bench.ngram_bench.measure_command`:
seconds exclude interpreter start-up; peak RSS is the summed RSS of the process
tree — Ray's raylet and workers included — sampled every 20 ms).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from bench import corpus
from bench.ngram_bench import machine, measure_command, peak_rss_mb, text_stats
from synthscope.core.text import record_text
from synthscope.core.workspace import DatasetRef, Workspace

BENCHMARK = "bench"
DEMO_PAIR = ("humaneval", "code-instruct@v1")
CACHED = ("minhash", "faiss", "embeddings")  # index folders a measured run must not find


# -- data ------------------------------------------------------------------------------


def build_corpus(root: Path, sizes: dict[str, float], peer_mb: float, items: int, seed: int) -> dict[str, Any]:
    """One deterministic stream of synthetic records (:mod:`bench.corpus`), imported as one dataset per size.

    ``sizes`` maps dataset name to MB; each dataset is a prefix of the stream, so a
    larger one holds a smaller one. Also returns the first ``peer_mb`` of documents
    (``record_text``) for the peers, and the benchmark items.
    """
    from synthscope.datasets.ingest import ingest

    t0 = time.perf_counter()
    bench_items = corpus.make_benchmark(items, seed)
    plants = corpus.plan_plants(bench_items, seed)
    src = root / "src"
    src.mkdir(parents=True)
    corpus.write_benchmark(src / f"{BENCHMARK}.jsonl", bench_items)
    limits = {name: int(mb * 1e6) for name, mb in sizes.items()}
    files = {name: open(src / f"{name}.jsonl", "w", encoding="utf-8") for name in limits}  # noqa: SIM115
    docs: list[str] = []
    written = 0
    try:
        for row in corpus.synthetic_records(max(limits.values()), bench_items, plants, seed):
            line = json.dumps(row, ensure_ascii=False) + "\n"
            for name, limit in limits.items():
                if written < limit:
                    files[name].write(line)
            text = record_text(row["prompt"], row["response"])
            if written < peer_mb * 1e6:
                docs.append(text)
            written += len(text.encode("utf-8"))
    finally:
        for fh in files.values():
            fh.close()
    generated = time.perf_counter() - t0
    t0 = time.perf_counter()
    ws = Workspace.init(root / "ws")
    ingest(ws, src / f"{BENCHMARK}.jsonl", name=BENCHMARK, kind="benchmark")
    for name in limits:
        ingest(ws, src / f"{name}.jsonl", name=name, kind="synthetic")
    ingested = time.perf_counter() - t0
    shutil.rmtree(src)
    return {"ws": ws, "items": bench_items, "docs": docs, "generate_s": generated, "ingest_s": ingested}


def clear_indexes(ws: Workspace) -> None:
    for name in CACHED:
        shutil.rmtree(ws.indexes_dir / name, ignore_errors=True)


# -- children: one measured run each ---------------------------------------------------------


def child_scan(workspace: Path, benchmark: str, synthetic: str, engine_name: str, workers: int,
               stages: list[str], frames_out: Path) -> None:
    """A whole scan on ``engine_name`` from empty indexes; writes its frames, prints its measurements."""
    from synthscope.compute.engine import RayEngine, engine_from
    from synthscope.contamination.scan import config_from, run_scan

    ws = Workspace.open(workspace)
    clear_indexes(ws)
    engine = engine_from(engine_name, workers=workers)
    t0 = time.perf_counter()
    if isinstance(engine, RayEngine):
        engine._connect()  # the cluster's start, timed apart: a running cluster (--address) does not pay it
    started = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary = run_scan(ws, DatasetRef.parse(benchmark), [DatasetRef.parse(synthetic)],
                       config_from(ws, {"stages": stages}), engine=engine)
    seconds = time.perf_counter() - t0
    folder = ws.scans_dir / summary.scan_id
    frames_out.mkdir(parents=True, exist_ok=True)
    for name in ("verdicts", "evidence"):
        pd.read_parquet(folder / f"{name}.parquet").drop(columns="scan_id").to_parquet(frames_out / f"{name}.parquet")
    print(json.dumps({"seconds": seconds, "start_s": started, "maxrss_mb": peak_rss_mb()}))


def child_stage(workspace: Path, synthetic: str, stage: str) -> None:
    """One stage's pass over the records, alone, from empty indexes, on one core.

    exact: the whole exact scan; near_duplicate: the whole stage (signing, LSH,
    confirmation); semantic: building the records' FAISS index (windowing,
    embedding, index) — the part that grows with the corpus; the model is loaded
    before the timing and runs on torch's threads.
    """
    from synthscope.compute.engine import LocalEngine
    from synthscope.contamination.minhash import near_duplicates
    from synthscope.contamination.ngram import NgramConfig
    from synthscope.contamination.scan import run_scan
    from synthscope.contamination.semantic import SemanticConfig, record_index

    ws = Workspace.open(workspace)
    clear_indexes(ws)
    bench = DatasetRef(BENCHMARK)
    if stage == "semantic":
        SemanticConfig().embedder().encode(["warm up"])
    t0 = time.perf_counter()
    if stage == "exact":
        run_scan(ws, bench, [DatasetRef(synthetic)], NgramConfig(), workers=1)
    elif stage == "near_duplicate":
        table = pq.read_table(ws.records_path(ws.resolve(bench)), columns=["record_id", "prompt", "answer"])
        items = pd.DataFrame({"item": range(table.num_rows), "item_id": table.column("record_id").to_pylist(),
                              "prompt": table.column("prompt").to_pylist(),
                              "answer": table.column("answer").to_pylist()})
        near_duplicates(ws, items, DatasetRef(synthetic), engine=LocalEngine(1))
    else:
        record_index(ws, DatasetRef(synthetic), engine=LocalEngine(1))
    print(json.dumps({"seconds": time.perf_counter() - t0, "maxrss_mb": peak_rss_mb()}))


def _child(args: list[str], label: str) -> dict[str, Any]:
    return measure_command([sys.executable, "-m", "bench.scale_bench", *args], label)


# -- the three parts ---------------------------------------------------------------------------


def compare_engines(workspace: Path, benchmark: str, synthetic: str, stages: list[str], workers: int,
                    scratch: Path) -> dict[str, Any]:
    """Scan with both engines (fresh indexes each); the frames must be equal."""
    runs = {}
    for engine in ("local", "ray"):
        runs[engine] = _child(["--child", "scan", "--workspace", str(workspace), "--benchmark", benchmark,
                               "--synthetic", synthetic, "--engine", engine, "--workers", str(workers),
                               "--stages", *stages, "--frames-out", str(scratch / engine)], f"{engine} scan")
    differences = []
    for name, keys in (("verdicts", ["item"]), ("evidence", ["item", "record_id"])):
        local, ray = (pd.read_parquet(scratch / e / f"{name}.parquet").sort_values(keys).reset_index(drop=True)
                      for e in ("local", "ray"))
        try:
            pd.testing.assert_frame_equal(local, ray)
        except AssertionError as e:
            differences.append(f"{name}: {str(e).splitlines()[0]}")
        runs[f"{name}_rows"] = len(local)
        if name == "verdicts":
            runs["contaminated"] = int((local["verdict"] != "clean").sum())
    runs["differences"] = differences
    return runs


def scaling(workspace: Path, names: list[str], stage: str, repeat: int) -> list[dict[str, Any]]:
    rows = []
    ws = Workspace.open(workspace)
    for name in names:
        runs = [_child(["--child", "stage", "--workspace", str(workspace), "--synthetic", name, "--stage", stage],
                       f"{stage} on {name}") for _ in range(repeat)]
        records, mb = text_stats(ws.records_path(ws.resolve(DatasetRef(name))))
        rows.append({"stage": stage, "dataset": name, "records": records, "mb": mb,
                     "seconds": statistics.median(r["seconds"] for r in runs),
                     "rss_mb": max(r["tree_rss_mb"] for r in runs),
                     "other_load_s": max(r["other_load_s"] for r in runs)})
    return rows


def peers(items: list[corpus.Item], docs: list[str], workspace: Path, peer_name: str,
          loop_mb: float) -> list[dict[str, Any]]:
    """The peers and our two paths on the same documents, one core each: MB/s and what each flags."""
    from bench import minhash_bench
    from bench import peers as peer_tools

    mb = sum(len(d.encode("utf-8")) for d in docs) / 1e6
    pairs = [(it.question, it.answer) for it in items]
    rows: list[dict[str, Any]] = []
    ours = _child(["--child", "stage", "--workspace", str(workspace), "--synthetic", peer_name, "--stage", "exact"],
                  "exact stage on the peer slice")
    rows.append({"what": "n-grams", "tool": "synthscope exact stage (run_scan, 1 worker)", "mb": mb,
                 "seconds": ours["seconds"], "note": "13/8-gram coverage of every benchmark field"})
    for name, run in (("datatrove NGramsDecontFilter", lambda: peer_tools.datatrove_decont(pairs, docs, n=13)),
                      ("lm-eval janitor, Python", lambda: peer_tools.lmeval_janitor(pairs, docs, n=13)),
                      ("lm-eval janitor, C++ helper", lambda: peer_tools.lmeval_janitor(pairs, docs, n=13,
                                                                                          path="C++"))):
        try:
            result = run()
        except Exception as e:  # a peer that cannot run here is reported, not fatal
            rows.append({"what": "n-grams", "tool": name, "mb": mb, "seconds": float("nan"),
                         "note": f"not run: {e}"})
            continue
        note = f"flags {len(result.flagged)} documents"
        if result.failed:
            note += f"; raised on {len(result.failed)} documents and {result.failed_items} items (not flagged)"
        rows.append({"what": "n-grams", "tool": f"{name} ({result.tool} {result.version})", "mb": result.mb,
                     "seconds": result.seconds, "note": note})
    loop_docs, size = [], 0.0
    for d in docs:
        if size >= loop_mb:
            break
        loop_docs.append(d)
        size += len(d.encode("utf-8")) / 1e6
    minhash_bench.run_ours(docs[:50])  # first-call costs out of the timing
    for name, fn, chosen, chosen_mb in (
            ("datasketch MinHash.update per document", minhash_bench.run_update_loop, loop_docs, size),
            ("datasketch MinHash.bulk", minhash_bench.run_bulk, docs, mb),
            ("synthscope minhash.signatures", minhash_bench.run_ours, docs, mb)):
        t0 = time.perf_counter()
        fn(chosen)
        rows.append({"what": "MinHash signatures", "tool": name, "mb": chosen_mb,
                     "seconds": time.perf_counter() - t0, "note": "word 5-grams, 128 permutations"})
    return rows


# -- report ----------------------------------------------------------------------------------


def _engine_line(label: str, result: dict[str, Any]) -> str:
    local, ray = result["local"], result["ray"]
    same = "identical" if not result["differences"] else "DIFFERENT: " + "; ".join(result["differences"])
    return (f"| {label} | {result['verdicts_rows']:,} | {result['evidence_rows']:,} | {result['contaminated']:,} "
            f"| {local['seconds']:.1f} | {ray['seconds']:.1f} (+{ray['start_s']:.1f} cluster start) "
            f"| {local['tree_rss_mb']:.0f} | {ray['tree_rss_mb']:.0f} | {same} |")


def write_report(out: Path, argv: list[str], info: dict[str, Any], demo: dict[str, Any] | None,
                 big: dict[str, Any], big_mb: float, scale_rows: list[dict[str, Any]],
                 peer_rows: list[dict[str, Any]]) -> str:
    m = machine()
    import ray

    lines = [
        "## Team scale: the Ray engine, scaling, and the peers", "",
        "Generated by", "", "```", " ".join([".venv/bin/python", "-m", "bench.scale_bench", *argv]), "```", "",
        f"(part of `make bench`). Run at {time.strftime('%Y-%m-%d %H:%M')}. **Machine:** {m['cores']} cores "
        f"({m['cpu']}), {m['ram']} RAM; Python {m['python']}, Ray {ray.__version__}.", "",
        f"**Data:** `bench/corpus.py` (seed {info['seed']}): {info['n_items']} benchmark items and one stream of "
        "synthetic records (prose, code-like lines, ~5 % non-ASCII, a planted copy of a benchmark item every 50 "
        "records), generated in "
        f"{info['generate_s']:.0f} s and imported with `synthscope.ingest` in {info['ingest_s']:.0f} s; each "
        "size below is a prefix of the same stream. MB = 10^6 bytes of `record_text` of every record.", "",
        "### Local and Ray engines give the same verdicts", "",
        "Each scan runs in a fresh process from empty indexes (MinHash signatures, FAISS index and embedding "
        "cache removed). The Ray cluster is started on this machine by the scan (`num_cpus=2`); its start is "
        "timed apart, since a scan against a running cluster (`--address`) does not pay it. Peak RSS is the whole "
        "process tree (Ray's GCS, raylet and workers included). *Same?* compares the verdict and evidence "
        "frames cell by cell (every column, float equality to pandas' default tolerance).", "",
        "| scan | verdict rows | evidence rows | contaminated | local s (2 workers) | Ray s | local peak RSS "
        "(MB) | Ray peak RSS (MB) | same? |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    if demo:
        lines.append(_engine_line(f"demo: {DEMO_PAIR[0]} vs {DEMO_PAIR[1]}, all three stages", demo))
    lines.append(_engine_line(f"{big_mb:,.0f} MB corpus, exact + MinHash stages", big))
    lines += ["", "### Each stage at 1x, 2x and 4x", "",
              "One stage's pass over the records alone (exact: the whole exact scan; MinHash: signing, LSH "
              "lookups and exact-Jaccard confirmation; embeddings: windowing, encoding and the FAISS index of the "
              "records), from empty indexes, one core (embeddings: torch's threads on both cores), median of the "
              "runs; "
              "*time ratio* and *memory ratio* are against the stage's 1x row: linear time is a time ratio equal "
              "to the size ratio, flat memory a memory ratio near 1.", "",
              "| stage | size | records | MB | seconds | MB/s | peak RSS (MB) | time ratio | memory ratio "
              "| other load (core-s) |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    base: dict[str, dict[str, Any]] = {}
    for r in scale_rows:
        first = base.setdefault(r["stage"], r)
        size = r["mb"] / first["mb"]
        lines.append(f"| {r['stage']} | {size:.0f}x | {r['records']:,} | {r['mb']:.2f} | {r['seconds']:.2f} "
                     f"| {r['mb'] / r['seconds']:.2f} | {r['rss_mb']:.0f} | {r['seconds'] / first['seconds']:.2f} "
                     f"| {r['rss_mb'] / first['rss_mb']:.2f} | {r['other_load_s']:.1f} |")
    lines += ["", "### Beside the peers, on the same documents", "",
              "One core each, the same documents (the first part of the stream). *× faster* is our throughput "
              "over the peer's for the same job (n-grams: our exact stage; signatures: our signatures). The "
              "n-gram tools do not apply the same rule (see `bench/peers.py`), so the documents each flags differ "
              "by design; the timing covers scanning only, not building the benchmark index. Our exact stage's "
              "time includes everything else (reading Parquet, indexing, writing verdicts). The janitor's C++ "
              "helper is not shipped with lm-eval: it is built by hand from lm-eval's source (`bench/peers.py`, "
              "`JANITOR_BUILD_COMMAND`) and its row says *not run* where it was not built; its shipped "
              "`clean_cpp` flags every document, so `bench/peers.py` keeps the helper's n-gram extraction and "
              "matches against the registered n-grams as the Python path does.", "",
              "| job | tool | MB | seconds | MB/s | × faster (synthscope ÷ tool) | note |",
              "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    ours = {r["what"]: r["mb"] / r["seconds"] for r in peer_rows if r["tool"].startswith("synthscope")}
    for r in peer_rows:
        rate = r["mb"] / r["seconds"] if r["seconds"] == r["seconds"] else float("nan")
        ratio = "—" if r["tool"].startswith("synthscope") or rate != rate else f"{ours[r['what']] / rate:.1f}x"
        rate_text = f"{rate:.1f}" if rate == rate else "—"
        seconds = f"{r['seconds']:.2f}" if r["seconds"] == r["seconds"] else "—"
        lines.append(f"| {r['what']} | {r['tool']} | {r['mb']:.1f} | {seconds} | {rate_text} | {ratio} "
                     f"| {r['note']} |")
    text = "\n".join(lines) + "\n"
    out.write_text(text, encoding="utf-8")
    return text


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/reports/scale.md"))
    parser.add_argument("--size-mb", type=float, default=1000.0, help="the local-vs-Ray corpus")
    parser.add_argument("--scale-mb", type=float, default=64.0, help="1x of the exact and MinHash scaling rows")
    parser.add_argument("--semantic-mb", type=float, default=0.1, help="1x of the embedding scaling rows")
    parser.add_argument("--peer-mb", type=float, default=20.0, help="documents given to the peers")
    parser.add_argument("--loop-mb", type=float, default=2.0, help="datasketch's per-document loop: a smaller slice")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--repeat", type=int, default=1, help="runs per scaling row (median)")
    parser.add_argument("--demo", type=Path, help="a demo workspace (default: build one, about 4 minutes)")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo comparison")
    parser.add_argument("--workdir", type=Path)
    # Internal: one measured run.
    parser.add_argument("--child", choices=["scan", "stage"], help=argparse.SUPPRESS)
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--benchmark", help=argparse.SUPPRESS)
    parser.add_argument("--synthetic", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--stages", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--frames-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "scan":
        child_scan(args.workspace, args.benchmark, args.synthetic, args.engine, args.workers, args.stages,
                   args.frames_out)
        return 0
    if args.child == "stage":
        child_stage(args.workspace, args.synthetic, args.stage)
        return 0

    root = Path(tempfile.mkdtemp(prefix="scale-bench-", dir=args.workdir))
    try:
        sizes = {"big": args.size_mb, "peer": args.peer_mb,
                 **{f"scale-{k}x": args.scale_mb * k for k in (1, 2, 4)},
                 **{f"semantic-{k}x": args.semantic_mb * k for k in (1, 2, 4)}}
        print(f"generating and importing {max(sizes.values()):g} MB into {root}", flush=True)
        info = build_corpus(root, sizes, args.peer_mb, args.items, args.seed)
        info.update(seed=args.seed, n_items=args.items)
        workspace = info["ws"].root

        demo = None
        if not args.no_demo:
            demo_ws = root / "demo"
            if args.demo:
                shutil.copytree(args.demo, demo_ws)
            else:
                from synthscope.demo.build import build_demo

                build_demo(demo_ws)
            print("demo: local vs Ray", flush=True)
            demo = compare_engines(demo_ws, *DEMO_PAIR, ["exact", "near_duplicate", "semantic"], 2,
                                   root / "demo-frames")
        print(f"{args.size_mb:g} MB: local vs Ray", flush=True)
        big = compare_engines(workspace, BENCHMARK, "big", ["exact", "near_duplicate"], 2, root / "big-frames")

        scale_rows = []
        for stage, prefix in (("exact", "scale"), ("near_duplicate", "scale"), ("semantic", "semantic")):
            print(f"scaling: {stage}", flush=True)
            scale_rows += scaling(workspace, [f"{prefix}-{k}x" for k in (1, 2, 4)], stage, args.repeat)
        print("peers", flush=True)
        peer_rows = peers(info["items"], info["docs"], workspace, "peer", args.loop_mb)
        print(write_report(args.out, sys.argv[1:] if argv is None else argv, info, demo, big, args.size_mb,
                           scale_rows, peer_rows))
        bad = (demo or {}).get("differences") or big["differences"]
        return 1 if bad else 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
