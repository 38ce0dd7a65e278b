"""The Runs and Compare pages, driven through Streamlit's AppTest on the compare workspace.

The workspace (:mod:`tests.fixtures.compare_ws`): a tiny model evaluated through
real lm-eval, a synthetic set leaking 8 of 20 items, a scan, and a candidate run
that answers exactly the leaked items right.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

from synthscope.core.workspace import Workspace
from tests.fixtures.compare_ws import (
    BASELINE,
    BENCHMARK,
    CANDIDATE,
    LEAKED,
    SYNTHETIC,
    TASK,
    compare_ws_template,
    copy_compare_ws,
)
from tests.fixtures.markdown import render
from tests.fixtures.tiny_lm import make_gen_task

RUNS = "app_pages/runs.py"
COMPARE = "app_pages/compare.py"


@pytest.fixture
def compare_ws(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A private copy of the compare workspace."""
    return copy_compare_ws(compare_ws_template(tmp_path_factory), tmp_path / "ws")



def metric(at: AppTest, label: str) -> str:
    (match,) = [m.value for m in at.metric if m.label == label]
    return match


def frame(at: AppTest, column: str) -> pd.DataFrame:
    (match,) = [d.value for d in at.dataframe if column in d.value.columns]
    return match


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def htmls(at: AppTest) -> list[str]:
    return [h.proto.body for h in at.get("html")]


def points(text: str) -> float:
    """``+87.5 pp`` → 87.5."""
    return float(text.replace("pp", "").strip())


def leaked_item(ws: Path) -> tuple[str, str, str]:
    """A leaked item the baseline got wrong: its benchmark record id, question, and the synthetic record copying it."""
    w = Workspace.open(ws)
    base = w.query("SELECT doc_id, acc FROM eval_samples WHERE run_id = ?", [BASELINE]).set_index("doc_id")["acc"]
    doc_id = next(d for d in sorted(LEAKED) if base[d] == 0)
    bench = w.query("SELECT record_id, prompt FROM records WHERE dataset = ? AND doc_id = ?", [BENCHMARK, doc_id])
    record_id, prompt = bench.iloc[0]
    synthetic = w.query("SELECT record_id, prompt FROM records WHERE dataset = ?", [SYNTHETIC])
    (copy,) = [r for r, p in zip(synthetic["record_id"], synthetic["prompt"]) if p in prompt]
    return str(record_id), prompt, copy


def test_compare_page_shows_inflation_with_its_interval(open_app, compare_ws: Path) -> None:
    at = open_app(compare_ws, COMPARE)
    assert [s.value for s in at.selectbox if s.label in ("Baseline run", "Candidate run", "Task", "Metric")] == [
        BASELINE, CANDIDATE, TASK, "acc"]
    assert points(metric(at, "Gain on clean items")) == 0.0
    inflation = points(metric(at, "Inflation"))
    assert inflation > 0 and points(metric(at, "Gain on contaminated items")) == inflation
    ci = re.fullmatch(r"(\S+) to (\S+)", metric(at, "95% CI of the inflation (pp)"))
    low, high = float(ci[1]), float(ci[2])
    assert low <= inflation <= high
    said = " ".join(texts(at.warning) + texts(at.success))
    if low > 0:
        assert "confidence interval excludes 0" in said
    else:
        assert "includes 0" in said

    subsets = frame(at, "mcnemar_p").set_index("subset")
    assert subsets.loc["contaminated", "n"] == len(LEAKED)
    assert subsets.loc["contaminated", "candidate"] == 1.0
    assert subsets.loc["clean", "gain"] == 0.0
    assert {"verdict: exact", "bucket: dirty", "bucket: clean"} <= set(subsets.index)

    charts = list(at.get("vega_lite_chart"))
    assert len(charts) == 2  # scores per subset, ConTAM curve
    bars = [pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in charts[0].proto.datasets]
    scores = pd.concat(bars).set_index(["subset", "run"])["score"]
    assert scores[("contaminated", CANDIDATE)] == 1.0 and scores[("clean", CANDIDATE)] == scores[("clean", BASELINE)]
    curve = pd.concat(pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in charts[1].proto.datasets)
    attributed = curve[curve["series"].str.startswith("attributed")]
    assert attributed["gain"].max() > 0 and attributed["gain"].iloc[-1] == 0.0  # nothing above every coverage


def test_items_come_contaminated_first_then_where_the_runs_differ(open_app, compare_ws: Path) -> None:
    at = open_app(compare_ws, COMPARE)
    items = frame(at, "change")
    assert len(items) == 20
    assert items["contaminated"].tolist() == [True] * len(LEAKED) + [False] * (20 - len(LEAKED))
    assert set(items.loc[items["contaminated"], "doc_id"]) == LEAKED
    leaked = items[items["contaminated"]]
    assert leaked["change"].tolist() == sorted(leaked["change"], reverse=True)  # differing first


