"""Ingestion: files, Hugging Face ``save_to_disk`` folders and lm-eval tasks → records.

Every source is read as a stream of rows, each with the line (text formats) or
row number (tables) it came from. A row that cannot be read or mapped becomes a
:class:`RowError` naming file and line; the other rows still load. Problems
with the whole file (missing, empty, undecodable CSV or JSON array) raise
:class:`IngestError`. A dataset version is written to a staging folder and moved
into the workspace only when complete, so a failed import changes nothing.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from synthscope.core import schemas
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

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


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
    include_path: str | None = None  # lm-eval: extra folder of task YAMLs
    strict: bool = False  # refuse the whole import if any row is bad


@dataclass
class IngestReport:
    ref: DatasetRef
    kind: str
    rows: int
    mapping: str
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    duplicate_ids: int = 0


@dataclass
class _Row:
    line: int
    data: dict[str, Any] | None = None
    error: str | None = None
    fields: Fields | None = None  # set by sources that map rows themselves (lm-eval)
    doc_id: int | None = None
    doc_hash: str | None = None


# -- format detection ------------------------------------------------------------------


def detect_format(source: Path) -> str:
    if source.is_dir():
        if any((source / f).exists() for f in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return "hf"
        raise IngestError(f"{source} is a folder but not a Hugging Face save_to_disk folder (no dataset_info.json)")
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


def _decode_whole(path: Path, encoding: str) -> str:
    with _open_binary(path) as fh:
        data = fh.read()
    if not data.strip():
        raise IngestError(f"{path} is empty: there are no rows to import")
    try:
        return data.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise IngestError(
            f"{path}:{line}: not valid {encoding} (byte 0x{data[exc.start]:02x}); "
            "re-encode the file as UTF-8 or pass --encoding with the file's encoding"
        ) from exc
    except LookupError as exc:
        raise IngestError(f"unknown encoding {encoding!r}") from exc


# -- readers ---------------------------------------------------------------------------


def _read_jsonl(path: Path, opts: IngestOptions) -> Iterator[_Row]:
    with _open_binary(path) as fh:
        for line, raw in enumerate(fh, start=1):
            if len(raw) > opts.max_record_bytes:
                yield _Row(line, error=_too_big(len(raw), opts))
                continue
            try:
                text = raw.decode(opts.encoding)
            except UnicodeDecodeError as exc:
                yield _Row(line, error=f"not valid {opts.encoding} (byte 0x{raw[exc.start]:02x} at column "
                                       f"{exc.start + 1}); the other lines still load")
                continue
            if line == 1:
                text = text.lstrip("\ufeff")
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield _Row(line, error=f"malformed JSON: {exc.msg} (column {exc.colno})")
                continue
            if not isinstance(obj, dict):
                yield _Row(line, error=f"expected a JSON object, found {type(obj).__name__}")
                continue
            yield _Row(line, obj)


def _read_json(path: Path, opts: IngestOptions) -> Iterator[_Row]:
    text = _decode_whole(path, opts.encoding)
    decoder = json.JSONDecoder()
    i = _skip_ws(text, 0)
    if text[i] == "{":
        # One object: either JSON Lines saved as .json, or {"<key>": [rows]}.
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            yield _Row(exc.lineno, error=f"malformed JSON: {exc.msg} (column {exc.colno})")
            return
        if _skip_ws(text, end) < len(text):
            yield from _read_jsonl(path, opts)
            return
        lists = [k for k, v in obj.items() if isinstance(v, list)]
        if len(lists) != 1:
            yield _Row(1, obj)
            return
        for n, row in enumerate(obj[lists[0]], start=1):
            yield _Row(n, row) if isinstance(row, dict) else _Row(n, error="expected a JSON object")
        return
    if text[i] != "[":
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
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            yield _Row(line, error=f"malformed JSON in the element starting on this line: {exc.msg} "
                                   f"(line {exc.lineno}, column {exc.colno}); the rest of the array could not be read")
            return
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


def _read_csv(path: Path, opts: IngestOptions) -> Iterator[_Row]:
    text = _decode_whole(path, opts.encoding)
    csv.field_size_limit(max(2 * opts.max_record_bytes, 1 << 17))
    delimiter = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header_wanted = opts.header if opts.header is not None else opts.preset != "mmlu"
    names: list[str] | None = None
    last_line = 0
    while True:
        start = last_line + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            last_line = reader.line_num
            yield _Row(start, error=f"malformed CSV: {exc}")
            continue
        last_line = reader.line_num
        if not values or all(not v.strip() for v in values):
            continue
        if names is None:
            if header_wanted:
                names = [v.strip() or f"col{i}" for i, v in enumerate(values)]
                continue
            names = [f"col{i}" for i in range(len(values))]
        if len(values) != len(names):
            yield _Row(start, error=f"expected {len(names)} fields, found {len(values)}")
            continue
        yield _Row(start, dict(zip(names, values, strict=True)))


def _read_parquet(path: Path, opts: IngestOptions) -> Iterator[_Row]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise IngestError(f"{path} is not a readable Parquet file: {exc}") from exc
    n = 0
    for batch in pf.iter_batches(batch_size=1000):
        for row in batch.to_pylist():
            n += 1
            yield _Row(n, row)


def _read_hf(path: Path, opts: IngestOptions) -> Iterator[_Row]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise IngestError(f"{path} could not be loaded as a save_to_disk folder: {exc}") from exc
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        split = opts.split or ("test" if "test" in splits else splits[0])
        if split not in loaded:
            raise IngestError(f"{path} has no split {split!r}; splits: {', '.join(splits)}")
        loaded = loaded[split]
    for n, row in enumerate(loaded, start=1):
        yield _Row(n, dict(row))


def _read_lm_eval(task_name: str, opts: IngestOptions) -> Iterator[_Row]:
    """Docs of an lm-eval task as lm-eval evaluates them, so eval logs join on ``doc_id``."""
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import handle_non_serializable, hash_string

    try:
        manager = TaskManager(include_path=opts.include_path)
        loaded = manager.load([task_name])["tasks"]
    except Exception as exc:  # lm-eval raises many types; the message is what matters
        hint = ""
        if "offline" in str(exc).lower() or "hub" in str(exc).lower():
            hint = (" — the task's data is on the Hugging Face Hub and synthscope runs offline by default;"
                    " pass --online (or set SYNTHSCOPE_ONLINE=1) to download it")
        raise IngestError(f"could not load lm-eval task {task_name!r}: {exc}{hint}") from exc
    if task_name not in loaded:
        raise IngestError(f"{task_name!r} is a group of lm-eval tasks ({', '.join(loaded)}); import them one by one")
    task = loaded[task_name]
    for doc_id, doc in enumerate(task.eval_docs):
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
        yield _Row(doc_id + 1, doc, fields=Fields(str(prompt), answer, str(doc_id)),
                   doc_id=doc_id, doc_hash=doc_hash)


_READERS = {"jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv, "parquet": _read_parquet, "hf": _read_hf}


def _too_big(size: int, opts: IngestOptions) -> str:
    return (f"record is {size / 1e6:.1f} MB, over the {opts.max_record_bytes / 1e6:.1f} MB limit; "
            "raise it with --max-record-mb if such records are expected")


# -- mapping ---------------------------------------------------------------------------


def _mapper(opts: IngestOptions, first_row: dict[str, Any] | None) -> Mapper:
    if opts.prompt_fields:
        return Columns(opts.prompt_fields, opts.answer_fields, opts.id_field, name="custom")
    if opts.answer_fields or opts.id_field:
        raise IngestError("an answer or id field was named without --prompt-field; name the prompt field too")
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


def ingest(ws: Workspace, source: str | Path, *, name: str, kind: str, version: str | None = None,
           options: IngestOptions | None = None, source_label: str | None = None,
           provenance: dict[str, Any] | None = None) -> IngestReport:
    """Import ``source`` as a new version of dataset ``name``; see the module docstring.

    ``source_label`` names the source in the manifest and in row errors when the
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
    fmt = opts.format
    if fmt is not None and fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    if fmt == "lm-eval":
        label = f"lm-eval:{source}"
        rows = _read_lm_eval(str(source), opts)
    else:
        path = Path(source)
        if not path.exists():
            raise IngestError(f"{path} does not exist")
        if path.is_file() and path.stat().st_size == 0:
            raise IngestError(f"{path} is empty: there are no rows to import")
        fmt = fmt or detect_format(path)
        label = source_label or str(path)
        rows = _READERS[fmt](path, opts)

    ref = DatasetRef(name, version)
    errors: list[RowError] = []
    error_count = 0
    duplicates = 0
    mapper: Mapper | None = None
    seen: dict[str, int] = {}

    def fail(line: int | None, message: str) -> None:
        nonlocal error_count
        error_count += 1
        if len(errors) < MAX_ERRORS_KEPT:
            errors.append(RowError(label, line, message))

    try:
        with ws.staged(ws.datasets_dir / name / version) as tmp:
            writer = _RecordWriter(tmp / "records.parquet", ref, kind)
            for row in rows:
                if row.error is not None:
                    fail(row.line, row.error)
                    continue
                if row.fields is None and mapper is None:
                    mapper = _mapper(opts, row.data)
                try:
                    fields = row.fields or mapper.extract(row.data)  # type: ignore[union-attr]
                except MissingField as exc:
                    fail(row.line, str(exc))
                    continue
                raw = json.dumps(row.data, ensure_ascii=False, default=str)
                size = len(raw.encode("utf-8"))
                if size > opts.max_record_bytes:
                    fail(row.line, _too_big(size, opts))
                    continue
                record_id = fields.id or _content_id(fields)
                if record_id in seen:
                    seen[record_id] += 1
                    duplicates += 1
                    record_id = f"{record_id}~{seen[record_id]}"
                else:
                    seen[record_id] = 1
                writer.add({"record_id": record_id, "source_line": row.line, "prompt": fields.prompt,
                            "answer": fields.answer, "raw": raw, "doc_id": row.doc_id,
                            "doc_hash": row.doc_hash})
            writer.close()
            if writer.rows == 0:
                detail = "; ".join(str(e) for e in errors[:3])
                raise IngestError(f"no row of {label} could be imported" + (f": {detail}" if detail else ""))
            if error_count and opts.strict:
                raise IngestError(f"{error_count} bad rows in {label} and --strict is set; first: {errors[0]}")
            mapping = "lm-eval: prompt=doc_to_text, answer=doc_to_target" if mapper is None else mapper.describe()
            if errors:
                (tmp / "errors.jsonl").write_text(
                    "".join(json.dumps({"file": e.file, "line": e.line, "message": e.message}) + "\n"
                            for e in errors), encoding="utf-8")
            atomic_write_json(tmp / "manifest.json", {
                "name": name, "version": version, "kind": kind, "rows": writer.rows,
                "errors": error_count, "duplicate_ids": duplicates, "created_at": utc_now(),
                "source": label, "format": fmt, "mapping": mapping,
                **({"provenance": provenance} if provenance else {}),
            })
    except WorkspaceError as exc:
        raise IngestError(str(exc)) from exc
    return IngestReport(ref, kind, writer.rows, mapping, errors, error_count, duplicates)


def read_errors(ws: Workspace, ref: DatasetRef) -> list[RowError]:
    path = ws.dataset_dir(ref) / "errors.jsonl"
    if not path.exists():
        return []
    return [RowError(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
