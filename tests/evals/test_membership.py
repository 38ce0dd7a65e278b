"""Min-K%++ per benchmark item under a run's model (synthscope.evals.membership)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from synthscope import cli
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError
from synthscope.evals import membership, stats
from tests.fixtures.compare_ws import BASELINE, BENCHMARK, CANDIDATE, compare_ws_template, copy_compare_ws


@pytest.fixture
def ws(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Workspace:
    return Workspace.open(copy_compare_ws(compare_ws_template(tmp_path_factory), tmp_path / "ws"))


def test_batched_scores_equal_the_reference_on_each_unpadded_sequence() -> None:
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 11, 23, generator=g) * 3
    ids = torch.randint(0, 23, (4, 11), generator=g)
    mask = torch.ones(4, 11, dtype=torch.long)
    mask[1, 7:] = 0  # padding must not count
    mask[2, 2:] = 0
    mask[3, 1:] = 0  # one token: nothing to predict
    for k in (0.2, 0.5, 1.0):
        out = membership.token_scores(logits, ids, mask, k)
        for row in range(3):
            n = int(mask[row].sum())
            ref = stats.min_k_plus_plus_from_logits(logits[row, : n - 1].double().numpy(), ids[row, 1:n].numpy(), k)
            logp = torch.log_softmax(logits[row, : n - 1].double(), -1)
            loss = float(logp[torch.arange(n - 1), ids[row, 1:n]].mean())
            assert out[row][0] == pytest.approx(ref, rel=1e-5, abs=1e-5)
            assert out[row][1] == pytest.approx(loss, rel=1e-5)
            assert out[row][2] == n - 1
        assert math.isnan(out[3][0]) and out[3][2] == 0


def test_item_text_is_what_lm_eval_scores_for_the_right_answer() -> None:
    assert membership.item_text("Question: capital?\nAnswer:", "Paris") == "Question: capital?\nAnswer: Paris"
    assert membership.item_text("Complete this ", "") == "Complete this"
    assert membership.item_text(None, "only an answer") == "only an answer"


def test_scores_every_item_and_agrees_with_a_direct_forward_pass(ws: Workspace) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = membership.score_run(ws, BASELINE, DatasetRef(BENCHMARK), device="cpu", batch_size=3)
    scores = membership.run_scores(ws, BASELINE, DatasetRef(BENCHMARK, "v1"))
    records = ws.query("SELECT record_id, prompt, answer FROM records WHERE dataset = ? ORDER BY row", [BENCHMARK])
    assert result.items == len(records) == len(scores) == 20 and result.truncated == 0
    assert set(scores["record_id"]) == set(records["record_id"])
    # One item by hand: the run's model, its logits, the reference implementation.
    model_dir = ws.query("SELECT model FROM runs WHERE run_id = ?", [BASELINE])["model"].iloc[0]
    tok, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir)
    row = records.iloc[5]
    ids = tok(membership.item_text(row["prompt"], row["answer"]), return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, :-1].double().numpy()
    expected = stats.min_k_plus_plus_from_logits(logits, ids[0, 1:].numpy())
    got = scores.set_index("record_id").loc[row["record_id"]]
    assert got["min_k_pp"] == pytest.approx(expected, abs=1e-4)
    assert got["tokens"] == ids.shape[1] - 1
    manifest = ws.query("SELECT * FROM membership")
    assert manifest["run_id"].tolist() == [BASELINE] and manifest["items"].tolist() == [20]


def test_long_items_are_cut_and_marked(ws: Workspace) -> None:
    membership.score_run(ws, BASELINE, DatasetRef(BENCHMARK), device="cpu", max_tokens=8)
    scores = membership.run_scores(ws, BASELINE, DatasetRef(BENCHMARK, "v1"))
    assert scores["truncated"].all() and (scores["tokens"] == 7).all()


def test_the_newest_scores_of_a_run_are_the_ones_read(ws: Workspace) -> None:
    bench = DatasetRef(BENCHMARK, "v1")
    membership.score_run(ws, BASELINE, bench, device="cpu", k=1.0)
    first = membership.run_scores(ws, BASELINE, bench).set_index("record_id")
    membership.score_run(ws, BASELINE, bench, device="cpu", k=0.2)
    second = membership.run_scores(ws, BASELINE, bench).set_index("record_id")
    assert len(second) == 20 and len(ws.query("SELECT * FROM membership")) == 2
    # k = 1 averages every token, k = 0.2 only the lowest: never above the full mean.
    assert (second["min_k_pp"] <= first.loc[second.index, "min_k_pp"] + 1e-9).all()
    assert (second["min_k_pp"] < first.loc[second.index, "min_k_pp"]).any()


@pytest.mark.parametrize("kwargs, message", [({"k": 0}, "k must be"), ({"k": 1.5}, "k must be"),
                                             ({"max_tokens": 1}, "max_tokens")])
def test_bad_parameters_are_refused_before_loading_anything(ws: Workspace, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        membership.score_run(ws, BASELINE, DatasetRef(BENCHMARK), **kwargs)
    assert not ws.membership_dir.exists() or not any(ws.membership_dir.iterdir())


def test_an_unloadable_model_is_a_clear_error_and_writes_nothing(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    assert cli.main(["run", "add", "-w", str(ws.root), "--model", str(tmp_path / "broken"), "--id", "broken"]) == 0
    with pytest.raises(WorkspaceError, match="run broken: could not load the model"):
        membership.score_run(ws, "broken", DatasetRef(BENCHMARK), device="cpu")
    assert not ws.membership_dir.exists() or not any(ws.membership_dir.iterdir())


def test_separation_is_the_auroc_of_the_scored_items() -> None:
    items = pd.DataFrame({"contaminated": [True, True, False, False, False],
                          "a": [0.9, 0.4, 0.5, 0.1, np.nan], "b": [np.nan] * 5})
    table = membership.separation(items, ["a", "b"]).set_index("score")
    # a: pairs (pos > neg) of (0.9, 0.4) x (0.5, 0.1) = 3 of 4; the NaN item is left out.
    assert table.loc["a", "auroc"] == pytest.approx(0.75) and table.loc["a", "items"] == 4
    assert table.loc["b", "items"] == 0 and math.isnan(table.loc["b", "auroc"])


def test_cli_scores_the_benchmarks_a_run_was_evaluated_on(ws: Workspace, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["eval", "mink", "-w", str(ws.root), "--run", CANDIDATE, "--device", "cpu"]) == 0
    assert f"{BENCHMARK}@v1" in capsys.readouterr().out
    files = list(ws.membership_dir.glob("*/scores.parquet"))
    assert len(files) == 1 and pq.read_table(files[0]).num_rows == 20


def test_cli_without_an_evaluation_or_benchmark_says_what_to_name(ws: Workspace,
                                                                  capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["run", "add", "-w", str(ws.root), "--model", "org/model", "--id", "fresh"]) == 0
    assert cli.main(["eval", "mink", "-w", str(ws.root), "--run", "fresh"]) != 0
    assert "--benchmark NAME@VERSION" in capsys.readouterr().err


def test_compare_puts_both_runs_scores_beside_the_verdicts(ws: Workspace) -> None:
    from synthscope.evals.compare import compare

    before = compare(ws, BASELINE, CANDIDATE, membership_task(ws), n_boot=100)
    assert before.unscored_runs == [BASELINE, CANDIDATE] and before.membership.empty
    membership.score_run(ws, BASELINE, DatasetRef(BENCHMARK), device="cpu")
    after = compare(ws, BASELINE, CANDIDATE, membership_task(ws), n_boot=100)
    assert after.unscored_runs == [CANDIDATE]
    assert after.items["mink_baseline"].notna().all() and after.items["mink_candidate"].isna().all()
    table = after.membership.set_index("score")
    assert list(table.index) == ["mink_baseline"] and table.loc["mink_baseline", "positives"] == 8


def membership_task(ws: Workspace) -> str:
    return ws.query("SELECT task FROM evals LIMIT 1")["task"].iloc[0]
