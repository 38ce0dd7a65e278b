"""Ingestion: files, Hugging Face ``save_to_disk`` folders and lm-eval tasks → records.

Every source is read as a stream of rows, each with the line (text formats) or
row number (tables) it came from. A row that cannot be read or mapped, whatever
breaks on it, becomes a :class:`RowError` naming file and line; the other rows
still load. Problems with the whole file (missing, empty, undecodable, not a
complete gzip, Parquet or save_to_disk source) raise :class:`IngestError`, the
only exception :func:`ingest` raises for its input. A dataset version is written
to a staging folder and moved into the workspace only when complete, so a failed
import changes nothing.

An lm-eval task file is code: lm-eval renders its templates with unsandboxed Jinja
and runs its ``!function`` hooks, as the user running the import. The command line
loads task files the operator names; the dashboard loads tasks by name only
(``IngestOptions.task_names_only``), from lm-eval's registry and the folders the
operator named with ``synthscope serve --task-dir``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from synthscope.core import allowed, schemas
from synthscope.core.base import utc_now
from synthscope.core.workspace import KINDS, DatasetRef, Workspace, WorkspaceError, atomic_write_json, check_name
from synthscope.datasets.fields import PRESETS, Columns, Fields, Mapper, MissingField, detect

FORMATS = ("jsonl", "json", "csv", "parquet", "hf", "lm-eval")
MAX_ERRORS_KEPT = 1000
# A row group is one unit of scan work: small enough to spread over every core and
# to bound a worker's memory, large enough that reading it is cheap per byte.
ROW_GROUP_ROWS = 10_000
ROW_GROUP_TEXT_BYTES = 8_000_000


class IngestError(Exception):
    """The source as a whole cannot be imported; nothing was written."""


@dataclass(frozen=True)
class RowError:
    file: str
    line: int | None
    message: str
    last_line: int | None = None  # a record spanning several lines (CSV): its last line

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.file}: {self.message}"
        lines = f"{self.line}-{self.last_line}" if self.last_line else str(self.line)
        return f"{self.file}:{lines}: {self.message}"


@dataclass
class IngestOptions:
    format: str | None = None  # one of FORMATS; None: from the file name
    preset: str | None = None  # one of fields.PRESETS; None: detect from the columns
    prompt_fields: tuple[str, ...] = ()
    answer_fields: tuple[str, ...] = ()
    id_field: str | None = None
    header: bool | None = None  # CSV: does the first line name the columns? None: yes, except for mmlu
    split: str | None = None  # save_to_disk folders with several splits
    encoding: str = "utf-8"
    max_record_bytes: int = 1_000_000
    include_path: str | Sequence[str] | None = None  # lm-eval: extra folder(s) of task YAMLs
    task_names_only: bool = False  # lm-eval: only a registered task name, never a task file's path (dashboard)
    strict: bool = False  # refuse the whole import if any row is bad


@dataclass
class IngestReport:
    ref: DatasetRef
    kind: str
    rows: int
    mapping: str
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0  # source rows not imported
    duplicate_ids: int = 0
    notes: list[str] = field(default_factory=list)  # worth a look, though every row loaded


@dataclass
class _Row:
    line: int
    data: dict[str, Any] | None = None
    error: str | None = None
    fields: Fields | None = None  # set by sources that map rows themselves (lm-eval)
    doc_id: int | None = None
    doc_hash: str | None = None
    last_line: int | None = None  # CSV: the record's last physical line
    lost: int = 1  # for an error: the source rows it stands for (a bad record over many lines loses them all)


class _Rejected(Exception):
    """One row cannot be imported; the message says why."""


def _row_failure(exc: BaseException) -> str:
    """One line saying why a row broke, for errors no reader anticipated (the data is hostile)."""
    if isinstance(exc, RecursionError):
        return "nested too deeply to read"
    if isinstance(exc, UnicodeEncodeError):
        return "holds text that is not valid Unicode (an unpaired surrogate such as \\ud800)"
    detail = " ".join(str(exc).split())
    return f"could not be read ({type(exc).__name__}{': ' + detail[:200] if detail else ''})"


# -- format detection ------------------------------------------------------------------


def detect_format(source: Path, label: str | None = None) -> str:
    label = label or str(source)
    if source.is_dir():
        if any((source / f).exists() for f in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return "hf"
        raise IngestError(f"{label} is a folder but not a Hugging Face save_to_disk folder (no dataset_info.json)")
    suffixes = [s.lower() for s in source.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    by_ext = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "csv",
              ".parquet": "parquet", ".pq": "parquet"}
    if ext not in by_ext:
        raise IngestError(
            f"cannot tell the format of {source.name} from its extension; pass --format ({', '.join(FORMATS)})"
        )
    return by_ext[ext]


def _open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def _unreadable(label: str, exc: BaseException) -> IngestError:
    """The whole file could not be read or decompressed: one error naming it."""
    if isinstance(exc, gzip.BadGzipFile):
        return IngestError(f"{label} is not a valid gzip file ({exc})")
    if isinstance(exc, EOFError):
        return IngestError(f"{label} is a truncated gzip file: it ends before its compressed data does")
    if isinstance(exc, zlib.error):
        return IngestError(f"{label} is a damaged gzip file: its compressed data does not decompress")
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    return IngestError(f"{label} could not be read: {reason}")


_READ_FAILURES = (OSError, EOFError, zlib.error)


def _read_bytes(path: Path, label: str) -> bytes:
    try:
        with _open_binary(path) as fh:
            return fh.read()
    except _READ_FAILURES as exc:
        raise _unreadable(label, exc) from exc


def _lines(path: Path, label: str, limit: int) -> Iterator[tuple[int, bytes | int]]:
    """``(line number, bytes)`` per physical line; a line over ``limit`` bytes comes as its size, never held whole."""
    try:
        with _open_binary(path) as fh:
            number = 0
            while raw := fh.readline(limit + 1):
                number += 1
                if len(raw) <= limit:
                    yield number, raw
                    continue
                size = len(raw)
                while not raw.endswith(b"\n") and (raw := fh.readline(1 << 20)):
                    size += len(raw)
                yield number, size
    except _READ_FAILURES as exc:
        raise _unreadable(label, exc) from exc


def _check_encoding(encoding: str) -> None:
    try:
        "a".encode(encoding)
    except (LookupError, ValueError) as exc:
        raise IngestError(f"unknown text encoding {encoding!r}; pass the file's encoding, e.g. utf-8 or latin-1"
                          ) from exc


def _decode_whole(path: Path, label: str, encoding: str) -> str:
    data = _read_bytes(path, label)
    try:
        text = data.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise IngestError(
            f"{label}:{line}: not valid {encoding} (byte 0x{data[exc.start]:02x}); "
            "re-encode the file as UTF-8 or pass --encoding with the file's encoding"
        ) from exc
    except UnicodeError as exc:
        raise IngestError(f"{label} is not valid {encoding}; re-encode the file as UTF-8 or pass --encoding "
                          "with the file's encoding") from exc
    text = text.lstrip("\ufeff")  # a byte order mark in an encoding that keeps it
    if not text.strip():
        raise IngestError(f"{label} is empty: there are no rows to import")
    return text


# -- readers ---------------------------------------------------------------------------


def _read_jsonl(path: Path, label: str, opts: IngestOptions) -> Iterator[_Row]:
    for line, raw in _lines(path, label, opts.max_record_bytes):
        try:
            row = _json_line(line, raw, opts)
        except Exception as exc:  # hostile data: whatever else breaks on one line is that line's error
            row = _Row(line, error=_row_failure(exc))
        if row is not None:
            yield row


def _json_line(line: int, raw: bytes | int, opts: IngestOptions) -> _Row | None:
    if isinstance(raw, int):
        return _Row(line, error=_too_big(raw, opts))
    try:
        text = raw.decode(opts.encoding)
    except UnicodeDecodeError as exc:
        return _Row(line, error=f"not valid {opts.encoding} (byte 0x{raw[exc.start]:02x} at column "
                                f"{exc.start + 1}); the other lines still load")
    if line == 1:
        text = text.lstrip("\ufeff")
    if not text.strip():
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return _Row(line, error=f"malformed JSON: {exc.msg} (column {exc.colno})")
    if not isinstance(obj, dict):
        return _Row(line, error=f"expected a JSON object, found {type(obj).__name__}")
    return _Row(line, obj)


def _json_value(decoder: json.JSONDecoder, text: str, i: int) -> tuple[Any, int] | str:
    """The JSON value at ``text[i]`` and where it ends, or why it cannot be read."""
    try:
        return decoder.raw_decode(text, i)
    except json.JSONDecodeError as exc:
        return f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    except Exception as exc:  # e.g. nested too deeply, or an integer with too many digits
        return _row_failure(exc)


def _read_json(path: Path, label: str, opts: IngestOptions) -> Iterator[_Row]:
    text = _decode_whole(path, label, opts.encoding)
    decoder = json.JSONDecoder()
    i = _skip_ws(text, 0)
    if i < len(text) and text[i] == "{":
        # One object: either JSON Lines saved as .json, or {"<key>": [rows]}.
        decoded = _json_value(decoder, text, i)
        if isinstance(decoded, str):
            yield _Row(text.count("\n", 0, i) + 1, error=decoded)
            return
        obj, end = decoded
        if _skip_ws(text, end) < len(text):
            yield from _read_jsonl(path, label, opts)
            return
        lists = [k for k, v in obj.items() if isinstance(v, list)]
        if len(lists) != 1:
            yield _Row(1, obj)
            return
        for n, row in enumerate(obj[lists[0]], start=1):
            yield _Row(n, row) if isinstance(row, dict) else _Row(n, error="expected a JSON object")
        return
    if i >= len(text) or text[i] != "[":
        yield _Row(text.count("\n", 0, i) + 1, error="expected a JSON array of objects")
        return
    i += 1
    line, counted_to = 1, 0
    while True:
        i = _skip_ws(text, i)
        if i >= len(text):
            yield _Row(line, error="the JSON array is not closed with ']'")
            return
        if text[i] == "]":
            return
        line += text.count("\n", counted_to, i)
        counted_to = i
        decoded = _json_value(decoder, text, i)
        if isinstance(decoded, str):
            yield _Row(line, error=f"in the element starting on this line: {decoded}; "
                                   "the rest of the array could not be read")
            return
        obj, end = decoded
        yield _Row(line, obj) if isinstance(obj, dict) else _Row(line, error="expected a JSON object")
        i = _skip_ws(text, end)
        if i < len(text) and text[i] == ",":
            i += 1
        elif i < len(text) and text[i] != "]":
            yield _Row(text.count("\n", 0, i) + 1, error="expected ',' or ']' between array elements; "
                                                           "the rest of the array could not be read")
            return


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


class _CountedLines:
    """A text's physical lines, for ``csv.reader``, counting the non-blank ones read so far."""

    def __init__(self, text: str) -> None:
        self._lines = iter(io.StringIO(text, newline=""))
        self.non_blank = 0

    def __iter__(self) -> _CountedLines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        if line.strip():
            self.non_blank += 1
        return line