def test_drill_down_of_a_leaked_item_shows_both_answers_and_the_evidence(open_app, compare_ws: Path) -> None:
    record_id, question, copy = leaked_item(compare_ws)
    at = open_app(compare_ws, COMPARE)
    at.selectbox(key="cmp_item").set_value(record_id).run()
    assert not at.exception, [e.value for e in at.exception]
    assert metric(at, f"Baseline ({BASELINE})").startswith("wrong")
    assert metric(at, f"Candidate ({CANDIDATE})").startswith("right")

    blocks = htmls(at)
    (choices,) = [b for b in blocks if "synthscope-choices" in b]
    assert f"{BASELINE} log-likelihood" in choices and f"{CANDIDATE} log-likelihood" in choices
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", choices, re.S)[1:]
    cells = [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]
    assert len(cells) == 4
    (target,) = [c for c in cells if c[5] == "✓ target"]
    assert target[0] == "A" and target[3] == "-1.500" and CANDIDATE in target[4]  # memorised: picked the target
    assert sum(BASELINE in c[4] for c in cells) == 1 and BASELINE not in target[4]  # the baseline picked another

    assert any(html.escape(question.split(":")[0]) in b for b in blocks if "synthscope-answer" in b)
    assert any(render(m).plain().startswith(f"Synthetic record {copy} ") for m in texts(at.markdown))
    evidence = [b for b in blocks if "synthscope-evidence" in b]
    assert len(evidence) == 3  # item prompt, item answer | synthetic record
    marked = [html.unescape(m) for m in re.findall(r"<mark[^>]*>(.*?)</mark>", evidence[2], re.S)]
    assert marked and any(m.strip() in question for m in marked)


def _copy_eval(ws: Path, eval_id: str, new_id: str, *, task: str | None = None, acc: float | None = None) -> None:
    """A new eval next to ``eval_id``: the same samples, renamed to ``task`` and/or every acc set to ``acc``."""
    source, target = ws / "evals" / eval_id, ws / "evals" / new_id
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest.update(eval_id=new_id, created_at="2099-01-01T00:00:00+00:00", task=task or manifest["task"])
    (target / "manifest.json").write_text(json.dumps(manifest))
    samples = pq.read_table(target / "samples.parquet").to_pandas()
    samples["eval_id"] = new_id
    if task:
        samples["task"] = task
    if acc is not None:
        samples["acc"] = acc
    pq.write_table(pa.Table.from_pandas(samples, schema=pq.read_schema(source / "samples.parquet")),
                   target / "samples.parquet")


def test_a_new_import_refreshes_the_comparison(open_app, compare_ws: Path) -> None:
    at = open_app(compare_ws, COMPARE)
    assert points(metric(at, "Gain on clean items")) == 0.0
    w = Workspace.open(compare_ws)
    (cand_eval,) = w.query("SELECT eval_id FROM evals WHERE run_id = ?", [CANDIDATE])["eval_id"]
    _copy_eval(compare_ws, cand_eval, "20990101-000000-000-aaaa", acc=1.0)  # the candidate, re-evaluated: all right
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert points(metric(at, "Gain on clean items")) > 0  # not the cached comparison of the old eval


def test_several_tasks_get_a_holm_adjusted_summary(open_app, compare_ws: Path) -> None:
    w = Workspace.open(compare_ws)
    evals = w.query("SELECT run_id, eval_id FROM evals").set_index("run_id")["eval_id"]
    for run, suffix in ((BASELINE, "bbbb"), (CANDIDATE, "cccc")):
        _copy_eval(compare_ws, evals[run], f"20990101-000000-000-{suffix}", task=f"{TASK}_again")
    at = open_app(compare_ws, COMPARE)
    assert at.selectbox(key="cmp_task").options == [TASK, f"{TASK}_again"]
    summary = frame(at, "holm_p_contaminated")
    assert summary["task"].tolist() == [TASK, f"{TASK}_again"]
    # Two identical tasks: Holm doubles the smaller p-value (and caps at 1).
    raw = summary["mcnemar_p_contaminated"].to_numpy()
    assert summary["holm_p_contaminated"].tolist() == pytest.approx([min(1.0, 2 * raw.min())] * 2)


