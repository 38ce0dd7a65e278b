"""Ingestion: every format, every preset, and bad input that loses nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.datasets.ingest import IngestError, IngestOptions, ingest, read_errors


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.init(tmp_path / "ws")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def records(ws: Workspace, name: str, version: str | None = None) -> pd.DataFrame:
    ref = ws.resolve(DatasetRef(name, version))
    return ws.query("SELECT * FROM records WHERE dataset = ? AND version = ? ORDER BY row", [ref.name, ref.version])


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "catalog.duckdb"}


# -- formats -------------------------------------------------------------------------------


def test_jsonl_with_gsm8k_layout(ws: Workspace, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "g.jsonl", [{"question": "1+1?", "answer": "2"}, {"question": "2+2?", "answer": "4"}])
    report = ingest(ws, src, name="gsm", kind="benchmark")
    assert (report.rows, report.ref.version, report.mapping.split(":")[0]) == (2, "v1", "gsm8k")
    df = records(ws, "gsm")
    assert df["prompt"].tolist() == ["1+1?", "2+2?"] and df["answer"].tolist() == ["2", "4"]
    assert df["source_line"].tolist() == [1, 2]
    assert json.loads(df["raw"][0]) == {"question": "1+1?", "answer": "2"}


def test_gzipped_jsonl_with_humaneval_preset(ws: Workspace, tmp_path: Path) -> None:
    rows = [{"task_id": "HumanEval/0", "prompt": "def f():\n", "canonical_solution": "    return 1\n",
             "test": "", "entry_point": "f"}]
    src = tmp_path / "he.jsonl.gz"
    src.write_bytes(gzip.compress(json.dumps(rows[0]).encode() + b"\n"))
    ingest(ws, src, name="he", kind="benchmark", options=IngestOptions(preset="humaneval"))
    df = records(ws, "he")
    assert df["record_id"].tolist() == ["HumanEval/0"] and df["answer"][0] == "    return 1\n"


def test_json_array_with_alpaca_layout(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "a.json"
    src.write_text(json.dumps([{"instruction": "Add", "input": "1 2", "output": "3"},
                               {"instruction": "Say hi", "input": "", "output": "hi"}], indent=2))
    report = ingest(ws, src, name="alp", kind="synthetic")
    df = records(ws, "alp")
    assert report.mapping.startswith("alpaca")
    assert df["prompt"].tolist() == ["Add\n\n1 2", "Say hi"] and df["answer"].tolist() == ["3", "hi"]
    assert df["source_line"].tolist() == [2, 7]  # the line each object starts on


def test_csv_with_header_and_explicit_fields(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text('id,q,a\n7,"what, exactly?",yes\n8,why,"because\nreasons"\n', encoding="utf-8")
    ingest(ws, src, name="t", kind="reference",
           options=IngestOptions(prompt_fields=("q",), answer_fields=("a",), id_field="id"))
    df = records(ws, "t")
    assert df["record_id"].tolist() == ["7", "8"]
    assert df["prompt"].tolist() == ["what, exactly?", "why"] and df["answer"][1] == "because\nreasons"
    assert df["source_line"].tolist() == [2, 3]


def test_headerless_mmlu_csv(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "mmlu.csv"
    src.write_text("What is 2+2?,3,4,5,6,B\nCapital of France?,Paris,Rome,Oslo,Bern,A\n", encoding="utf-8")
    ingest(ws, src, name="mmlu", kind="benchmark", options=IngestOptions(preset="mmlu"))
    df = records(ws, "mmlu")
    assert df["prompt"][0] == "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6"
    assert df["answer"].tolist() == ["4", "Paris"]


def test_headerless_csv_without_mapping_says_what_to_do(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "n.csv"
    src.write_text("a,b\nc,d\n", encoding="utf-8")
    with pytest.raises(IngestError, match="no header"):
        ingest(ws, src, name="n", kind="reference", options=IngestOptions(header=False))
    ingest(ws, src, name="n", kind="reference",
           options=IngestOptions(header=False, prompt_fields=("col0",), answer_fields=("col1",)))
    assert records(ws, "n")["prompt"].tolist() == ["a", "c"]


def test_parquet_with_chat_messages(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "chat.parquet"
    pd.DataFrame({"id": ["c1"], "messages": [[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello?"},
        {"role": "assistant", "content": "hi"}]]}).to_parquet(src)
    report = ingest(ws, src, name="chat", kind="synthetic")
    df = records(ws, "chat")
    assert report.mapping.startswith("chat")
    assert (df["record_id"][0], df["prompt"][0], df["answer"][0]) == ("c1", "be brief\n\nhello?", "hi")


def test_hf_save_to_disk_folder_with_splits(ws: Workspace, tmp_path: Path) -> None:
    import datasets

    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"question": ["t?"], "answer": ["t"]}),
        "test": datasets.Dataset.from_dict({"question": ["a?", "b?"], "answer": ["a", "b"]}),
    })
    dd.save_to_disk(str(tmp_path / "hf"))
    ingest(ws, tmp_path / "hf", name="hf", kind="benchmark")
    assert records(ws, "hf")["prompt"].tolist() == ["a?", "b?"]  # test split by default
    ingest(ws, tmp_path / "hf", name="hf", kind="benchmark", options=IngestOptions(split="train"))
    assert records(ws, "hf", "v2")["prompt"].tolist() == ["t?"]
    with pytest.raises(IngestError, match="no split 'dev'"):
        ingest(ws, tmp_path / "hf", name="hf", kind="benchmark", options=IngestOptions(split="dev"))


def test_lm_eval_local_task_offline(ws: Workspace, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "docs.jsonl", [
        {"question": "What is 2+2?", "choices": ["3", "4"], "answer": 1},
        {"question": "Capital of France?", "choices": ["Paris", "Rome"], "answer": 0},
    ])
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "toy.yaml").write_text(
        "task: synthscope_toy\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: answer\n'
        "metric_list:\n  - metric: acc\n", encoding="utf-8")
    ingest(ws, "synthscope_toy", name="toy", kind="benchmark",  # by name, as the dashboard does
           options=IngestOptions(format="lm-eval", include_path=[str(tasks)], task_names_only=True))
    df = records(ws, "toy")
    assert df["prompt"].tolist() == ["Question: What is 2+2?\nAnswer:", "Question: Capital of France?\nAnswer:"]
    assert df["answer"].tolist() == ["4", "Paris"]
    assert df["doc_id"].tolist() == [0, 1] and df["record_id"].tolist() == ["0", "1"]
    assert df["doc_hash"].str.len().tolist() == [64, 64]


def test_a_task_file_by_path_is_refused_when_only_names_are_allowed(ws: Workspace, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "docs.jsonl", [{"question": "q", "answer": "a"}])
    marker = tmp_path / "PWNED"
    task = tmp_path / "evil.yaml"
    task.write_text(
        f"task: evil\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n"
        "output_type: generate_until\n"
        f"doc_to_text: \"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}\"\n"
        "doc_to_target: answer\nmetric_list:\n  - metric: exact_match\n", encoding="utf-8")
    with pytest.raises(IngestError, match="no lm-eval task named .*task file is code"):
        ingest(ws, str(task), name="evil", kind="benchmark",
               options=IngestOptions(format="lm-eval", task_names_only=True))
    assert not marker.exists() and ws.versions("evil") == []
    # The operator's command line may load the file by path, and then it runs, as in lm-eval itself.
    ingest(ws, str(task), name="evil", kind="benchmark", options=IngestOptions(format="lm-eval"))
    assert marker.exists() and records(ws, "evil")["answer"].tolist() == ["a"]


def test_unknown_lm_eval_task_is_a_clear_error(ws: Workspace) -> None:
    with pytest.raises(IngestError, match="could not load lm-eval task 'no_such_task_xyz'"):
        ingest(ws, "no_such_task_xyz", name="x", kind="benchmark", options=IngestOptions(format="lm-eval"))


def test_a_save_to_disk_folder_naming_files_outside_it_is_refused(ws: Workspace, tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_dict({"prompt": ["private row"]}).save_to_disk(str(tmp_path / "elsewhere"))
    datasets.Dataset.from_dict({"prompt": ["own row"]}).save_to_disk(str(tmp_path / "hf"))
    state = tmp_path / "hf" / "state.json"
    meta = json.loads(state.read_text())
    meta["_data_files"] = [{"filename": f"../elsewhere/{f['filename']}"} for f in meta["_data_files"]]
    state.write_text(json.dumps(meta))
    with pytest.raises(IngestError, match="outside its folder"):
        ingest(ws, tmp_path / "hf", name="hf", kind="synthetic")
    datasets.DatasetDict({"test": datasets.Dataset.from_dict({"prompt": ["x"]})}).save_to_disk(str(tmp_path / "dd"))
    (tmp_path / "dd" / "dataset_dict.json").write_text(json.dumps({"splits": ["../elsewhere"]}))
    with pytest.raises(IngestError, match="outside its folder"):
        ingest(ws, tmp_path / "dd", name="hf", kind="synthetic")
    assert ws.versions("hf") == []


# -- bad input -----------------------------------------------------------------------------


def test_malformed_lines_are_reported_and_valid_rows_load(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "mixed.jsonl"
    src.write_bytes(b'{"prompt": "ok one", "answer": "a"}\n'
                    b'{"prompt": "broken", \n'
                    b'\n'
                    b'[1, 2]\n'
                    b'{"prompt": "bad \xff byte", "answer": "x"}\n'
                    b'{"answer": "no prompt"}\n'
                    b'{"prompt": "ok two", "answer": "b"}\n')
    report = ingest(ws, src, name="mixed", kind="synthetic",
                    options=IngestOptions(prompt_fields=("prompt",), answer_fields=("answer",)))
    assert report.rows == 2
    assert [(e.line, e.message.split(" ")[0]) for e in report.errors] == [
        (2, "malformed"), (4, "expected"), (5, "not"), (6, "field")]
    assert all(str(e).startswith(f"{src}:") for e in report.errors)
    assert "field 'prompt' is missing" in report.errors[3].message
    assert records(ws, "mixed")["prompt"].tolist() == ["ok one", "ok two"]
    assert [e.line for e in read_errors(ws, report.ref)] == [2, 4, 5, 6]
    assert ws.manifest(report.ref)["errors"] == 4


def test_csv_row_with_wrong_field_count_is_reported(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    src.write_text("prompt,answer\nfine,1\nthree,fields,here\nalso fine,2\n", encoding="utf-8")
    report = ingest(ws, src, name="c", kind="reference")
    assert report.rows == 2 and [(e.line, e.message) for e in report.errors] == [(3, "expected 2 fields, found 3")]


def test_broken_json_array_keeps_rows_before_the_break(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "b.json"
    src.write_text('[\n{"prompt": "first"},\n{"prompt": "second"\n,\n{"prompt": "third"}]', encoding="utf-8")
    report = ingest(ws, src, name="b", kind="reference")
    assert report.rows == 1 and report.errors[0].line == 3 and "rest of the array" in report.errors[0].message


def test_missing_mapped_field_in_every_row_fails_with_the_fields_present(ws: Workspace, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "m.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(IngestError, match=r"field 'promt' is missing \(fields present: question, answer\)"):
        ingest(ws, src, name="m", kind="benchmark", options=IngestOptions(prompt_fields=("promt",)))
    assert ws.versions("m") == []


def test_empty_file_is_refused(ws: Workspace, tmp_path: Path) -> None:
    for name, content in (("e.jsonl", b""), ("w.json", b"  \n\n"), ("blank.jsonl", b"\n\n")):
        src = tmp_path / name
        src.write_bytes(content)
        with pytest.raises(IngestError, match="empty|no row"):
            ingest(ws, src, name="e", kind="benchmark")
    assert ws.manifests() == []


def test_csv_in_another_encoding_names_the_line_and_the_fix(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "latin.csv"
    src.write_bytes("prompt,answer\nok,1\ncaf\xe9,2\n".encode("latin-1"))
    with pytest.raises(IngestError, match=r"latin\.csv:3: not valid utf-8 .*--encoding"):
        ingest(ws, src, name="l", kind="reference")
    ingest(ws, src, name="l", kind="reference", options=IngestOptions(encoding="latin-1"))
    assert records(ws, "l")["prompt"].tolist() == ["ok", "café"]


def test_multi_megabyte_record_is_reported_not_loaded(ws: Workspace, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "big.jsonl", [{"prompt": "small"}, {"prompt": "x" * 3_000_000}, {"prompt": "also"}])
    report = ingest(ws, src, name="big", kind="synthetic")
    assert report.rows == 2
    assert report.errors[0].line == 2 and "3.0 MB, over the 1.0 MB limit" in report.errors[0].message
    ingest(ws, src, name="big", kind="synthetic", options=IngestOptions(max_record_bytes=4_000_000))
    assert len(records(ws, "big", "v2")) == 3


def test_failed_import_leaves_the_workspace_untouched(ws: Workspace, tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [{"prompt": "p", "answer": "a"}])
    ingest(ws, good, name="d", kind="synthetic")
    before = snapshot(ws.root)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\nnor this\n", encoding="utf-8")
    with pytest.raises(IngestError, match="no row"):
        ingest(ws, bad, name="d", kind="synthetic")
    half = tmp_path / "half.jsonl"
    half.write_text('{"prompt": "fine"}\nbroken\n', encoding="utf-8")
    with pytest.raises(IngestError, match="--strict"):
        ingest(ws, half, name="d", kind="synthetic", options=IngestOptions(strict=True))
    with pytest.raises(IngestError, match="already exists"):
        ingest(ws, good, name="d", kind="synthetic", version="v1")
    assert snapshot(ws.root) == before
    assert list((ws.root / "tmp").iterdir()) == []


def test_versions_increment_and_names_are_checked(ws: Workspace, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "v.jsonl", [{"prompt": "p"}])
    assert [ingest(ws, src, name="v", kind="synthetic").ref.version for _ in range(3)] == ["v1", "v2", "v3"]
    assert ws.resolve(DatasetRef("v")).version == "v3"
    with pytest.raises(IngestError, match="invalid dataset name"):
        ingest(ws, src, name="../escape", kind="synthetic")
    with pytest.raises(IngestError, match="unknown dataset kind"):
        ingest(ws, src, name="k", kind="training")


def test_duplicate_ids_are_kept_with_suffixes(ws: Workspace, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "prompt": "x"}, {"id": "a", "prompt": "y"},
                                             {"prompt": "same"}, {"prompt": "same"}])
    report = ingest(ws, src, name="d", kind="synthetic",
                    options=IngestOptions(prompt_fields=("prompt",), id_field=None))
    ids = records(ws, "d")["record_id"].tolist()
    assert len(set(ids)) == 4 and report.duplicate_ids == 1  # content ids: two "same" rows
    report = ingest(ws, src, name="d2", kind="synthetic", options=IngestOptions(prompt_fields=("prompt",),
                                                                                 id_field="id"))
    assert report.rows == 2 and report.error_count == 2  # rows without the id field are reported


def test_row_groups_are_bounded_by_text_size(ws: Workspace, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    src = write_jsonl(tmp_path / "large.jsonl", [{"prompt": f"{i} " + "word " * 80_000} for i in range(30)])
    report = ingest(ws, src, name="large", kind="synthetic")
    meta = pq.ParquetFile(ws.records_path(report.ref)).metadata
    # 30 records of 400 kB: a row group closes once it holds 8 MB of text, so the scan gets several tasks.
    assert report.rows == 30 and meta.num_row_groups == 2
    assert sum(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) == 30


def test_generated_ids_never_collide_with_an_id_in_the_file(ws: Workspace, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "ids.jsonl", [{"id": i, "prompt": f"p{n}"} for n, i in enumerate(
        ["same", "same", "same~2", "same~2", "same", "other~2", "other"] + ["other"])])
    report = ingest(ws, src, name="ids", kind="synthetic",
                    options=IngestOptions(prompt_fields=("prompt",), id_field="id"))
    df = records(ws, "ids")
    assert df["record_id"].is_unique and report.duplicate_ids == 4
    # an id that is in the file keeps naming the row that has it; repeats get suffixes no row has
    assert df.set_index("record_id").loc[["same", "same~2", "other~2", "other"], "prompt"].tolist() == [
        "p0", "p2", "p5", "p6"]
    assert dict(zip(df["prompt"], df["record_id"], strict=True))["p1"] == "same~3"
    assert ws.manifest(report.ref)["duplicate_ids"] == 4


def test_a_stray_quote_in_a_csv_is_reported_with_its_line_range_and_every_lost_row(
        ws: Workspace, tmp_path: Path) -> None:
    lines = ["prompt,answer"] + [f"question {i},{i}" for i in range(999)]
    lines[3] = '"question 2,2'  # a quote that is never closed: the rest of the file is one field
    src = tmp_path / "stray.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ingest(ws, src, name="stray", kind="reference")
    assert report.rows == 2 and report.error_count == 997  # 2 + 997 = every one of the 999 data rows
    (error,) = report.errors
    assert (error.line, error.last_line) == (4, 1000) and str(error).startswith(f"{src}:4-1000: ")
    assert "the 997 rows on those lines were not imported" in error.message and "not closed" in error.message
    assert read_errors(ws, report.ref) == [error] and ws.manifest(report.ref)["errors"] == 997
    src.write_text('"prompt,answer\nfirst,1\nsecond,2\n', encoding="utf-8")  # the header swallows the file
    with pytest.raises(IngestError, match=r"stray\.csv:1-3: a malformed header in one record spanning lines 1-3"):
        ingest(ws, src, name="stray", kind="reference")


def test_a_quoted_line_break_loads_but_a_record_over_several_lines_is_noted(ws: Workspace, tmp_path: Path) -> None:
    src = tmp_path / "q.csv"
    src.write_text('prompt,answer\n"closed, later\nstill,quoted\nand here",1\nnext,2\n', encoding="utf-8")
    report = ingest(ws, src, name="q", kind="reference")
    assert report.rows == 2 and report.error_count == 0
    assert records(ws, "q")["source_line"].tolist() == [2, 5]
    assert report.notes and "lines 2-4" in report.notes[0]


@pytest.mark.parametrize(("line", "reason"), [
    ("[" * 3000 + "]" * 3000, "nested too deeply"),
    ('{"prompt": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ('{"prompt": ' + "9" * 5000 + "}", "could not be read"),
    ('{"prompt": "\\ud800 lone surrogate"}', "not valid Unicode"),
], ids=["deep-array", "deep-field", "huge-int", "surrogate"])
def test_a_line_that_breaks_the_parser_is_that_lines_error(ws: Workspace, tmp_path: Path, line: str,
                                                           reason: str) -> None:
    src = tmp_path / "deep.jsonl"
    src.write_text(f'{{"prompt": "ok"}}\n{line}\n{{"prompt": "also ok"}}\n', encoding="utf-8")
    report = ingest(ws, src, name="deep", kind="synthetic")
    assert report.rows == 2 and [e.line for e in report.errors] == [2] and reason in report.errors[0].message
    assert str(report.errors[0]).startswith(f"{src}:2: ")


@pytest.mark.parametrize(("name", "content", "message"), [
    ("bom.json", b"\xef\xbb\xbf", "is empty"),
    ("bom.csv", b"\xef\xbb\xbf \n", "is empty"),
    ("cut.jsonl.gz", gzip.compress(b'{"prompt": "a"}\n' * 1000)[:-30], "truncated gzip"),
    ("cut.csv.gz", gzip.compress(b"prompt\na\n" * 1000)[:-10], "truncated gzip"),
    ("plain.jsonl.gz", b'{"prompt": "not compressed"}\n', "not a valid gzip file"),
    ("plain.json.gz", b'[{"prompt": "not compressed"}]', "not a valid gzip file"),
], ids=["bom-json", "bom-csv", "truncated-jsonl-gz", "truncated-csv-gz", "plain-jsonl-gz", "plain-json-gz"])
def test_a_broken_whole_file_is_one_error_naming_it(ws: Workspace, tmp_path: Path, name: str, content: bytes,
                                                    message: str) -> None:
    src = tmp_path / name
    src.write_bytes(content)
    with pytest.raises(IngestError, match=message) as caught:
        ingest(ws, src, name="broken", kind="synthetic")
    assert str(caught.value).startswith(str(src))
    assert ws.versions("broken") == [] and list((ws.root / "tmp").iterdir()) == []


def test_an_unknown_encoding_is_an_ingest_error(ws: Workspace, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "e.jsonl", [{"prompt": "p"}])
    for encoding in ("no-such-codec", "rot13"):
        with pytest.raises(IngestError, match="unknown text encoding"):
            ingest(ws, src, name="e", kind="synthetic", options=IngestOptions(encoding=encoding))


@pytest.mark.parametrize(("row", "message"), [
    ({"question": "q", "choices": ["a", "b"], "answer": float("inf")}, "does not name one of 2 choices"),
    ({"question": "q", "choices": 5, "answer": 0}, "'choices' must be a list"),
    ({"question": "q", "choices": "ab", "answer": 0}, "'choices' must be a list"),
    ({"question": "q", "choices": ["a", "b"], "answer": -1}, "does not name one of 2 choices"),
    ({"question": "q", "choices": ["a", "b"], "answer": 0.5}, "does not name one of 2 choices"),
    ({"question": "q", "choices": ["a", "b"], "answer": ""}, "does not name one of 2 choices"),
    ({"question": "q", "choices": ["a", "b"], "answer": "AB"}, "does not name one of 2 choices"),
    ({"question": "q", "choices": [str(i) for i in range(11)], "answer": 0}, "at most 10 choices"),
])
def test_mmlu_rows_with_impossible_answers_are_reported(ws: Workspace, tmp_path: Path, row: dict,
                                                        message: str) -> None:
    src = tmp_path / "m.jsonl"
    src.write_text(json.dumps({"question": "fine", "choices": ["x", "y"], "answer": 1}) + "\n"
                   + json.dumps(row) + "\n", encoding="utf-8")
    report = ingest(ws, src, name="m", kind="benchmark", options=IngestOptions(preset="mmlu"))
    assert report.rows == 1 and records(ws, "m")["answer"].tolist() == ["y"]
    assert [e.line for e in report.errors] == [2] and message in report.errors[0].message


def test_an_upload_is_named_by_its_label_never_by_the_staged_path(ws: Workspace, tmp_path: Path) -> None:
    staged = tmp_path / "staging" / "up.jsonl.gz"
    staged.parent.mkdir()
    staged.write_bytes(b"not gzip")
    with pytest.raises(IngestError) as caught:
        ingest(ws, staged, name="u", kind="synthetic", source_label="upload:up.jsonl.gz")
    assert str(caught.value).startswith("upload:up.jsonl.gz ") and str(tmp_path) not in str(caught.value)