def _read_csv(path: Path, label: str, opts: IngestOptions) -> Iterator[_Row]:
    text = _decode_whole(path, label, opts.encoding)
    csv.field_size_limit(max(2 * opts.max_record_bytes, 1 << 17))
    delimiter = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    lines = _CountedLines(text)
    reader = csv.reader(lines, delimiter=delimiter)
    header_wanted = opts.header if opts.header is not None else opts.preset != "mmlu"
    names: list[str] | None = None
    last_line = 0
    while True:
        start, read_before = last_line + 1, lines.non_blank
        try:
            values, problem = next(reader), None
        except StopIteration:
            return
        except csv.Error as exc:
            values, problem = [], f"malformed CSV: {exc}"
        if reader.line_num < start:  # the reader made no progress: nothing more can be read
            yield _Row(start, error=problem or "the CSV reader stopped here; the rest could not be read")
            return
        last_line = reader.line_num
        if problem is None:
            if not values or all(not v.strip() for v in values):
                continue
            if names is None:
                if header_wanted and last_line > start:  # a quote left open in the header swallowed the rows
                    yield _bad_record(start, last_line, lines.non_blank - read_before - 1, "a malformed header")
                    continue
                if header_wanted:
                    names = [v.strip() or f"col{i}" for i, v in enumerate(values)]
                    continue
                names = [f"col{i}" for i in range(len(values))]
            if len(values) == len(names):
                yield _Row(start, dict(zip(names, values, strict=True)), last_line=last_line)
                continue
            problem = f"expected {len(names)} fields, found {len(values)}"
        yield _bad_record(start, last_line, lines.non_blank - read_before, problem)