def test_runs_page_lists_runs_and_evaluations(open_app, compare_ws: Path) -> None:
    at = open_app(compare_ws, RUNS)
    runs = frame(at, "synthetic_share").set_index("run_id")
    assert list(runs.index) == [BASELINE, CANDIDATE]
    assert runs.loc[CANDIDATE, "datasets"] == f"{SYNTHETIC}@v1" and runs.loc[CANDIDATE, "synthetic_share"] == 0.3
    assert runs.loc[BASELINE, "evals"] == 1
    evals = frame(at, "linked")
    assert set(evals["run_id"]) == {BASELINE, CANDIDATE} and set(evals["task"]) == {TASK}
    assert (evals["linked"] == 20).all() and evals["metrics"].str.startswith("acc=").all()


@pytest.mark.parametrize("share, message", [("1.5", "not a fraction between 0 and 1"), ("lots", "is not a number")])
def test_a_run_with_a_bad_share_is_refused_and_nothing_written(open_app, compare_ws: Path, share: str,
                                                              message: str) -> None:
    before = sorted(p.name for p in (compare_ws / "runs").iterdir())
    at = open_app(compare_ws, RUNS)
    at.text_input(key="run_model").input("org/new-model")
    at.text_input(key="run_id").input("new")
    at.text_input(key="run_share").input(share)
    next(b for b in at.button if b.label == "Record run").click().run()
    assert any(message in e and "not recorded" in e for e in texts(at.error)), texts(at.error)
    assert sorted(p.name for p in (compare_ws / "runs").iterdir()) == before
    assert list(frame(at, "synthetic_share")["run_id"]) == [BASELINE, CANDIDATE]


def test_a_run_recorded_in_the_form_shows_at_once(open_app, compare_ws: Path) -> None:
    at = open_app(compare_ws, RUNS)
    at.text_input(key="run_model").input("org/new-model")
    at.text_input(key="run_id").input("new")
    at.text_input(key="run_share").input("25%")
    at.multiselect(key="run_datasets").set_value([f"{SYNTHETIC}@v1"])
    at.text_input(key="run_tags").input("sft, v2")
    next(b for b in at.button if b.label == "Record run").click().run()
    assert not at.error, texts(at.error)
    assert any("Recorded run new" in s for s in texts(at.success))
    runs = frame(at, "synthetic_share").set_index("run_id")
    assert runs.loc["new", "synthetic_share"] == 0.25 and runs.loc["new", "tags"] == "sft, v2"
    assert runs.loc["new", "datasets"] == f"{SYNTHETIC}@v1"


def test_an_empty_workspace_says_what_to_do(open_app, tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "empty")
    at = open_app(ws.root, COMPARE)
    assert any("synthscope run add" in i for i in texts(at.info))
    at = open_app(ws.root, RUNS)
    said = " ".join(texts(at.info))
    assert "synthscope run add" in said and "synthscope eval run" in said and "synthscope eval import" in said


def test_runs_without_evaluations_are_told_to_evaluate(open_app, compare_ws: Path) -> None:
    shutil.rmtree(compare_ws / "evals")
    at = open_app(compare_ws, COMPARE)
    said = " ".join(texts(at.info))
    assert "synthscope eval run" in said and "synthscope eval import" in said


