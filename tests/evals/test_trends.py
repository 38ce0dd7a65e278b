"""Scores per task across runs over their dates, split clean / contaminated (synthscope.evals.trends)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from synthscope.core.workspace import Workspace
from synthscope.evals.trends import score_trends
from tests.fixtures.compare_ws import BASELINE, CANDIDATE, LEAKED, TASK, compare_ws_template, copy_compare_ws


@pytest.fixture
def ws(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Workspace:
    return Workspace.open(copy_compare_ws(compare_ws_template(tmp_path_factory), tmp_path / "ws"))


def test_each_run_is_split_by_the_same_contaminated_items(ws: Workspace) -> None:
    trends = score_trends(ws).set_index(["run_id", "subset"])
    assert set(trends.index) == {(r, s) for r in (BASELINE, CANDIDATE) for s in ("all", "clean", "contaminated")}
    assert (trends["task"] == TASK).all() and (trends["metric"] == "acc").all()
    samples = ws.query("SELECT run_id, doc_id, acc FROM eval_samples")
    for run in (BASELINE, CANDIDATE):
        mine = samples[samples["run_id"] == run]
        leaked = mine["doc_id"].isin(LEAKED)
        assert trends.loc[(run, "all"), "score"] == pytest.approx(mine["acc"].mean())
        assert trends.loc[(run, "contaminated"), "score"] == pytest.approx(mine.loc[leaked, "acc"].mean())
        assert trends.loc[(run, "clean"), "score"] == pytest.approx(mine.loc[~leaked, "acc"].mean())
        assert trends.loc[(run, "contaminated"), "items"] == len(LEAKED)
    assert trends.loc[(CANDIDATE, "contaminated"), "score"] == 1.0  # the fixture's candidate memorised the leak


def test_runs_are_placed_at_their_training_date(ws: Workspace) -> None:
    for run, date in ((BASELINE, "2026-03-01"), (CANDIDATE, "2025-12-24")):
        manifest = ws.runs_dir / run / "manifest.json"
        manifest.write_text(manifest.read_text().replace('"date": null', f'"date": "{date}"'))
    ws.refresh_catalog()
    trends = score_trends(ws)
    assert trends["run_id"].drop_duplicates().tolist() == [CANDIDATE, BASELINE]  # oldest first
    assert str(trends["date"].min().date()) == "2025-12-24"


def test_a_benchmark_never_scanned_gets_only_the_score_on_all_items(ws: Workspace) -> None:
    for scan in ws.scans_dir.iterdir():
        shutil.rmtree(scan)
    ws.refresh_catalog()
    trends = score_trends(ws)
    assert set(trends["subset"]) == {"all"} and len(trends) == 2


def test_an_empty_workspace_has_no_trends(tmp_path: Path) -> None:
    assert score_trends(Workspace.init(tmp_path / "empty")).empty