def _bad_record(first: int, last: int, lost: int, problem: str) -> _Row:
    """A CSV record that cannot be imported; one spanning many lines loses every row on them."""
    if last <= first:
        return _Row(first, error=problem)
    lost = max(lost, 1)
    rows = "the row on those lines was" if lost == 1 else f"the {lost} rows on those lines were"
    return _Row(first, error=f"{problem} in one record spanning lines {first}-{last}: probably a quote that is "
                             f"not closed; {rows} not imported", last_line=last, lost=lost)


def _read_parquet(path: Path, label: str, opts: IngestOptions) -> Iterator[_Row]:
    n = 0
    try:
        with pq.ParquetFile(path, pre_buffer=False) as pf:  # pre-buffered, iter_batches holds the whole file
            for batch in pf.iter_batches(batch_size=1000):
                for row in batch.to_pylist():
                    n += 1
                    yield _Row(n, row)
    except Exception as exc:  # pyarrow raises many types for a damaged file; which one does not help the user
        raise IngestError(f"{label} is not a readable Parquet file"
                          + (f" (it broke after row {n})" if n else "") + f": {_row_failure(exc)}") from exc


def _hf_paths_inside(folder: Path, label: str) -> None:
    """Refuse a save_to_disk folder whose JSON names a split or data file outside it (that JSON is data too)."""
    splits = [folder]
    listing = folder / "dataset_dict.json"
    if listing.is_file():
        splits += [folder / str(s) for s in json.loads(listing.read_text(encoding="utf-8"))["splits"]]
    for split in splits:
        state = split / "state.json"
        named = [split / str(f["filename"]) for f in json.loads(state.read_text(encoding="utf-8"))["_data_files"]
                 ] if state.is_file() else []
        if not all(allowed.is_inside(p, [folder]) for p in [split, *named]):
            raise IngestError(f"{label} names a split or data file outside its folder; "
                              "a save_to_disk folder must hold its own files")


