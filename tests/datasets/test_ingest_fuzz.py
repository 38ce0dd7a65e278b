"""Fuzzing ``ingest`` over every format and the Python API's options (hypothesis).

Whatever the bytes or structures, ``ingest`` either loads rows and reports every other
row as ``file:line``, or raises :class:`IngestError` and leaves the workspace as it
was: never another exception, never a partial version. Examples are derandomized and
no example database is kept, so every run (and CI) tries the same inputs; the budget
keeps the module well under a minute on a busy 2-core machine.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from synthscope.core.workspace import KINDS, Workspace
from synthscope.datasets.fields import PRESETS
from synthscope.datasets.ingest import IngestError, IngestOptions, IngestReport, ingest

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
KEYS = ["prompt", "answer", "id", "question", "choices", "messages", "instruction", "input", "output", "task_id",
        "canonical_solution", "role", "content"]
_names = itertools.count()


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    # The DuckDB catalog is rebuilt after each import that succeeds; it is no part of what is fuzzed here and
    # would take most of the budget.
    monkeypatch.setattr(Workspace, "refresh_catalog", lambda self: None)
    return Workspace.init(tmp_path / "ws")


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def check(ws: Workspace, source: Path | str, options: IngestOptions, label: str | None = None,
          **kwargs: Any) -> IngestReport | None:
    """Run ``ingest`` and check the contract; the report when rows loaded, else None."""
    kwargs = {"name": f"fuzz{next(_names)}", "kind": "synthetic", **kwargs}
    before = snapshot(ws.root)
    try:
        report = ingest(ws, source, options=options, source_label=label, **kwargs)
    except IngestError as exc:
        assert str(exc)
        event("refused")
        assert snapshot(ws.root) == before, "a failed import changed the workspace"
        return None
    manifest = ws.manifest(report.ref)
    table = pq.read_table(ws.records_path(report.ref))
    assert report.rows >= 1 and manifest["rows"] == report.rows == table.num_rows
    assert manifest["errors"] == report.error_count >= len(report.errors)
    assert len(set(table["record_id"].to_pylist())) == report.rows, "record ids are unique"
    assert table["row"].to_pylist() == list(range(report.rows))
    shown = label or (f"lm-eval:{source}" if options.format == "lm-eval" else str(source))
    for error in report.errors:
        assert error.file == shown and isinstance(error.line, int) and error.line >= 1
        assert str(error).startswith(f"{shown}:{error.line}")
    assert list((ws.root / "tmp").iterdir()) == []
    event("loaded, with row errors" if report.errors else "loaded")
    return report


# -- strategies ------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4),
                           max_leaves=10)
any_rows = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), json_values, max_size=5)
# Rows a mapping can read, more often than not: the paths past the parser get exercised too.
mappable = st.fixed_dictionaries({"prompt": st.text(max_size=12)}, optional={
    "answer": json_values, "id": st.sampled_from(["a", "a~2", "b"]) | json_values, "question": json_values,
    "choices": json_values})
rows = mappable | any_rows
field_names = st.sampled_from(KEYS) | st.text(max_size=6)
defaults = st.builds(IngestOptions)
options = st.one_of(defaults, defaults, defaults, st.builds(  # the defaults, most of the time
    IngestOptions,
    preset=st.none() | st.sampled_from([*PRESETS, "nope"]),
    prompt_fields=st.lists(field_names, max_size=2).map(tuple),
    answer_fields=st.lists(field_names, max_size=2).map(tuple),
    id_field=st.none() | field_names,
    header=st.none() | st.booleans(),
    encoding=st.sampled_from(["utf-8", "utf-8", "utf-8", "latin-1", "utf-16", "ascii", "no-such-codec", "rot13"]),
    max_record_bytes=st.sampled_from([1_000_000, 1_000_000, 200, 1]),
    strict=st.booleans(),
))


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` as is, cut short, with bytes flipped, or with random bytes inserted."""
    how = draw(st.sampled_from(["as is", "as is", "as is", "cut", "flip", "insert"]))
    if how == "as is" or not data:
        return data
    at = draw(st.integers(0, len(data) - 1))
    if how == "cut":
        return data[:at]
    if how == "flip":
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]


def json_line(row: Any) -> str:
    return json.dumps(row, allow_nan=True)


jsonl_lines = st.lists(mappable.map(json_line) | mappable.map(json_line) | rows.map(json_line)
                       | json_values.map(json_line) | st.text(max_size=20)
                       | st.sampled_from(["", "{", '{"prompt": ', "[" * 3000, '{"prompt": "\\ud800"}', "\ufeff{}"]),
                       max_size=8)


