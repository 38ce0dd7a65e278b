"""Benchmark of the exact n-gram contamination scan against the naive reference.

Run ``python -m bench.ngram_bench --out bench/reports/ngram.md`` (part of ``make bench``). In one run,
on the same data, it

1. generates a deterministic corpus (:mod:`bench.corpus`): benchmark items and
   synthetic records with planted copies, written as JSON Lines and imported into
   a temporary workspace with :func:`synthscope.datasets.ingest.ingest`, exactly as a user
   would; the scans read the workspace's ``records.parquet``;
2. times, each in a fresh subprocess, (a) the naive reference
   (:mod:`bench.naive_ngram`), (b) :func:`run_scan` with one worker, (c)
   :func:`run_scan` with every core, and (b), (c) again on a corpus twice as large;
3. checks that (a), (b) and (c) give identical verdicts, and that the planted
   copies are found;
4. writes a Markdown report: throughput (MB of scanned text per second, text =
   UTF-8 bytes of :func:`synthscope.core.text.record_text` of every record), ratio to
   naive, and peak memory. Peak memory is the child's own peak RSS (``VmHWM``,
   see :func:`peak_rss_mb`) and, sampled every 20 ms from ``/proc``, the summed
   RSS of the child and all its descendants (scan workers run under a fork
   server, so they are not the child's direct children).

Timings exclude interpreter start-up and imports, and include everything a scan
does: reading Parquet, indexing the benchmark, scanning, writing the verdicts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench import corpus
from bench.naive_ngram import compare_verdicts
from synthscope.compute.engine import default_workers
from synthscope.core.text import record_text
from synthscope.core.workspace import DatasetRef, Workspace

BENCHMARK, SYNTHETIC, SYNTHETIC_2X = "bench", "synthetic", "synthetic-2x"


# -- corpus ------------------------------------------------------------------------------


def build_workspace(root: Path, size_mb: float, items: int, seed: int, double: bool) -> dict[str, Any]:
    """Generate the corpus, import it into a workspace at ``root``; returns what was made."""
    from synthscope.datasets.ingest import ingest

    t0 = time.perf_counter()
    bench_items = corpus.make_benchmark(items, seed)
    plants = corpus.plan_plants(bench_items, seed)
    src = root / "src"
    src.mkdir(parents=True)
    corpus.write_benchmark(src / "benchmark.jsonl", bench_items)
    size = int(size_mb * 1e6)
    emitted: list[corpus.Plant] = []
    # One stream: the 1x file is the first half of the 2x file.
    with open(src / "synthetic.jsonl", "w", encoding="utf-8") as one, \
            open(src / "synthetic-2x.jsonl", "w", encoding="utf-8") as two:
        written = planted_1x = 0
        for row in corpus.synthetic_records(2 * size if double else size, bench_items, plants, seed,
                                            emitted=emitted):
            line = json.dumps(row, ensure_ascii=False) + "\n"
            if written < size:
                one.write(line)
                written += len(record_text(row["prompt"], row["response"]).encode("utf-8"))
                planted_1x = len(emitted)
            if double:
                two.write(line)
    generated = time.perf_counter() - t0

    t0 = time.perf_counter()
    ws = Workspace.init(root / "ws")
    ingest(ws, src / "benchmark.jsonl", name=BENCHMARK, kind="benchmark")
    ingest(ws, src / "synthetic.jsonl", name=SYNTHETIC, kind="synthetic")
    if double:
        ingest(ws, src / "synthetic-2x.jsonl", name=SYNTHETIC_2X, kind="synthetic")
    ingested = time.perf_counter() - t0
    shutil.rmtree(src)
    return {"ws": ws, "items": bench_items, "plants": emitted[:planted_1x], "generate_s": generated,
            "ingest_s": ingested}


def text_stats(path: Path) -> tuple[int, float]:
    """Rows and MB (10**6 bytes, UTF-8) of the scanned text of a ``records.parquet``."""
    table = pq.read_table(path, columns=["prompt", "answer"])
    prompt = pc.sum(pc.binary_length(pc.fill_null(table.column("prompt"), ""))).as_py() or 0
    answer_len = pc.binary_length(pc.fill_null(table.column("answer"), ""))
    answer = pc.sum(answer_len).as_py() or 0
    separators = 2 * (pc.sum(pc.cast(pc.greater(answer_len, 0), "int64")).as_py() or 0)  # "\n\n" in record_text
    return table.num_rows, (prompt + answer + separators) / 1e6


# -- one measured configuration, in a child process ------------------------------------


def child(config: str, workspace: Path, synthetic: str, workers: int, verdicts_out: Path) -> None:
    """Run one configuration and print its measurements as JSON on the last line."""
    from bench.naive_ngram import naive_scan_files
    from synthscope.contamination.ngram import NgramConfig
    from synthscope.contamination.scan import run_scan

    ws = Workspace.open(workspace)
    bench, syn = DatasetRef(BENCHMARK), DatasetRef(synthetic)
    t0 = time.perf_counter()
    if config == "naive":
        verdicts = naive_scan_files(ws.records_path(bench), ws.records_path(syn))
        seconds = time.perf_counter() - t0
    else:
        summary = run_scan(ws, bench, [syn], NgramConfig(), workers=workers)  # the exact stage alone
        seconds = time.perf_counter() - t0
        verdicts = pd.read_parquet(ws.scans_dir / summary.scan_id / "verdicts.parquet")
    verdicts.to_parquet(verdicts_out)
    print(json.dumps({"seconds": seconds, "maxrss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MiB.

    ``VmHWM`` of ``/proc/self/status`` where there is one: Linux carries
    ``ru_maxrss`` over ``exec``, so a child started from a big parent would
    report the parent's peak; ``VmHWM`` belongs to the child's own address space.
    """
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_tree(pid: int) -> tuple[float, dict[int, int]]:
    """Summed RSS (MiB) of ``pid`` and every descendant, and each one's CPU time so far (clock ticks).

    From ``/proc``; a process that vanished while being read counts as nothing.
    """
    rss_kb, cpu, stack = 0, {}, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                rss_kb += next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            cpu[p] = int(fields[11]) + int(fields[12])  # utime + stime
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            continue
    return rss_kb / 1024, cpu