def _read_hf(path: Path, label: str, opts: IngestOptions) -> Iterator[_Row]:
    import datasets

    try:
        _hf_paths_inside(path, label)
        loaded = datasets.load_from_disk(str(path))
    except IngestError:
        raise
    except Exception as exc:  # datasets raises many types for a damaged folder
        raise IngestError(f"{label} could not be loaded as a save_to_disk folder: {_row_failure(exc)}") from exc
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        split = opts.split or ("test" if "test" in splits else splits[0])
        if split not in loaded:
            raise IngestError(f"{label} has no split {split!r}; splits: {', '.join(splits)}")
        loaded = loaded[split]
    n = 0
    try:
        for n, row in enumerate(loaded, start=1):
            yield _Row(n, dict(row))
    except Exception as exc:
        raise IngestError(f"{label} could not be read after row {n}: {_row_failure(exc)}") from exc


def _read_lm_eval(task_name: str, opts: IngestOptions) -> Iterator[_Row]:
    """Docs of an lm-eval task as lm-eval evaluates them, so eval logs join on ``doc_id``."""
    from lm_eval.tasks import TaskManager

    try:
        manager = TaskManager(include_path=opts.include_path or None)
        if opts.task_names_only and task_name not in manager.all_tasks:
            raise IngestError(
                f"no lm-eval task named {task_name!r}: name a task of lm-eval's registry or of the task folders "
                "the operator named with `synthscope serve --task-dir` (a task file is code, so the dashboard "
                "never loads one from a path or an upload)")
        loaded = manager.load([task_name])["tasks"]
    except IngestError:
        raise
    except Exception as exc:  # lm-eval raises many types; the message is what matters
        hint = ""
        if "offline" in str(exc).lower() or "hub" in str(exc).lower():
            hint = (" — the task's data is on the Hugging Face Hub and synthscope runs offline by default;"
                    " pass --online (or set SYNTHSCOPE_ONLINE=1) to download it")
        raise IngestError(f"could not load lm-eval task {task_name!r}: {exc}{hint}") from exc
    if task_name not in loaded and len(loaded) != 1:  # one task loaded from a file's path is that task
        raise IngestError(f"{task_name!r} is a group of lm-eval tasks ({', '.join(loaded)}); import them one by one")
    task = loaded[task_name] if task_name in loaded else next(iter(loaded.values()))
    try:
        for doc_id, doc in enumerate(task.eval_docs):
            yield _lm_eval_row(task, doc_id, doc)
    except Exception as exc:
        raise IngestError(f"could not read the docs of lm-eval task {task_name!r}: {_row_failure(exc)}") from exc