@st.composite
def text_file(draw: st.DrawFn, lines: st.SearchStrategy[list[str]]) -> tuple[bytes, bool]:
    """A file's bytes from ``lines`` (or any bytes), maybe gzip-compressed and damaged; and whether gzipped."""
    text = lines.map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass"))
    data = draw(st.one_of(text, text, text, st.binary(max_size=64)))
    gz = draw(st.sampled_from([False, False, False, True]))
    if gz and draw(st.sampled_from([True, True, True, False])):  # else: named .gz, but not compressed
        data = gzip.compress(data)
    return draw(damaged(data)), gz


# -- formats ---------------------------------------------------------------------------


@FUZZ
@given(file=text_file(jsonl_lines), opts=options)
def test_jsonl(ws: Workspace, tmp_path: Path, file: tuple[bytes, bool], opts: IngestOptions) -> None:
    data, gz = file
    src = tmp_path / ("in.jsonl.gz" if gz else "in.jsonl")
    src.write_bytes(data)
    check(ws, src, opts)


@FUZZ
@given(file=text_file(st.one_of(
    st.lists(mappable, min_size=1, max_size=5).map(lambda rs: [json.dumps(rs, indent=1)]),
    st.lists(rows, min_size=1, max_size=5).map(lambda rs: [json.dumps(rs, indent=1)]),
    st.dictionaries(st.text(max_size=4), st.lists(mappable, max_size=3) | json_values, max_size=2)
    .map(lambda obj: [json.dumps(obj)]),
    json_values.map(lambda value: [json.dumps(value)]),
    jsonl_lines,
)), opts=options)
def test_json(ws: Workspace, tmp_path: Path, file: tuple[bytes, bool], opts: IngestOptions) -> None:
    data, gz = file
    src = tmp_path / ("in.json.gz" if gz else "in.json")
    src.write_bytes(data)
    check(ws, src, opts)


def csv_text(table: list[list[str]], delimiter: str) -> list[str]:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(table)
    return out.getvalue().split("\n")


words = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=10)
cells = st.one_of(words, words, st.text(max_size=10), st.sampled_from(KEYS),
                  st.sampled_from(['"', '"oops', 'x"y', "a\nb", "A", "9"]))


@st.composite
def csv_table(draw: st.DrawFn) -> list[list[str]]:
    """A header (usually one a mapping reads) and rows, most of them as wide as the header."""
    header = draw(st.sampled_from([["prompt", "answer"], ["id", "prompt"], ["question", "answer", "id"]])
                  | st.lists(cells, min_size=1, max_size=4))
    width = st.sampled_from([len(header)] * 4 + [1, len(header) + 1])
    body = st.lists(width.flatmap(lambda n: st.lists(cells, min_size=n, max_size=n)), min_size=1, max_size=8)
    return [header, *draw(body)]


@FUZZ
@given(table=csv_table(), tsv=st.booleans(),
       stray=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 40)), max_size=2), file=st.data(),
       opts=options)
def test_csv(ws: Workspace, tmp_path: Path, table: list[list[str]], tsv: bool, stray: list[tuple[int, int]],
             file: st.DataObject, opts: IngestOptions) -> None:
    lines = csv_text(table, "\t" if tsv else ",")
    for line, column in stray:  # stray quotes
        if line < len(lines):
            lines[line] = lines[line][:column] + '"' + lines[line][column:]
    data, gz = file.draw(text_file(st.just(lines)))
    src = tmp_path / ("in" + (".tsv" if tsv else ".csv") + (".gz" if gz else ""))
    src.write_bytes(data)
    check(ws, src, opts)


def parquet_bytes(records: list[dict[str, Any]]) -> bytes:
    columns = sorted({k for r in records for k in r})
    table = pa.table({c: pa.array([r.get(c) for r in records], pa.string()) for c in columns}) if columns \
        else pa.table({"empty": pa.array([], pa.string())})
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


@FUZZ
@given(records=st.lists(st.dictionaries(st.sampled_from(KEYS), st.text(max_size=10) | st.none(), max_size=4),
                        max_size=6), file=st.data(), opts=options)
