"""Generation with the packaged SmolLM2 on CPU: provenance, stop and resume, template checks, benchmark seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthscope import cli
from synthscope.compute.sandbox import TemplateError
from synthscope.contamination.ngram import NgramConfig
from synthscope.contamination.scan import run_scan
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError
from synthscope.generation import generate as gen

TEMPLATE = "Write one new short task like this one.\nTask: {{ instruction }}"
TASKS = ["Write a haiku about rain.", "Explain what a list is in Python.", "Give one tip for sleeping well.",
         "Name a fruit that is yellow.", "Say hello in French.", "Describe a cat in five words."]
BENCH_ITEM = ("Write a function that returns the sum of the squares of all odd numbers in a list of integers, "
              "ignoring negative numbers and non-integers")


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    assert cli.main(["init", str(root)]) == 0
    seeds = [{"id": f"s{i}", "instruction": t, "output": "..."} for i, t in enumerate(TASKS)]
    seeds.append({"id": "leak", "instruction": BENCH_ITEM, "output": "def f(xs): ..."})
    assert cli.main(["ingest", str(_jsonl(tmp_path / "seeds.jsonl", seeds)), "-w", str(root), "--name", "seeds",
                     "--kind", "synthetic"]) == 0
    bench = [{"id": "b0", "question": BENCH_ITEM, "answer": "..."}]
    assert cli.main(["ingest", str(_jsonl(tmp_path / "bench.jsonl", bench)), "-w", str(root), "--name", "bench",
                     "--kind", "benchmark", "--prompt-field", "question", "--answer-field", "answer"]) == 0
    return Workspace.open(root)


def test_a_template_naming_a_missing_field_fails_before_any_generation(ws: Workspace) -> None:
    with pytest.raises(gen.GenerationError, match=r"'topic', which the seed rows do not have; they have .*instruction"):
        gen.generate(ws, DatasetRef("seeds"), "About {{ topic }}: {{ instruction }}", "out", device="cpu")
    assert not (ws.root / "generations").exists()  # nothing started, no model loaded
    with pytest.raises(gen.GenerationError, match="template line 1"):
        gen.template_fields("{% if %}")


def test_seeds_that_are_benchmark_items_are_left_out(ws: Workspace) -> None:
    run_scan(ws, DatasetRef("bench"), [DatasetRef("seeds")], NgramConfig(), workers=1)
    seeds = gen.seed_rows(ws, DatasetRef("seeds")).set_index("record_id")
    assert seeds.loc["leak", "flagged"] and not seeds.drop("leak")["flagged"].any()
    assert "leak" not in [rid for rid, _ in gen.preview(ws, DatasetRef("seeds"), TEMPLATE, rows=10)]


@pytest.mark.parametrize("text, mode, fields, reason", [
    ('Here: {"prompt": "Add 2+2", "answer": "4"}', "json", {"prompt": "Add 2+2", "answer": "4"}, None),
    ("no json here", "json", None, "no JSON object"),
    ('{"prompt": "x", ', "json", None, "no JSON object"),
    ("Q? ### A.", "delimiter", {"prompt": "Q?", "answer": "A."}, None),
    ("Q only", "delimiter", None, "no '###'"),
    ("  ", "text", None, "empty output"),
])
def test_outputs_are_parsed_or_kept_aside_with_a_reason(text, mode, fields, reason) -> None:
    got, why = gen.parse_output(text, gen.Params(parse=mode))
    assert got == fields and (reason is None or reason in why)


def test_a_cpu_run_makes_a_version_with_full_provenance_and_resumes_after_a_stop(ws: Workspace) -> None:
    params = gen.Params(max_new_tokens=6, batch_size=2, seed=7)
    calls = iter(range(100))
    stopped = gen.generate(ws, DatasetRef("seeds"), TEMPLATE, "gen", params=params, device="cpu",
                           keep_flagged_seeds=True, should_stop=lambda: next(calls) >= 1)  # stop after one batch
    assert stopped.stopped and stopped.dataset is None and stopped.rows + stopped.rejected == 2
    folder = ws.root / "generations" / stopped.run_id
    kept = [json.loads(line) for line in (folder / "rows.jsonl").read_text().splitlines()]
    with open(folder / "rows.jsonl", "a") as fh:
        fh.write('{"torn": ')  # a crash mid-write
    assert ws.versions("gen") == []  # nothing reaches datasets/ before the run ends

    done = gen.generate(ws, DatasetRef("seeds"), TEMPLATE, "gen", params=params, device="cpu",
                        keep_flagged_seeds=True, run_id=stopped.run_id)
    assert done.dataset == DatasetRef("gen", "v1") and done.rows + done.rejected == len(TASKS) + 1
    rows = [json.loads(line) for line in (folder / "rows.jsonl").read_text().splitlines()]
    assert rows[: len(kept)] == kept  # the rows made before the stop are kept as they were
    manifest = ws.manifest(DatasetRef("gen", "v1"))
    prov = manifest["provenance"]
    assert manifest["kind"] == "synthetic" and prov["model"] == "SmolLM2-135M-Instruct"
    assert len(prov["weights_sha256"]) == 64 and prov["template_sha256"] == gen.sha256_text(TEMPLATE)
    assert prov["params"]["max_new_tokens"] == 6 and prov["seed_pool"] == "seeds@v1" and prov["device"] == "cpu"
    raw = [json.loads(r) for r in ws.query("SELECT raw FROM records WHERE dataset = 'gen'")["raw"]]
    assert {r["seed_record_id"] for r in raw} <= {f"s{i}" for i in range(len(TASKS))} | {"leak"}
    assert all(r["template_sha256"] == prov["template_sha256"] and r["created_at"] for r in raw)

    again = gen.generate(ws, DatasetRef("seeds"), TEMPLATE, "gen-again", params=params, device="cpu",
                         keep_flagged_seeds=True, limit=2)
    first = {(r["seed_record_id"], r["prompt"]) for r in rows}
    assert {(r["seed_record_id"], r["prompt"]) for r in
            (json.loads(line) for line in (ws.root / "generations" / again.run_id / "rows.jsonl").read_text()
             .splitlines())} <= first  # per-row seeds: a resumed run makes what an uninterrupted one makes


def test_resuming_with_other_parameters_is_refused(ws: Workspace) -> None:
    folder = ws.root / "generations" / "r1"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"template_sha256": "x", "params": {}, "model": "m",
                                                 "created_at": "then"}))
    with pytest.raises(gen.GenerationError, match="another model, template or parameters"):
        gen.generate(ws, DatasetRef("seeds"), TEMPLATE, "gen", run_id="r1", device="cpu")


def test_cli_job_can_be_cancelled_and_check_scans_and_scores(ws: Workspace, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    from synthscope.compute import jobs

    template = tmp_path / "t.j2"
    template.write_text(TEMPLATE)
    base = ["generate", "-w", str(ws.root), "--seeds", "seeds", "--template", str(template), "--output", "gen",
            "--max-new-tokens", "4", "--device", "cpu", "--keep-flagged-seeds"]
    assert cli.main([*base, "--background"]) == 0
    (job,) = jobs.list_jobs(ws, "generate")
    jobs.request_cancel(ws, job.job_id)  # lands while the model loads: the run stops before its first batch
    final = jobs.wait(ws, job.job_id, timeout=300)
    assert final.state == jobs.SUCCEEDED and final.result["stopped"] and final.result["dataset"] is None
    assert ws.versions("gen") == []

    assert cli.main([*base, "--limit", "2", "--check"]) == 0
    out = capsys.readouterr().out
    assert "checked gen@v1: scanned against 1 benchmark(s); " in out and "item(s) flagged; scorecard " in out
    assert len(ws.query("SELECT * FROM scans WHERE synthetic LIKE '%gen@v1%'")) == 1
    assert ws.query("SELECT count(*) AS n FROM reports WHERE dataset = 'gen'")["n"].iloc[0] == 1


def test_cli_preview_and_a_bad_template(ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    template = tmp_path / "t.j2"
    template.write_text("Rewrite: {{ instruction }}")
    assert cli.main(["generate", "-w", str(ws.root), "--seeds", "seeds", "--template", str(template), "--output",
                     "gen", "--preview"]) == 0
    assert "--- seed s0\nRewrite: Write a haiku about rain." in capsys.readouterr().out
    template.write_text("Rewrite: {{ nope }}")
    assert cli.main(["generate", "-w", str(ws.root), "--seeds", "seeds", "--template", str(template), "--output",
                     "gen", "--background"]) == 2
    assert "'nope', which the seed rows do not have" in capsys.readouterr().err
    assert not ws.jobs_dir.exists() or not any(ws.jobs_dir.iterdir())


def test_the_vllm_backend_says_what_it_needs_when_it_is_missing(ws: Workspace) -> None:
    pytest.importorskip("torch")
    if __import__("importlib.util").util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    with pytest.raises(gen.GenerationError, match="needs the vllm package and a CUDA GPU"):
        gen.generate(ws, DatasetRef("seeds"), TEMPLATE, "gen", backend="vllm", device="cpu")
    with pytest.raises(gen.GenerationError, match="backend must be one of"):
        gen.generate(ws, DatasetRef("seeds"), TEMPLATE, "gen", backend="llama")


@pytest.mark.parametrize("resume", ["../../victim", "ABSOLUTE", "x\n"])
def test_resume_with_a_run_id_that_is_not_a_plain_name_touches_nothing(ws: Workspace, tmp_path: Path, resume: str,
                                                                       capsys: pytest.CaptureFixture) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    lines = "".join(json.dumps({"seed_record_id": f"s{i}", "sample": 0}) + "\n" for i in range(3))
    (victim / "rows.jsonl").write_text(lines)
    template = tmp_path / "t.j2"
    template.write_text(TEMPLATE)
    resume = str(victim) if resume == "ABSOLUTE" else resume
    code = cli.main(["generate", "-w", str(ws.root), "--seeds", "seeds", "--template", str(template), "--output",
                     "gen", "--resume", resume, "--device", "cpu", "--limit", "1", "--max-new-tokens", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: invalid generation run id") and err.count("\n") == 1
    assert (victim / "rows.jsonl").read_text() == lines and sorted(p.name for p in victim.iterdir()) == ["rows.jsonl"]
    assert not (ws.root / "generations").exists()


@pytest.mark.parametrize("template, message", [
    ("{{ instruction.__class__ }}", "error: the template is not allowed to do that (seed s0)"),
    ("{{ instruction.nosuch }}", "error: the template uses something seed s0 does not have"),
    ("{{ 'a' * 10**10 }}", "error: the template needs more than 512 MiB of memory"),
    ("{% for i in range(100000) %}{{ instruction }}{% endfor %}", "error: the template makes a prompt longer than"),
])
def test_cli_preview_of_a_hostile_template_is_one_line(ws: Workspace, tmp_path: Path, template: str, message: str,
                                                        capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "t.j2"
    path.write_text(template)
    assert cli.main(["generate", "-w", str(ws.root), "--seeds", "seeds", "--template", str(path), "--output", "gen",
                     "--preview"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(message) and err.count("\n") == 1 and out == ""


def test_preview_reads_only_the_seeds_it_shows(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    read = []
    real_query = Workspace.query

    def query(self: Workspace, sql: str, params: list | None = None):  # noqa: ANN202
        frame = real_query(self, sql, params)
        if "FROM records" in sql:
            read.append(len(frame))
        return frame

    monkeypatch.setattr(Workspace, "query", query)
    shown = gen.preview(ws, DatasetRef("seeds"), TEMPLATE, rows=2)
    assert [rid for rid, _ in shown] == ["s0", "s1"] and read == [2]


class EchoBackend:
    """A stand-in model that answers each prompt with its first characters (no weights loaded)."""

    name, batches, device = "echo", True, "cpu"

    def __init__(self, ws: Workspace, model: str, device: str, trust_remote_code: bool) -> None:
        self.tokenizer = type("Tokenizer", (), {"chat_template": None})()

    def sample(self, prompts: list[str], params: gen.Params, seed: int) -> tuple[list[str], int]:
        return [p[:30] for p in prompts], len(prompts)


def test_the_generation_run_renders_under_the_same_bounds(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(gen.BACKENDS, "transformers", EchoBackend)
    huge = "{% if record_id == 's3' %}{{ 'a' * 200000 }}{% endif %}{{ instruction }}"  # only the fourth seed
    with pytest.raises(TemplateError, match=r"longer than 100,000 characters \(seed s3\)"):
        gen.generate(ws, DatasetRef("seeds"), huge, "gen", params=gen.Params(batch_size=2), device="cpu")
    assert ws.versions("gen") == []
    done = gen.generate(ws, DatasetRef("seeds"), TEMPLATE, "gen", params=gen.Params(batch_size=2), device="cpu",
                        keep_flagged_seeds=True)
    assert done.rows == len(TASKS) + 1 and done.dataset == DatasetRef("gen", "v1")


def test_an_output_name_that_is_not_a_plain_name_is_refused_before_anything(ws: Workspace) -> None:
    with pytest.raises(WorkspaceError, match="invalid dataset name '../escape'"):
        gen.generate(ws, DatasetRef("seeds"), TEMPLATE, "../escape", device="cpu")
    assert not (ws.root / "generations").exists()