def _lm_eval_row(task: Any, doc_id: int, doc: Any) -> _Row:
    """One doc with the prompt and answer lm-eval renders for it; a doc it cannot render is that row's error."""
    from lm_eval.utils import handle_non_serializable, hash_string

    try:
        doc = dict(doc)
        prompt = task.doc_to_text(doc)
        target = task.doc_to_target(doc)
        if task.OUTPUT_TYPE == "multiple_choice":
            choices = task.doc_to_choice(doc)
            if isinstance(prompt, int):  # e.g. winogrande: the text is one of the choices
                prompt = choices[prompt]
            if isinstance(target, int) and 0 <= target < len(choices):
                target = choices[target]
        answer = "\n".join(map(str, target)) if isinstance(target, list) else str(target)
        doc_hash = hash_string(json.dumps(doc, indent=2, default=handle_non_serializable, ensure_ascii=False))
        return _Row(doc_id + 1, doc, fields=Fields(str(prompt), answer, str(doc_id)), doc_id=doc_id,
                    doc_hash=doc_hash)
    except Exception as exc:  # the task's own templates and hooks may fail on any doc
        return _Row(doc_id + 1, error=f"lm-eval could not render this doc: {_row_failure(exc)}")


_READERS = {"jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv, "parquet": _read_parquet, "hf": _read_hf}


def _too_big(size: int, opts: IngestOptions) -> str:
    return (f"record is {size / 1e6:.1f} MB, over the {opts.max_record_bytes / 1e6:.1f} MB limit; "
            "raise it with --max-record-mb if such records are expected")


# -- mapping ---------------------------------------------------------------------------


def _mapper(opts: IngestOptions, first_row: dict[str, Any] | None) -> Mapper:
    if opts.prompt_fields:
        return Columns(opts.prompt_fields, opts.answer_fields, opts.id_field, name="custom")
    if opts.answer_fields:  # a preset's answer is its own (MMLU's is a choice's text, chat's the assistant turns)
        if opts.preset:
            raise IngestError(f"--preset {opts.preset} maps the answer itself; to choose the answer column, name "
                              "--prompt-field and --answer-field instead of a preset")
        raise IngestError("an answer field was named without --prompt-field; name the prompt field too")
    mapper = _preset_or_detected(opts, first_row)
    # The preset or the detected mapping supplies prompt and answer; a named id field replaces its id.
    return replace(mapper, id=opts.id_field) if opts.id_field else mapper


def _preset_or_detected(opts: IngestOptions, first_row: dict[str, Any] | None) -> Mapper:
    if opts.preset:
        if opts.preset not in PRESETS:
            raise IngestError(f"unknown preset {opts.preset!r}; presets: {', '.join(PRESETS)}")
        return PRESETS[opts.preset]
    if first_row is None:
        raise IngestError("no readable row to detect the field mapping from")
    if list(first_row) and all(k.startswith("col") and k[3:].isdigit() for k in first_row):
        raise IngestError(
            "the CSV has no header, so its fields have no names; choose a --preset (e.g. mmlu) "
            "or name columns with --prompt-field col0 --answer-field col1"
        )
    try:
        return detect(list(first_row))
    except MissingField as exc:
        raise IngestError(str(exc)) from exc


def _content_id(fields: Fields) -> str:
    return hashlib.sha1(f"{fields.prompt}\x1f{fields.answer}".encode()).hexdigest()[:16]


def _record(row: _Row, mapper: Mapper | None, opts: IngestOptions) -> dict[str, Any]:
    """The record a row becomes (its id not yet made unique); raises for a row that cannot be one."""
    fields = row.fields or mapper.extract(row.data)  # type: ignore[union-attr,arg-type]
    raw = json.dumps(row.data, ensure_ascii=False, default=str)
    size = len(raw.encode("utf-8"))
    if size > opts.max_record_bytes:
        raise _Rejected(_too_big(size, opts))
    record_id = fields.id or _content_id(fields)
    for text in (fields.prompt, fields.answer, record_id):
        text.encode("utf-8")  # Parquet holds only valid Unicode: a lone surrogate fails here, for this row alone
    return {"record_id": record_id, "source_line": row.line, "prompt": fields.prompt, "answer": fields.answer,
            "raw": raw, "doc_id": row.doc_id, "doc_hash": row.doc_hash}


class _Ids:
    """Record ids as read; a repeated id gets a ``~N`` suffix that no id in the file has."""

    def __init__(self) -> None:
        self.taken: set[str] = set()
        self.repeats: list[tuple[int, str]] = []  # (row, id)

    def add(self, row: int, record_id: str) -> None:
        if record_id in self.taken:
            self.repeats.append((row, record_id))
        else:
            self.taken.add(record_id)

    def renamed(self) -> dict[int, str]:
        """New ids by row, chosen once every id of the file is known (``a, a, a~2``: the second is ``a~3``)."""
        last_suffix: dict[str, int] = {}
        renamed = {}
        for row, record_id in self.repeats:
            n = last_suffix.get(record_id, 1) + 1
            while f"{record_id}~{n}" in self.taken:
                n += 1
            last_suffix[record_id] = n
            renamed[row] = f"{record_id}~{n}"
            self.taken.add(renamed[row])
        return renamed


def _rename_ids(path: Path, renamed: dict[int, str]) -> None:
    """Rewrite the records file with the repeated rows' new ids, row group by row group."""
    column = schemas.RECORDS.get_field_index("record_id")
    out = path.with_name(f"renamed-{path.name}")
    with pq.ParquetFile(path) as source, pq.ParquetWriter(out, schemas.RECORDS, compression="zstd") as writer:
        for i in range(source.num_row_groups):
            table = source.read_row_group(i)
            ids = [renamed.get(row, old) for row, old in
                   zip(table["row"].to_pylist(), table["record_id"].to_pylist(), strict=True)]
            table = table.set_column(column, schemas.RECORDS.field(column), pa.array(ids, pa.string()))
            writer.write_table(table, row_group_size=table.num_rows)
    os.replace(out, path)


class _RecordWriter:
    """Streams records into one Parquet file, in row groups, with the RECORDS schema."""

    def __init__(self, path: Path, ref: DatasetRef, kind: str) -> None:
        self.path, self.ref, self.kind = path, ref, kind
        self.buffer: list[dict[str, Any]] = []
        self.buffered_text = 0
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def add(self, record: dict[str, Any]) -> None:
        record.update(dataset=self.ref.name, version=self.ref.version, kind=self.kind, row=self.rows)
        self.buffer.append(record)
        self.buffered_text += len(record["prompt"]) + len(record["answer"])
        self.rows += 1
        if len(self.buffer) >= ROW_GROUP_ROWS or self.buffered_text >= ROW_GROUP_TEXT_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        table = pa.Table.from_pylist(self.buffer, schema=schemas.RECORDS)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, schemas.RECORDS, compression="zstd")
        self.writer.write_table(table, row_group_size=len(self.buffer))
        self.buffer = []
        self.buffered_text = 0

    def close(self) -> None:
        self.flush()
        if self.writer is None:
            pq.write_table(schemas.RECORDS.empty_table(), self.path)
        else:
            self.writer.close()