def _busy_ticks() -> int:
    """Clock ticks all CPUs of the machine have spent busy (not idle, not waiting for I/O)."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    return sum(values) - values[3] - values[4]


def measure(config: str, workspace: Path, synthetic: str, workers: int, verdicts_out: Path) -> dict[str, Any]:
    """Run :func:`child` in a fresh interpreter (see :func:`measure_command`)."""
    return measure_command([sys.executable, "-m", "bench.launch", "bench.ngram_bench", "--child", config, "--workspace",
                            str(workspace), "--synthetic", synthetic, "--workers", str(workers),
                            "--verdicts-out", str(verdicts_out)], config)


def measure_command(cmd: list[str], label: str) -> dict[str, Any]:
    """Run ``cmd`` (a child printing its measurements as JSON on its last line); add its process tree's peak
    RSS (``tree_rss_mb``) and the machine's other load (``other_load_s``).

    *Other load* is the CPU time the machine spent on anything but the measured
    process tree (and this process) while it ran, in core-seconds: other users'
    work on a shared machine, which makes the timing less trustworthy.
    """
    busy_before, own_before = _busy_ticks(), sum(os.times()[:2])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    peak = 0.0
    cpu: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            rss, ticks = process_tree(proc.pid)
            peak = max(peak, rss)
            for p, t in ticks.items():
                cpu[p] = max(cpu.get(p, 0), t)
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    hz = os.sysconf("SC_CLK_TCK")
    other = (_busy_ticks() - busy_before - sum(cpu.values())) / hz - (sum(os.times()[:2]) - own_before)
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed (exit {proc.returncode}); its output:\n{out}")
    result = json.loads(out.strip().splitlines()[-1])
    result["tree_rss_mb"] = max(peak, result["maxrss_mb"])
    result["other_load_s"] = max(other, 0.0)
    return result


# -- report ------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import pyarrow

    return {"cores": str(default_workers()), "ram": f"{ram:.1f} GiB", "cpu": model,
            "python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
            "pyarrow": pyarrow.__version__, "os": platform.platform()}


def planted_check(verdicts: pd.DataFrame, plants: list[corpus.Plant]) -> dict[str, Any]:
    """How the scan's verdicts compare with what was planted (only items planted in the scanned corpus)."""
    expected = {}
    for p in plants:
        expected[p.item] = corpus.PLANT_KINDS[p.kind]
        expected.update((other, "dirty") for other in p.others)
    by_item = verdicts.set_index("item")
    misses = [f"item {i}: {by_item.loc[i, 'bucket']} at coverage {by_item.loc[i, 'coverage']:.2f}, planted {b}"
              for i, b in sorted(expected.items()) if by_item.loc[i, "bucket"] != b]
    flagged = by_item.index[by_item["verdict"] != "clean"]
    return {"planted": len(expected), "flagged": int(sum(i in expected for i in flagged)),
            "expected_bucket": len(expected) - len(misses), "misses": misses,
            "unplanted_flagged": int(sum(i not in expected for i in flagged))}