def test_parquet(ws: Workspace, tmp_path: Path, records: list[dict[str, Any]], file: st.DataObject,
                 opts: IngestOptions) -> None:
    src = tmp_path / "in.parquet"
    src.write_bytes(file.draw(damaged(parquet_bytes(records))))
    check(ws, src, opts)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A save_to_disk folder of one Dataset and one of a DatasetDict, saved once."""
    import datasets

    root = tmp_path_factory.mktemp("hf")
    rows = {"prompt": ["p1", "p2"], "answer": ["a1", "a2"]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(root / "one"))
    datasets.DatasetDict({"test": datasets.Dataset.from_dict(rows)}).save_to_disk(str(root / "dict"))
    return {"one": root / "one", "dict": root / "dict"}


@FUZZ
@given(layout=st.sampled_from(["one", "dict"]), changes=st.lists(st.tuples(st.integers(0, 20), st.data()),
                                                                 max_size=2), opts=options,
       split=st.none() | st.sampled_from(["test", "train", "../x"]))
def test_save_to_disk(ws: Workspace, tmp_path: Path, saved: dict[str, Path], layout: str,
                      changes: list[tuple[int, st.DataObject]], opts: IngestOptions, split: str | None) -> None:
    src = tmp_path / f"hf{next(_names)}"
    shutil.copytree(saved[layout], src)
    files = sorted(p for p in src.rglob("*") if p.is_file())
    for index, data in changes:  # damage a file: its JSON replaced by another structure, or its bytes
        target = files[index % len(files)]
        if target.suffix == ".json":
            replacement = data.draw(json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=32))
        else:
            replacement = data.draw(damaged(target.read_bytes()))
        target.write_bytes(replacement)
    opts.split = split
    check(ws, src, opts)


class FakeTask:
    """What lm-eval's TaskManager hands back, with docs and renderings drawn by hypothesis."""

    def __init__(self, docs: Any, output_type: str, rendered: dict[str, Any]) -> None:
        self.eval_docs, self.OUTPUT_TYPE, self.rendered = docs, output_type, rendered

    def _render(self, what: str, doc: Any) -> Any:
        value = self.rendered[what]
        if value == "raise":
            raise RuntimeError(f"{what} failed on {doc!r}")
        return value

    def doc_to_text(self, doc: Any) -> Any:
        return self._render("text", doc)

    def doc_to_target(self, doc: Any) -> Any:
        return self._render("target", doc)

    def doc_to_choice(self, doc: Any) -> Any:
        return self._render("choice", doc)


class RaisingDocs:
    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield {"question": "q"}
        raise OSError("the cached data is gone")


rendering = st.one_of(st.text(max_size=8), st.integers(-2, 3), st.lists(st.text(max_size=4), max_size=3), json_values,
                      st.just("raise"))
renderings = st.fixed_dictionaries({w: rendering for w in ("text", "target", "choice")})


@FUZZ
@given(docs=st.lists(rows, min_size=1, max_size=4) | st.lists(json_values, max_size=2) | st.just(RaisingDocs()),
       output_type=st.sampled_from(["multiple_choice", "generate_until", "loglikelihood"]),
       rendered=renderings, name=st.sampled_from(["toy", "toy", "toy", "toy_group", "missing"]),
       names_only=st.booleans())
def test_lm_eval_task(ws: Workspace, monkeypatch: pytest.MonkeyPatch, docs: Any, output_type: str,
                      rendered: dict[str, Any], name: str, names_only: bool) -> None:
    import lm_eval.tasks

    task = FakeTask(docs, output_type, rendered)

    class FakeManager:
        all_tasks = ["toy", "toy_group"]

        def __init__(self, include_path: Any = None) -> None:
            pass

        def load(self, names: list[str]) -> dict[str, Any]:
            if names == ["missing"]:
                raise KeyError("Spec 'missing' is not a registered task/group/tag name or valid YAML path")
            if names == ["toy_group"]:
                return {"tasks": {"a": task, "b": task}}
            return {"tasks": {"toy": task}}

    monkeypatch.setattr(lm_eval.tasks, "TaskManager", FakeManager)
    check(ws, name, IngestOptions(format="lm-eval", task_names_only=names_only), kind="benchmark")


@FUZZ
@given(name=st.text(max_size=12) | st.just("ok"), version=st.none() | st.text(max_size=8),
       kind=st.sampled_from([*KINDS, "training"]), fmt=st.none() | st.sampled_from(["jsonl", "csv", "xml", "hf"]),
       source=st.sampled_from(["in.jsonl", "missing.jsonl", "in.txt", ".", "in\x00.jsonl", "fifo.jsonl"]))
def test_python_api_arguments(ws: Workspace, tmp_path: Path, name: str, version: str | None, kind: str,
                              fmt: str | None, source: str) -> None:
    (tmp_path / "in.jsonl").write_text('{"prompt": "p"}\n', encoding="utf-8")
    (tmp_path / "in.txt").write_text('{"prompt": "p"}\n', encoding="utf-8")
    if not (tmp_path / "fifo.jsonl").exists():
        os.mkfifo(tmp_path / "fifo.jsonl")  # never opened: reading it would block
    check(ws, str(tmp_path / source), IngestOptions(format=fmt), name=name, version=version, kind=kind)