def test_model_side_computes_min_k_for_both_runs_and_shows_how_well_it_separates(open_app,
                                                                                 compare_ws: Path) -> None:
    import time

    from synthscope.compute import jobs

    at = open_app(compare_ws, COMPARE)
    assert any("No Min-K%++ scores" in i and BASELINE in i and CANDIDATE in i for i in texts(at.info))
    assert not [d for d in at.dataframe if "auroc" in d.value.columns]
    next(b for b in at.button if b.label.startswith("Compute Min-K%++")).click().run()
    ws = Workspace.open(compare_ws)
    started = jobs.list_jobs(ws, "mink")
    assert len(started) == 2
    deadline = time.monotonic() + 300
    while any(j.state == jobs.RUNNING for j in jobs.list_jobs(ws, "mink")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert {j.state for j in jobs.list_jobs(ws, "mink")} == {jobs.SUCCEEDED}, [j.error for j in jobs.list_jobs(ws)]
    at.run()
    assert not at.exception and not any("No Min-K%++ scores" in i for i in texts(at.info))
    table = frame(at, "auroc").set_index("score")
    assert list(table.index) == [f"Min-K%++ under {CANDIDATE}", f"Min-K%++ under {BASELINE}",
                                 f"{CANDIDATE} − {BASELINE} (reference-calibrated)"]
    assert (table["positives"] == len(LEAKED)).all() and (table["items"] == 20).all()
    # Both runs are the same model here: equal scores, so the difference carries no signal (all ties: 0.5).
    assert table.iloc[0]["auroc"] == table.iloc[1]["auroc"] and table.iloc[2]["auroc"] == 0.5
    items = frame(at, "mink_candidate")
    assert items["mink_candidate"].notna().all() and (items["mink_candidate"] == items["mink_baseline"]).all()
    assert len(list(at.get("vega_lite_chart"))) == 3  # subsets, ConTAM, and the Min-K%++ scatter


def test_runs_page_draws_scores_over_time_split_by_contamination(open_app, compare_ws: Path) -> None:
    at = open_app(compare_ws, RUNS)
    (chart,) = list(at.get("vega_lite_chart"))
    data = pd.concat(pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets)
    scores = data.set_index(["run_id", "subset"])["score"]
    assert scores[(CANDIDATE, "contaminated")] == 1.0
    assert scores[(CANDIDATE, "clean")] == scores[(BASELINE, "clean")]
    assert any("Contaminated = flagged by the latest scan" in c for c in texts(at.caption))


def _generation_task(compare_ws: Path, tasks: Path, template: Path) -> tuple[str, str]:
    """A generate_until task over the compare workspace's questions, evaluated for both runs.

    The baseline's output is real lm-eval; the candidate's is the same with every leaked
    item answered right. Returns (task, benchmark name).
    """
    import json as _json

    from synthscope import cli
    from synthscope.contamination.ngram import NgramConfig
    from synthscope.contamination.scan import run_scan
    from synthscope.core.workspace import DatasetRef

    task, bench = "synthscope_ledger_gen", "ledger-gen"
    tasks.mkdir(parents=True)
    make_gen_task(tasks, template.parent / "tasks" / f"{TASK}.jsonl", task=task)
    root = str(compare_ws)
    assert cli.main(["ingest", task, "-w", root, "--format", "lm-eval", "--include-path", str(tasks),
                     "--name", bench, "--kind", "benchmark"]) == 0
    ws = Workspace.open(compare_ws)
    run_scan(ws, DatasetRef(bench), [DatasetRef(SYNTHETIC)], NgramConfig())
    before = set(ws.lmeval_dir.iterdir())
    assert cli.main(["eval", "run", "-w", root, "--run", BASELINE, "--tasks", task, "--include-path", str(tasks),
                     "--device", "cpu", "--batch-size", "8"]) == 0
    (output,) = set(ws.lmeval_dir.iterdir()) - before
    cand = compare_ws.parent / "cand-gen"
    shutil.copytree(output, cand)
    (samples,) = list(cand.rglob(f"samples_{task}_*.jsonl"))
    lines = []
    for line in samples.read_text().splitlines():
        row = _json.loads(line)
        if row["doc_id"] in LEAKED:
            row["filtered_resps"], row["resps"], row["exact_match"] = [row["target"]], [[row["target"]]], 1.0
        lines.append(_json.dumps(row))
    samples.write_text("\n".join(lines) + "\n")
    assert cli.main(["eval", "import", str(cand), "-w", root, "--run", CANDIDATE]) == 0
    return task, bench


def test_drill_down_of_a_generation_task_shows_the_target_and_both_generations(
        open_app, compare_ws: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    task, bench = _generation_task(compare_ws, tmp_path / "gen-tasks", compare_ws_template(tmp_path_factory))
    ws = Workspace.open(compare_ws)
    base = ws.query("SELECT doc_id, generated, target FROM eval_samples WHERE run_id = ? AND task = ?",
                    [BASELINE, task]).set_index("doc_id")
    doc_id = next(d for d in sorted(LEAKED) if base.loc[d, "generated"].strip() != base.loc[d, "target"])
    (record_id,) = ws.query("SELECT record_id FROM records WHERE dataset = ? AND doc_id = ?", [bench, doc_id])[
        "record_id"]

    at = open_app(compare_ws, COMPARE)
    at.selectbox(key="cmp_task").select(task).run()
    assert [s.value for s in at.selectbox if s.label == "Metric"] == ["exact_match"]
    subsets = frame(at, "mcnemar_p").set_index("subset")
    assert subsets.loc["contaminated", "candidate"] == 1.0 and subsets.loc["contaminated", "n"] == len(LEAKED)
    at.selectbox(key="cmp_item").select(record_id).run()
    assert not at.exception, [e.value for e in at.exception]
    assert {"Target", f"{BASELINE} generated", f"{CANDIDATE} generated"} <= set(texts(at.caption))
    shown = [h for h in htmls(at) if "synthscope-answer" in h]
    target = html.escape(base.loc[doc_id, "target"])
    generated = html.escape(base.loc[doc_id, "generated"])
    assert any(target in h for h in shown)  # the target, and the candidate's copy of it
    assert sum(target in h for h in shown) >= 2 and any(generated in h for h in shown)
    assert metric(at, f"Candidate ({CANDIDATE})").startswith("right")
    assert metric(at, f"Baseline ({BASELINE})").startswith("wrong")
    assert not [t for t in htmls(at) if "synthscope-choices" in t]  # no choices table for a generation task
