"""Baseline vs candidate on a real lm-eval output, split by a real scan.

One module fixture: a tiny random model evaluated through lm-eval on a local
multiple-choice task whose questions are long enough for the exact stage; a
synthetic set that copies 8 of the 20 questions; a scan. The candidate's
results are the baseline's lm-eval output with the leaked items answered right
(as a model that memorised them would), imported as a second run.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from analysis import cli
from analysis.contamination.ngram import NgramConfig
from analysis.contamination.scan import run_scan
from analysis.evals.compare import compare, compare_tasks, curve
from analysis.workspace import DatasetRef, Workspace, WorkspaceError
from tests.fixtures.tiny_lm import make_tiny_lm

TASK = "synthscope_ledger_mc"
LEAKED = {1, 4, 6, 9, 12, 15, 17, 19}
VOCAB = ("harbour ledger barrel ship spring autumn merchant salt rope lantern tide gull anchor copper wool grain "
         "market bell tower river bridge miller cart wheel stone orchard pear plum honey candle").split()


@dataclass
class Setup:
    root: Path
    output: Path  # the baseline's lm-eval output folder


def _task(folder: Path, n: int = 20) -> Path:
    rng = random.Random(7)
    folder.mkdir(parents=True)
    data = (folder / f"{TASK}.jsonl").resolve()
    rows = []
    for i in range(n):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        # Sixteen random words first: no two questions share an n-gram, so the scan can only find the leak.
        words = " ".join(rng.choice(VOCAB) for _ in range(16))
        rows.append({"id": f"q{i}", "question": f"{words}: what is {a} plus {b}?",
                     "choices": [str(a + b), str(a + b + 10), str(abs(a - b)), str(a * 2)], "answer": 0})
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / f"{TASK}.yaml").write_text(
        f"task: {TASK}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {json.dumps(str(data))}\n"
        "test_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: answer\n'
        "metric_list:\n  - metric: acc\n", encoding="utf-8")
    return data


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    base = tmp_path_factory.mktemp("compare")
    model = make_tiny_lm(base / "tiny")
    data = _task(base / "tasks")
    questions = [json.loads(line) for line in data.read_text().splitlines()]
    leak = [{"instruction": q["question"], "output": q["choices"][0]} for i, q in enumerate(questions) if i in LEAKED]
    filler = [{"instruction": f"Write a haiku about the number {i}.", "output": "..."} for i in range(30)]
    (base / "leaky.jsonl").write_text("".join(json.dumps(r) + "\n" for r in leak + filler), encoding="utf-8")
    root = base / "ws"
    for argv in (["init", str(root)],
                 ["ingest", TASK, "-w", str(root), "--format", "lm-eval", "--include-path", str(base / "tasks"),
                  "--name", "ledger", "--kind", "benchmark"],
                 ["ingest", str(base / "leaky.jsonl"), "-w", str(root), "--name", "leaky", "--kind", "synthetic"],
                 ["run", "add", "-w", str(root), "--model", str(model), "--id", "base"],
                 ["run", "add", "-w", str(root), "--model", str(model), "--id", "cand", "--dataset", "leaky",
                  "--synthetic-share", "0.3"],
                 ["eval", "run", "-w", str(root), "--run", "base", "--tasks", TASK, "--include-path",
                  str(base / "tasks"), "--device", "cpu", "--batch-size", "8"]):
        assert cli.main(argv) == 0, argv
    ws = Workspace.open(root)
    run_scan(ws, DatasetRef("ledger"), [DatasetRef("leaky")], NgramConfig())
    (output,) = list(ws.lmeval_dir.iterdir())
    # The candidate: the same output, but every leaked item answered right and nothing else changed.
    cand = base / "cand-output"
    shutil.copytree(output, cand)
    (samples,) = list(cand.rglob(f"samples_{TASK}_*.jsonl"))
    lines = []
    for line in samples.read_text().splitlines():
        row = json.loads(line)
        if row["doc_id"] in LEAKED:
            row["acc"] = 1.0
        lines.append(json.dumps(row))
    samples.write_text("\n".join(lines) + "\n")
    assert cli.main(["eval", "import", str(cand), "-w", str(root), "--run", "cand"]) == 0
    return Setup(root, output)


def test_the_gain_sits_on_the_leaked_items(setup: Setup) -> None:
    ws = Workspace.open(setup.root)
    c = compare(ws, "base", "cand", TASK, n_boot=2000)
    assert c.benchmark == "ledger@v1" and c.synthetics == ["leaky@v1"] and len(c.items) == 20
    leaked_ids = set(c.items.loc[c.items["doc_id"].isin(LEAKED), "record_id"])
    assert set(c.items.loc[c.items["contaminated"], "record_id"]) == leaked_ids  # the scan found exactly the leak
    subsets = c.subsets.set_index("subset")
    assert subsets.loc["clean", "gain"] == 0.0 and subsets.loc["clean", "mcnemar_p"] == 1.0
    base_right = c.items.loc[c.items["contaminated"], "baseline"].sum()
    assert subsets.loc["contaminated", "candidate"] == 1.0
    assert subsets.loc["contaminated", "gain"] == pytest.approx((8 - base_right) / 8)
    assert subsets.loc["contaminated", "c"] == 8 - base_right and subsets.loc["contaminated", "b"] == 0
    assert "verdict: exact" in subsets.index and "bucket: dirty" in subsets.index
    assert c.inflation.estimate == pytest.approx(subsets.loc["contaminated", "gain"])
    if base_right <= 2:  # a random model; with 6+ flips the bootstrap interval cannot reach 0
        assert c.inflation.excludes_zero and c.inflation.low > 0


def test_contam_curve_and_holm_over_tasks(setup: Setup) -> None:
    ws = Workspace.open(setup.root)
    c = compare(ws, "base", "cand", TASK, n_boot=500)
    table = curve(c, "coverage")
    # At a threshold above every coverage nothing is contaminated and no gain is attributed to it.
    assert table.iloc[-1]["n_contaminated"] == 0 and table.iloc[-1]["inflation_gain"] == 0.0
    # At the lowest threshold everything counts as contaminated: no clean subset, no estimate.
    assert np.isnan(table.iloc[0]["candidate_gain"])
    comparisons, summary = compare_tasks(ws, "base", "cand", [TASK], n_boot=500)
    assert summary.loc[0, "holm_p_contaminated"] == pytest.approx(summary.loc[0, "mcnemar_p_contaminated"])


def test_what_is_missing_is_said(setup: Setup, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(setup.root, root)
    ws = Workspace.open(root)
    with pytest.raises(WorkspaceError, match="has no evaluation of task"):
        compare(ws, "base", "cand", "no_such_task")
    with pytest.raises(WorkspaceError, match="no run 'ghost'"):
        compare(ws, "ghost", "cand", TASK)
    with pytest.raises(WorkspaceError, match="lists no synthetic dataset"):
        compare(ws, "cand", "base", TASK)  # the baseline was trained on nothing the workspace holds
    shutil.rmtree(root / "scans")
    with pytest.raises(WorkspaceError, match="synthscope scan --benchmark ledger@v1 --synthetic leaky@v1"):
        compare(ws, "base", "cand", TASK)


def test_compare_command_prints_the_split(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["compare", "-w", str(setup.root), "--baseline", "base", "--candidate", "cand",
                     "--task", TASK, "--n-boot", "500"]) == 0
    out = capsys.readouterr().out
    assert "contaminated" in out and "inflation = gain on contaminated - gain on clean" in out
