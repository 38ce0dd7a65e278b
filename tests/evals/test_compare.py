"""Baseline vs candidate on a real lm-eval output, split by a real scan.

One module fixture (:mod:`tests.fixtures.compare_ws`): a tiny random model
evaluated through lm-eval on a local multiple-choice task whose questions are
long enough for the exact stage; a synthetic set that copies 8 of the 20
questions; a scan. The candidate's results are the baseline's lm-eval output
with the leaked items answered right (as a model that memorised them would),
imported as a second run.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from synthscope import cli
from synthscope.core.workspace import Workspace, WorkspaceError
from synthscope.evals.compare import compare, compare_tasks, curve
from tests.fixtures.compare_ws import LEAKED, TASK, compare_ws_template


@dataclass
class Setup:
    root: Path
    output: Path  # the baseline's lm-eval output folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    root = compare_ws_template(tmp_path_factory)
    (output,) = list(Workspace.open(root).lmeval_dir.iterdir())
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
