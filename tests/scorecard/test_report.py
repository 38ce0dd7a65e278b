"""Scorecards, the policy, the gate and the HTML report on a small workspace built in the test."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from synthscope import cli
from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.demo.scorecards import crm_ticket, ticket
from synthscope.scorecard import policy, report, report_html

TOPICS = ["billing", "shipping", "returns", "account"]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps({"id": f"{path.stem}-{i}", **r}) + "\n" for i, r in enumerate(rows)))
    return path


@pytest.fixture(scope="module")
def small_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("scorecards")
    rng = random.Random(5)
    real = [ticket(rng, TOPICS[i % 4]) for i in range(60)]
    crm = [crm_ticket(rng, n) for n in range(80)]
    clean = [ticket(rng, TOPICS[i % 4]) for i in range(60)]
    leaky = clean[:45] + [dict(r, prompt=r["prompt"].replace("wrote", "says")) for r in crm[:15]]
    root = base / "ws"
    assert cli.main(["init", str(root)]) == 0
    for name, kind, rows in (("real", "reference", real), ("crm", "source", crm[:40]),
                             ("crm-holdout", "source", crm[40:]), ("synth", "synthetic", clean),
                             ("synth", "synthetic", leaky)):
        assert cli.main(["ingest", str(_jsonl(base / f"{name}-{kind}-{len(rows)}-{rows[0]['prompt'][:5]}.jsonl",
                                              rows)), "-w", str(root), "--name", name, "--kind", kind,
                         "--prompt-field", "prompt", "--answer-field", "answer", "--id-field", "id"]) == 0
    for version in ("v1", "v2"):
        assert cli.main(["score", f"synth@{version}", "-w", str(root), "--reference", "real", "--source", "crm",
                         "--holdout", "crm-holdout", "--no-embeddings"]) == 0
    return root


def test_scorecards_are_stored_once_per_build_and_read_back(small_ws: Path) -> None:
    ws = Workspace.open(small_ws)
    cards = report.scorecards(ws).set_index("ref")
    assert list(cards.index) == ["synth@v1", "synth@v2"]
    assert cards.loc["synth@v1", "privacy"] != "fail" and cards.loc["synth@v2", "privacy"] == "fail"
    metrics = ws.query("SELECT * FROM latest_report_metrics WHERE version = 'v2'").set_index("key")
    assert metrics.loc["privacy.pii_replay_rate", "grade"] == "fail" and metrics.loc[
        "privacy.pii_replay_rate", "value"] > 0
    assert set(metrics["section"]) == set(report.SECTIONS)
    manifest = report.latest(ws, DatasetRef("synth", "v2"))
    assert manifest["reference"] == "real@v1" and manifest["holdout"] == "crm-holdout@v1"
    assert any("embeddings" in n for n in manifest["notes"])  # --no-embeddings says what it left out
    hits = report.evidence(ws, manifest["report_id"], "privacy", "pii_hits")
    assert hits["replayed"].any() and hits["masked"].str.contains(r"\*\*\*|•").all()


def test_scoring_a_benchmark_is_refused(small_ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["score", "real", "-w", str(small_ws), "--no-embeddings"]) == 2
    assert "scorecards are for synthetic data" in capsys.readouterr().err


def test_gate_exit_codes_and_json(small_ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "gate.json"
    assert cli.main(["gate", "synth@v2", "-w", str(small_ws), "--json", str(out)]) == 1
    result = json.loads(out.read_text())
    assert result["status"] == "fail" and "privacy.pii_replay_rate" in result["failed"]
    assert result["sections"]["privacy"] == "fail" and result["inputs"]["source"] == "crm@v1"
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("metrics:\n  quality.exact_duplicate_rate: {fail_above: 0.5}\nmissing: pass\n")
    assert cli.main(["gate", "synth@v2", "-w", str(small_ws), "--policy", str(lenient)]) == 0  # pass: re-graded
    assert cli.main(["gate", "nope@v1", "-w", str(small_ws)]) == 2  # cannot be gated: an error, not a fail


def test_a_policy_with_a_typo_names_the_file_and_line(small_ws: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("metrics:\n  quality.exact_duplicate_rate: {fail_above: 0.1}\n  quality.dup_rate: {fail_above: 1}\n")
    assert cli.main(["gate", "synth@v1", "-w", str(small_ws), "--policy", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3: unknown metric 'quality.dup_rate'" in err and "quality.exact_duplicate_rate" in err


@pytest.mark.parametrize("text, message", [
    ("metrics:\n  a.b: {warn_above: 0.5, fail_above: 0.1}\n", ":2: a.b: warn_above 0.5 is above fail_above"),
    ("metrics:\n  a.b: {fail_over: 1}\n", ":2: unknown bound 'fail_over'"),
    ("metrics:\n  a.b: {fail_above: lots}\n", ":2: a.b.fail_above must be a finite number"),
    ("missing: maybe\n", ":1: `missing` must be pass, warn or fail"),
    ("thresholds: {}\n", ":1: unknown setting 'thresholds'"),
    ("", "the policy is empty"),
])
def test_policy_errors(text: str, message: str) -> None:
    with pytest.raises(policy.PolicyError, match=message.replace("(", r"\(").replace("{", r"\{")):
        policy.parse(text, "p.yaml")


@pytest.mark.parametrize("bounds", [
    "{fail_above: nan}", "{fail_above: .nan}", "{warn_below: NaN}", "{fail_above: .inf}", "{fail_below: -.inf}",
    "{fail_above: inf}", "{fail_above: 1.0e+400}", "{fail_above: '0.5'}", '{fail_above: "0.5"}', "{fail_above: true}",
    "{fail_above: yes}", "{fail_above: ~}", "{fail_above: [0.1]}", "{fail_above: {x: 1}}", "{[fail_above]: 0.1}",
    "{fail_above: 0.1, fail_above: 0.2}",
])
def test_a_bound_that_is_not_one_finite_number_is_an_error_naming_file_and_line(bounds: str) -> None:
    with pytest.raises(policy.PolicyError, match=r"^p\.yaml:3: "):
        policy.parse(f"missing: warn\nmetrics:\n  a.b: {bounds}\n", "p.yaml", known_keys={"a.b"})


@pytest.mark.parametrize("text", ["metrics:\n  [a, b]: {fail_above: 1}\n", "metrics:\n  {a: b}: {fail_above: 1}\n",
                                  "metrics:\n  1.5: {fail_above: 1}\n", "[metrics]: {}\n", "missing: [warn]\n"])
def test_a_key_that_is_not_a_name_is_an_error_naming_file_and_line(text: str) -> None:
    with pytest.raises(policy.PolicyError, match=r"^p\.yaml:[12]: "):
        policy.parse(text, "p.yaml", known_keys={"a.b"})


def test_numbers_in_any_yaml_spelling_are_bounds() -> None:
    rule = policy.parse("metrics:\n  a.b: {warn_above: 1e-3, fail_above: 0.5, warn_below: -1, fail_below: -2}\n").rules
    assert rule["a.b"] == policy.Rule("a.b", warn_above=0.001, fail_above=0.5, warn_below=-1.0, fail_below=-2.0)


def test_grades_follow_the_bounds() -> None:
    p = policy.parse("metrics:\n  x.up: {warn_below: 0.8, fail_below: 0.5}\n  x.down: {warn_above: 0, fail_above: "
                     "0.1}\nmissing: fail\n")
    assert [p.grade("x.up", v) for v in (0.9, 0.8, 0.7, 0.4)] == ["pass", "pass", "warn", "fail"]
    assert [p.grade("x.down", v) for v in (0.0, 0.05, 0.2)] == ["pass", "warn", "fail"]
    assert p.grade("x.down", float("nan")) == "fail" and p.grade("x.other", 3.0) == "info"
    assert policy.worst(["pass", "info", "warn"]) == "warn" and policy.worst([]) == "info"
    assert policy.parse(policy.DEFAULT_POLICY).rules  # the default parses


def test_html_report_is_self_contained_and_masks_pii(small_ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert cli.main(["report", "synth@v2", "-w", str(small_ws), "-o", str(out)]) == 0
    page = out.read_text()
    ws = Workspace.open(small_ws)
    manifest = report.latest(ws, DatasetRef("synth", "v2"))
    hits = report.evidence(ws, manifest["report_id"], "privacy", "pii_hits")
    assert "<svg" in page and "FAIL" in page and "privacy.pii_replay_rate" in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert "https://" not in page
    for value in hits.loc[hits["entity"] == "email", "value"]:
        assert value not in page  # raw PII never leaves the workspace in a report
    assert report_html.table_html(hits).count("<tr>") <= report_html.EVIDENCE_ROWS + 1