def _open_source(source: str | Path, fmt: str | None, label: str | None, opts: IngestOptions
                 ) -> tuple[Iterator[_Row], str, str]:
    """The rows of ``source``, the label that names it in messages, and its format."""
    if fmt == "lm-eval":
        return _read_lm_eval(str(source), opts), f"lm-eval:{source}", fmt
    path = Path(source)
    label = label or str(path)
    try:
        if not path.exists():
            raise IngestError(f"{label} does not exist")
        if not (path.is_file() or path.is_dir()):
            raise IngestError(f"{label} is not a regular file or folder")
        if path.is_file() and path.stat().st_size == 0:
            raise IngestError(f"{label} is empty: there are no rows to import")
    except (OSError, ValueError) as exc:  # unreadable, or not a path at all (a NUL byte)
        raise IngestError(f"{label} could not be read: {_row_failure(exc)}") from exc
    fmt = fmt or detect_format(path, label)
    return _READERS[fmt](path, label, opts), label, fmt


def ingest(ws: Workspace, source: str | Path, *, name: str, kind: str, version: str | None = None,
           options: IngestOptions | None = None, source_label: str | None = None,
           provenance: dict[str, Any] | None = None) -> IngestReport:
    """Import ``source`` as a new version of dataset ``name``; see the module docstring.

    ``source_label`` names the source in the manifest and in every message when the
    path read is not the one a user knows (an upload saved to a temporary file).
    ``provenance`` (how a generated set was made) is kept in the version's manifest.
    """
    opts = options or IngestOptions()
    try:
        check_name(name, "dataset name")
        version = check_name(version, "version") if version else ws.next_version(name)
    except WorkspaceError as exc:
        raise IngestError(str(exc)) from exc
    if kind not in KINDS:
        raise IngestError(f"unknown dataset kind {kind!r}; kinds: {', '.join(KINDS)}")
    if version in ws.versions(name):
        raise IngestError(f"{name}@{version} already exists; dataset versions are never overwritten")
    if opts.format is not None and opts.format not in FORMATS:
        raise IngestError(f"unknown format {opts.format!r}; formats: {', '.join(FORMATS)}")
    _check_encoding(opts.encoding)
    rows, label, fmt = _open_source(source, opts.format, source_label, opts)

    ref = DatasetRef(name, version)
    errors: list[RowError] = []
    error_count = 0
    mapper: Mapper | None = None
    ids = _Ids()
    spanning: list[tuple[int, int]] = []  # imported records over several lines: (first, last)

    def fail(row: _Row, message: str) -> None:
        nonlocal error_count
        error_count += row.lost
        if len(errors) < MAX_ERRORS_KEPT:
            last = row.last_line if row.last_line and row.last_line > row.line else None
            errors.append(RowError(label, row.line, message, last))

    try:
        with ws.staged(ws.datasets_dir / name / version) as tmp:
            writer = _RecordWriter(tmp / "records.parquet", ref, kind)
            for row in rows:
                if row.error is not None:
                    fail(row, row.error)
                    continue
                if row.fields is None and mapper is None:
                    mapper = _mapper(opts, row.data)
                try:
                    record = _record(row, mapper, opts)
                except (MissingField, _Rejected) as exc:
                    fail(row, str(exc))
                    continue
                except Exception as exc:  # hostile data: whatever else breaks on one row is that row's error
                    fail(row, _row_failure(exc))
                    continue
                ids.add(writer.rows, record["record_id"])
                if row.last_line and row.last_line > row.line:
                    spanning.append((row.line, row.last_line))
                writer.add(record)
            writer.close()
            if writer.rows == 0:
                detail = "; ".join(str(e) for e in errors[:3])
                raise IngestError(f"no row of {label} could be imported" + (f": {detail}" if detail else ""))
            if error_count and opts.strict:
                raise IngestError(f"{error_count} bad rows in {label} and --strict is set; first: {errors[0]}")
            renamed = ids.renamed()
            if renamed:
                _rename_ids(tmp / "records.parquet", renamed)
            mapping = "lm-eval: prompt=doc_to_text, answer=doc_to_target" if mapper is None else mapper.describe()
            if errors:
                (tmp / "errors.jsonl").write_text("".join(json.dumps(_error_json(e)) + "\n" for e in errors),
                                                  encoding="utf-8")
            atomic_write_json(tmp / "manifest.json", {
                "name": name, "version": version, "kind": kind, "rows": writer.rows,
                "errors": error_count, "duplicate_ids": len(renamed), "created_at": utc_now(),
                "source": label, "format": fmt, "mapping": mapping,
                **({"provenance": provenance} if provenance else {}),
            })
    except WorkspaceError as exc:
        raise IngestError(str(exc)) from exc
    return IngestReport(ref, kind, writer.rows, mapping, errors, error_count, len(renamed), _notes(spanning))


def _error_json(error: RowError) -> dict[str, Any]:
    out = {"file": error.file, "line": error.line, "message": error.message}
    return out | ({"last_line": error.last_line} if error.last_line else {})


def _notes(spanning: list[tuple[int, int]]) -> list[str]:
    """Imported CSV records over several lines: legitimate line breaks in quoted fields, or a stray quote."""
    if not spanning:
        return []
    first, last = max(spanning, key=lambda span: span[1] - span[0])
    return [f"{len(spanning)} records span several lines (line breaks inside quoted fields); the longest is "
            f"lines {first}-{last}. If that is not intended, a quote is not closed where it should be."]


def read_errors(ws: Workspace, ref: DatasetRef) -> list[RowError]:
    path = ws.dataset_dir(ref) / "errors.jsonl"
    if not path.exists():
        return []
    return [RowError(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
