"""The demo's planted truth: every leak found, no look-alike flagged."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from synthscope.contamination.semantic import SemanticConfig
from synthscope.core.workspace import Workspace, WorkspaceError
from synthscope.demo.build import build_demo, ensure_demo
from synthscope.demo.state import read_state


@pytest.fixture(scope="module")
def judged(demo_workspace_template: Path) -> pd.DataFrame:
    """Each planted row with its item's verdict and the row's own evidence (if any)."""
    ws = Workspace.open(demo_workspace_template)
    con = ws.connect()
    con.register("truth", pd.read_parquet(demo_workspace_template / "demo" / "planted_truth.parquet"))
    return con.execute("""
        SELECT t.*, v.verdict, v.bucket, v.coverage, v.cosine, v.matched_field, v.answer_n, e.rank, e.flagged,
               e.coverage AS row_coverage
        FROM truth t
        JOIN latest_verdicts v ON v.item_id = t.task_id AND v.synthetic = t.dataset AND v.synthetic_version = t.version
        LEFT JOIN evidence e ON e.scan_id = v.scan_id AND e.item_id = t.task_id AND e.record_id = t.record_id
             AND e.synthetic = t.dataset AND e.synthetic_version = t.version
    """).df()


def test_every_kind_is_planted(judged: pd.DataFrame) -> None:
    counts = judged.groupby("kind").size().to_dict()
    assert counts == {"answer_only": 6, "lookalike": 12, "renamed": 6, "rephrased": 6, "verbatim": 10,
                      "whitespace_case": 6}


def test_every_leak_is_flagged_with_its_row_as_evidence(judged: pd.DataFrame) -> None:
    leaks = judged[judged["must_flag"]]
    assert (leaks["verdict"] != "clean").all(), leaks[leaks["verdict"] == "clean"]
    assert leaks["rank"].notna().all() and leaks["flagged"].all()  # the planted row itself is flagged evidence
    near_verbatim = leaks[leaks["kind"] != "rephrased"]
    assert (near_verbatim["verdict"] == "exact").all(), near_verbatim[near_verbatim["verdict"] != "exact"]
    exact_kinds = leaks[leaks["kind"].isin(["verbatim", "whitespace_case", "answer_only"])]
    assert (exact_kinds["bucket"] == "dirty").all() and (exact_kinds["coverage"] == 1.0).all()
    assert set(leaks.loc[leaks["kind"] == "answer_only", "matched_field"]) == {"answer"}
    verbatim = leaks[leaks["kind"] == "verbatim"]
    # Both fields match, except an answer too short for any n-gram (HumanEval/41: `return n**2`).
    assert ((verbatim["matched_field"] == "prompt+answer") | (verbatim["answer_n"] == 0)).all()
    assert (verbatim["matched_field"] == "prompt+answer").sum() >= 8


def test_rephrasings_only_the_semantic_stage_sees_are_found_by_it(judged: pd.DataFrame) -> None:
    rephrased = judged[judged["kind"] == "rephrased"]
    # Five share no n-gram worth counting; one keeps its doctest numbers and is a partial exact match.
    assert rephrased["verdict"].value_counts().to_dict() == {"semantic": 5, "exact": 1}
    found_by_meaning = rephrased[rephrased["verdict"] == "semantic"]
    assert (found_by_meaning["cosine"] >= SemanticConfig().flag_at).all()
    assert found_by_meaning["coverage"].max() < 0.2


def test_no_clean_lookalike_is_flagged(judged: pd.DataFrame) -> None:
    lookalikes = judged[judged["kind"] == "lookalike"]
    assert (lookalikes["verdict"] == "clean").all()
    assert not lookalikes["flagged"].fillna(False).any()  # at most an unflagged semantic neighbour


def test_nothing_outside_the_planted_truth_is_flagged(demo_workspace_template: Path) -> None:
    ws = Workspace.open(demo_workspace_template)
    con = ws.connect()
    con.register("truth", pd.read_parquet(demo_workspace_template / "demo" / "planted_truth.parquet"))
    stray = con.execute("""
        SELECT v.synthetic, v.synthetic_version, v.item_id FROM latest_verdicts v
        WHERE v.benchmark = 'humaneval' AND v.verdict <> 'clean' AND NOT EXISTS (
            SELECT 1 FROM truth t WHERE t.must_flag AND t.task_id = v.item_id
              AND t.dataset = v.synthetic AND t.version = v.synthetic_version)
    """).fetchall()
    assert stray == []
    grid = ws.query("SELECT benchmark || ' x ' || synthetic || '@' || synthetic_version AS s, contaminated "
                    "FROM contamination_grid")
    assert dict(zip(grid["s"], grid["contaminated"])) == {
        "humaneval x code-instruct@v1": 32, "humaneval x code-instruct@v2": 0, "humaneval x chat-distill@v1": 2,
        "quiz x quiz-synth@v1": 100,  # the evaluation half: half the quiz leaked (tested below)
        **{f"humaneval x support-synth@v{i}": 0 for i in range(1, 5)}}  # the scorecard half: support tickets


@pytest.mark.timeout(1800)  # builds the demo's first half twice and its second half (without models) once
def test_demo_is_deterministic_and_never_clobbers(tmp_path: Path, demo_workspace_template: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from synthscope import cli
    from synthscope.compute import jobs

    # The first half only, as `make run` has it before it opens the dashboard: the Contamination page's data.
    again = build_demo(tmp_path / "again", evals=False, rest="later")  # the models are tested below
    state = read_state(again)
    assert state is not None and state.pending == ["semantic", "calibration", "scorecards"]
    assert set(state.seconds) == {"datasets", "scan"}
    # The copies are there already (code-instruct@v1's 26 copies and one rephrasing that kept a doctest, and
    # chat-distill@v1's 2); the five rephrasings only the semantic stage finds come with the second half.
    assert Workspace.open(again).query("SELECT count(*) AS n FROM latest_verdicts WHERE verdict <> 'clean'")[
        "n"][0] == 29
    # An interrupted make run: the next one finishes the rest in a background job, and then leaves it alone.
    assert cli.main(["demo", str(again), "--resume", "--rest-in-background"]) == 0
    assert "the rest is building in the background" in capsys.readouterr().out
    state = read_state(again)
    assert state is not None and state.job is not None
    finished = jobs.wait(Workspace.open(again), state.job, timeout=900)
    assert finished.state == jobs.SUCCEEDED, jobs.log_tail(Workspace.open(again), state.job)
    assert read_state(again).complete and ensure_demo(again) == "complete"
    query = ("SELECT dataset, version, record_id, prompt, answer FROM records WHERE dataset NOT LIKE 'quiz%' "
             "ORDER BY ALL")
    pd.testing.assert_frame_equal(Workspace.open(again).query(query),
                                  Workspace.open(demo_workspace_template).query(query))
    with pytest.raises(WorkspaceError, match="--force"):
        build_demo(again)
    (tmp_path / "mine").mkdir()
    with pytest.raises(WorkspaceError, match="not a synthscope workspace"):
        build_demo(tmp_path / "mine", force=True)
    assert build_demo(again, force=True, evals=False, rest="later") == again.resolve()


def test_the_demo_candidate_gains_only_where_its_synthetic_set_leaked(demo_workspace_template: Path) -> None:
    from synthscope.evals.compare import compare

    ws = Workspace.open(demo_workspace_template)
    c = compare(ws, "tiny-baseline", "tiny-candidate", "synthscope_quiz", n_boot=2000)
    leaked = set(json.loads((demo_workspace_template / "demo" / "lm" / "task" / "leaked.json").read_text())[
        "leaked_doc_ids"])
    assert set(c.items.loc[c.items["contaminated"], "doc_id"]) == leaked  # the scan finds exactly the leak
    subsets = c.subsets.set_index("subset")
    assert subsets.loc["contaminated", "gain"] > 0.5 and subsets.loc["contaminated", "mcnemar_p"] < 1e-6
    assert abs(subsets.loc["clean", "gain"]) < 0.15 and subsets.loc["clean", "mcnemar_p"] > 0.05
    assert c.inflation.low > 0.5  # measured +0.83, 95 % CI [0.71, 0.95]


def test_the_demo_candidates_own_probabilities_single_out_the_leaked_items(demo_workspace_template: Path) -> None:
    from synthscope.evals.compare import compare

    ws = Workspace.open(demo_workspace_template)
    c = compare(ws, "tiny-baseline", "tiny-candidate", "synthscope_quiz", n_boot=200)
    auroc = c.membership.set_index("score")["auroc"]
    assert c.unscored_runs == []
    assert auroc["mink_candidate"] > 0.95  # measured 1.000: the candidate trained on these exact texts
    assert 0.3 < auroc["mink_baseline"] < 0.7  # measured 0.445: the baseline never saw them


def test_the_gate_fails_each_problem_version_and_passes_the_clean_one(demo_ws: Path, tmp_path: Path) -> None:
    from synthscope import cli

    expected = {"v1": ("fail", {"quality.exact_duplicate_rate", "quality.near_duplicate_rate"}),
                "v2": ("fail", {"bias.cluster_tvd", "bias.attribute_tvd_max"}),
                "v3": ("fail", {"privacy.pii_replay_rate", "privacy.near_copy_share"}),
                "v4": ("pass", set())}
    for version, (status, failed) in expected.items():
        out = tmp_path / f"{version}.json"
        code = cli.main(["gate", f"support-synth@{version}", "-w", str(demo_ws), "--json", str(out)])
        result = json.loads(out.read_text())
        assert (code, result["status"]) == ((1, "fail") if status == "fail" else (0, "pass")), result
        assert set(result["failed"]) == failed