def write_report(out: Path, args: argparse.Namespace, info: dict[str, Any], rows: list[dict[str, Any]],
                 equality: list[str], planted: dict[str, Any]) -> str:
    m = machine()
    groups = f"{info['row_groups']} row group" + ("s" if info["row_groups"] != 1 else "")
    naive = next((r for r in rows if r["config"].startswith("naive")), None)
    lines = [
        "## Exact n-gram scan",
        "",
        "Generated by",
        "",
        "```",
        f"{' '.join(['.venv/bin/python', '-m', 'bench.ngram_bench', *args.argv])}",
        "```",
        "",
        "(part of `make bench`). "
        f"Run at {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        f"**Machine:** {m['cores']} cores ({m['cpu']}), {m['ram']} RAM; {m['os']}; Python {m['python']}, "
        f"numpy {m['numpy']}, pandas {m['pandas']}, pyarrow {m['pyarrow']}.",
        "",
        f"**Data:** {args.items} benchmark items (n = 13 and 8, the defaults) and synthetic records of mixed "
        "length — English-like prose, code-like lines, ~5 % of records with non-ASCII words — with "
        f"{len(info['plants'])} planted copies, covering {planted['planted']} items, of "
        f"{len(corpus.PLANT_KINDS)} kinds ({', '.join(corpus.PLANT_KINDS)}), generated deterministically "
        f"(seed {args.seed}) by `bench/corpus.py` in {info['generate_s']:.0f} s and imported with "
        f"`synthscope.ingest` from JSON Lines in {info['ingest_s']:.0f} s. Every configuration reads the "
        f"workspace's `records.parquet` ({groups} of up to 10,000 rows). MB = 10^6 bytes of UTF-8 scanned "
        "text (`record_text(prompt, answer)` of every record).",
        "",
        f"Each configuration runs {args.repeat} times, each time in a fresh subprocess, in rounds (every "
        "configuration once, then again), so a drift in the host's speed touches them alike; *seconds* is the median "
        "(every run in the last column). Seconds exclude interpreter start-up and include reading Parquet, "
        "indexing the benchmark, scanning and writing the verdicts. With more than one worker the child "
        "first starts the workers' fork server, as `synthscope scan` does before its own imports "
        "(`bench/launch.py`). *Peak RSS main* is the child's own peak "
        "(`VmHWM`; `ru_maxrss` would include the benchmark parent's, which Linux carries over `exec`); "
        "*peak RSS all* is the summed RSS of the child, the fork server and the scan workers, sampled every "
        "20 ms; both are the largest over the runs.",
        "",
        "*Other load* is the most CPU time, in core-seconds, that the machine spent on other processes "
        "during one run of the configuration (from `/proc/stat`): near zero means nothing else competed "
        "for the cores.",
        "",
        "| config | records | MB | seconds | MB/s | vs naive | peak RSS main (MB) | peak RSS all (MB) | runs (s) "
        "| other load (core-s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in rows:
        rate = r["mb"] / r["seconds"]
        ratio = f"{rate / (naive['mb'] / naive['seconds']):.1f}x" if naive else "—"
        runs = ", ".join(f"{x:.2f}" for x in r["runs"])
        lines.append(f"| {r['config']} | {r['records']:,} | {r['mb']:.0f} | {r['seconds']:.2f} | {rate:.1f} "
                     f"| {ratio} | {r['maxrss_mb']:.0f} | {r['tree_rss_mb']:.0f} | {runs} | {r['other_load_s']:.1f} |")
    one = {r["mb"]: r["runs"] for r in rows if r["config"].startswith("run_scan workers=1")}
    many = {r["mb"]: r["runs"] for r in rows
            if r["config"].startswith("run_scan workers=") and not r["config"].startswith("run_scan workers=1")}
    speedups = []
    for mb in sorted(one):
        if mb in many:
            ratios = sorted(a / b for a, b in zip(one[mb], many[mb]))  # pair by pair: runs of the same round
            speedups.append(f"{statistics.median(ratios):.2f}x at {mb:.0f} MB ({ratios[0]:.2f}-{ratios[-1]:.2f})")
    if speedups:
        lines += ["", f"**1 to {args.workers} workers** (seconds of one over the other, run by run in the same "
                  "round; median and range): " + ", ".join(speedups) + "."]
    lines += ["", "Reading the table: *vs naive* is throughput over the naive reference's, measured in this run "
              "on the same data. With N workers the scan itself takes row groups from the first one on, "
              "while N - 1 worker processes fork from a server that imported the scan's modules while the "
              "child did its own, read the pickled benchmark index and join in, each kept two row groups "
              "ahead. A corpus of only a few row groups per worker still gains less than the 2x rows, where "
              "the start-up is a smaller share. Peak memory does not grow with the corpus: records are streamed "
              "a row group at a time."]
    lines += ["", "**Verdicts:** " + ("; ".join(equality)) + " (every field of "
              "`ExactMatches.verdicts()`: tokens and n per field, coverages, matched n-grams, longest span, "
              "matched records, matched field, too short, bucket, verdict; compared exactly).", "",
              f"**Planted copies:** {planted['flagged']} of the {planted['planted']} planted items are flagged, "
              f"{planted['expected_bucket']} in the bucket their kind should give (`bench/corpus.py`, "
              f"`PLANT_KINDS`); {planted['unplanted_flagged']} items that were not planted are flagged."
              + (f" Not as expected: {'; '.join(planted['misses'][:5])}." if planted["misses"] else ""), ""]
    text = "\n".join(lines)
    out.write_text(text, encoding="utf-8")
    return text


# -- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/reports/ngram.md"), help="Markdown report to write")
    parser.add_argument("--size-mb", type=float, default=200.0, help="MB of synthetic text (the 1x corpus)")
    parser.add_argument("--items", type=int, default=1000, help="benchmark items")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--workers", type=int, default=default_workers(), help="workers of the all-core run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration; the median time is reported")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive reference (no ratio, no check)")
    parser.add_argument("--no-double", action="store_true", help="skip the 2x corpus memory rows")
    parser.add_argument("--workdir", type=Path, help="where to build the workspace (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the workspace afterwards")
    # Internal: one measured configuration.
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--synthetic", help=argparse.SUPPRESS)
    parser.add_argument("--verdicts-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv

    if args.child:
        child(args.child, args.workspace, args.synthetic, args.workers, args.verdicts_out)
        return 0

    root = Path(tempfile.mkdtemp(prefix="ngram-bench-", dir=args.workdir))
    try:
        print(f"generating and importing {args.size_mb:g} MB (and 2x) into {root}", flush=True)
        info = build_workspace(root, args.size_mb, args.items, args.seed, not args.no_double)
        ws: Workspace = info["ws"]
        info["row_groups"] = pq.ParquetFile(ws.records_path(DatasetRef(SYNTHETIC))).num_row_groups
        print(f"  generated in {info['generate_s']:.1f} s, imported in {info['ingest_s']:.1f} s", flush=True)

        plan = [] if args.no_naive else [("naive (a)", "naive", SYNTHETIC, 1)]
        plan += [("run_scan workers=1 (b)", "scan", SYNTHETIC, 1),
                 (f"run_scan workers={args.workers} (c)", "scan", SYNTHETIC, args.workers)]
        if not args.no_double:
            plan += [("run_scan workers=1, 2x corpus", "scan", SYNTHETIC_2X, 1),
                     (f"run_scan workers={args.workers}, 2x corpus", "scan", SYNTHETIC_2X, args.workers)]
        # Round robin (every configuration once, then again): a host whose speed drifts over minutes slows
        # every configuration alike, where one configuration's runs back to back would take the drift alone.
        stats = [text_stats(ws.records_path(DatasetRef(synthetic))) for _, _, synthetic, _ in plan]
        runs: list[list[dict[str, Any]]] = [[] for _ in plan]
        for turn in range(args.repeat):
            for number, (label, config, synthetic, workers) in enumerate(plan):
                runs[number].append(measure(config, ws.root, synthetic, workers, root / f"verdicts-{number}.parquet"))
                print(f"round {turn + 1}, {label}: {runs[number][-1]['seconds']:.2f} s", flush=True)
        rows, verdicts = [], {}
        for number, (label, _, _, _) in enumerate(plan):
            records, mb = stats[number]
            result = {"seconds": statistics.median(r["seconds"] for r in runs[number]),
                      "runs": [r["seconds"] for r in runs[number]],
                      "other_load_s": max(r["other_load_s"] for r in runs[number]),
                      "maxrss_mb": max(r["maxrss_mb"] for r in runs[number]),
                      "tree_rss_mb": max(r["tree_rss_mb"] for r in runs[number])}
            print(f"{label}: {records:,} records, {mb:.0f} MB: median {mb / result['seconds']:.1f} MB/s, peak RSS "
                  f"{result['maxrss_mb']:.0f} MB (all processes {result['tree_rss_mb']:.0f} MB), other load "
                  f"{result['other_load_s']:.1f} core-s", flush=True)
            rows.append({"config": label, "records": records, "mb": mb, **result})
            verdicts[label] = pd.read_parquet(root / f"verdicts-{number}.parquet")

        equality = []
        ok = True
        same_data = [label for label, _, synthetic, _ in plan if synthetic == SYNTHETIC]
        reference = same_data[0]
        for label in same_data[1:]:
            problems = compare_verdicts(verdicts[reference], verdicts[label])
            ok &= not problems
            equality.append(f"{label} vs {reference}: " + ("identical on all "
                            f"{len(verdicts[label])} items" if not problems else "DIFFERENT — " + "; ".join(problems)))
        doubled = [label for label, _, synthetic, _ in plan if synthetic == SYNTHETIC_2X]
        if len(doubled) == 2:
            problems = compare_verdicts(verdicts[doubled[0]], verdicts[doubled[1]])
            ok &= not problems
            equality.append("2x corpus, all cores vs one: " + ("identical" if not problems else "DIFFERENT — "
                                                                 + "; ".join(problems)))
        planted = planted_check(verdicts[reference], info["plants"])
        text = write_report(args.out, args, info, rows, equality, planted)
        print("\n" + text)
        if not ok:
            print("error: verdicts differ between configurations", file=sys.stderr)
            return 1
        return 0
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
