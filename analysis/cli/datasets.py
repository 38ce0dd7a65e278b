"""Workspaces and datasets: ``init``, ``ingest``, ``datasets``, ``sql``."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from decimal import Decimal
from typing import Any

import duckdb

from synthscope.cli.common import CliError, add_command, open_workspace, table
from synthscope.core import hub
from synthscope.core.workspace import KINDS, Workspace


def cmd_init(args: argparse.Namespace) -> int:
    ws = Workspace.init(args.path)
    print(f"workspace ready at {ws.root}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from synthscope.datasets.ingest import IngestOptions, ingest  # noqa: I001 - kept beside its use

    ws = open_workspace(args)
    hub.configure(ws.root, args.online or None)
    opts = IngestOptions(
        format=args.format, preset=args.preset,
        prompt_fields=tuple(args.prompt_field or ()), answer_fields=tuple(args.answer_field or ()),
        id_field=args.id_field, header=args.header, split=args.split, encoding=args.encoding,
        max_record_bytes=int(args.max_record_mb * 1_000_000), include_path=args.include_path,
        strict=args.strict,
    )
    report = ingest(ws, args.source, name=args.name, kind=args.kind, version=args.version, options=opts)
    print(f"imported {report.rows} rows into {report.ref} ({report.kind}; {report.mapping})")
    if report.duplicate_ids:
        print(f"note: {report.duplicate_ids} rows repeat an earlier id; they were given suffixed ids (~2, ~3, ...)")
    for note in report.notes:
        print(f"note: {note}")
    if report.error_count:
        print(f"{report.error_count} rows were not imported:", file=sys.stderr)
        for error in report.errors[:20]:
            print(f"  {error}", file=sys.stderr)
        if report.error_count > 20:
            print(f"  ... and {report.error_count - 20} more in "
                  f"{ws.dataset_dir(report.ref).relative_to(ws.root)}/errors.jsonl", file=sys.stderr)
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    ws = open_workspace(args)
    rows = [(m["name"], m["version"], m["kind"], m["rows"], m["errors"], m["created_at"], m["source"])
            for m in ws.manifests()]
    print(table(rows, ["name", "version", "kind", "rows", "errors", "created", "source"]) if rows
          else "no datasets yet; import one with `synthscope ingest`")
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    ws = open_workspace(args)
    con = ws.connect()
    try:
        # Python values, not a pandas frame: a sum of integers (a HUGEINT) stays an integer, NULL stays None.
        cursor = con.execute(args.query)
        columns = [d[0] for d in cursor.description or ()]
        rows = cursor.fetchall() if columns else []
    except duckdb.Error as exc:
        raise CliError(f"the query failed: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()
    limit = args.limit if args.limit is not None else 50 if args.format == "table" else len(rows)
    shown, more = rows[:limit], len(rows) - limit
    if args.format == "table":
        print(table([["NULL" if v is None else v for v in row] for row in shown], columns))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_csv_value(v) for v in row] for row in shown)
    else:
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise CliError(f"two columns named {repeated[0]}: JSON objects need distinct keys; rename one with AS")
        lines = (json.dumps(dict(zip(columns, map(_plain, row), strict=True)), ensure_ascii=False, allow_nan=False)
                 for row in shown)
        print("[" + ",\n".join(lines) + "]")
    if more > 0:
        print(f"... {more} more rows (raise --limit)", file=sys.stdout if args.format == "table" else sys.stderr)
    return 0


def _plain(value: Any) -> Any:
    """A DuckDB value as JSON has it: NaN and infinities null, decimals numbers, times ISO 8601."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.is_finite() else _plain(float(value))
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _csv_value(value: Any) -> Any:
    """A DuckDB value as a CSV cell: NULL empty, nested values as JSON."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(_plain(value), ensure_ascii=False)
    if isinstance(value, Decimal):
        return str(value)  # as many decimals as its type has, like the table
    plain = _plain(value)
    return "" if plain is None else plain


def cmd_gc(args: argparse.Namespace) -> int:
    from synthscope.core.workspace import collect_garbage

    ws = Workspace.open(args.workspace, tidy=False)  # so that what it removes is reported
    ws.check_writable()
    garbage = collect_garbage(ws)
    for path in garbage.removed:
        print(f"removed {path}")
    print(f"removed {len(garbage.removed)} leftovers of ended processes ({garbage.freed_bytes / 1e6:.1f} MB)"
          + (f"; kept {len(garbage.kept)} that a running process may still be writing" if garbage.kept else ""))
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the datasets commands to the parser."""
    p = add_command(sub, "init", help="create a workspace", example="synthscope init ws")
    p.add_argument("path")
    p.set_defaults(func=cmd_init)

    p = add_command(sub, "ingest", parents=[common], help="import a dataset version",
                    description="Import a file, a save_to_disk folder or an lm-eval task as a new dataset version.",
                    notes="An lm-eval task YAML is code: lm-eval renders its templates with unsandboxed Jinja "
                          "and runs its !function hooks as you, as lm-eval itself does. Import only task "
                          "files (and --include-path folders) you trust.",
                    example="synthscope ingest HumanEval.jsonl.gz -w ws --name humaneval --kind benchmark "
                            "--preset humaneval")
    p.add_argument("source", help="file, save_to_disk folder, or lm-eval task name or task YAML (with --format "
                                  "lm-eval; a task YAML runs code)")
    p.add_argument("--name", required=True)
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--version", help="default: the next vN")
    p.add_argument("--format", choices=["jsonl", "json", "csv", "parquet", "hf", "lm-eval"],
                   help="default: from the file name")
    p.add_argument("--preset", choices=["humaneval", "mmlu", "gsm8k", "alpaca", "chat"],
                   help="field mapping preset (default: detected from the columns)")
    p.add_argument("--prompt-field", action="append", help="column(s) making the prompt; repeat to join several")
    p.add_argument("--answer-field", action="append", help="column(s) making the answer; repeat to join several")
    p.add_argument("--id-field", help="column holding a stable record id")
    header = p.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_true", default=None,
                        help="CSV: the first line names the columns (default, except for --preset mmlu)")
    header.add_argument("--no-header", dest="header", action="store_false")
    p.add_argument("--split", help="split of a save_to_disk DatasetDict (default: test, else the first)")
    p.add_argument("--encoding", default="utf-8")
    p.add_argument("--max-record-mb", type=float, default=1.0, help="larger records are reported, not loaded")
    p.add_argument("--include-path", help="lm-eval: folder of extra task YAMLs (code: they run as you)")
    p.add_argument("--online", action="store_true", help="allow downloads from the Hugging Face Hub")
    p.add_argument("--strict", action="store_true", help="import nothing if any row is bad")
    p.set_defaults(func=cmd_ingest)

    p = add_command(sub, "datasets", parents=[common], help="list dataset versions",
                    example="synthscope datasets -w ws")
    p.set_defaults(func=cmd_datasets)

    p = add_command(sub, "sql", parents=[common], help="query the workspace's DuckDB views",
                    example="synthscope sql -w ws \"SELECT item_id, bucket, coverage FROM latest_verdicts "
                            "WHERE verdict <> 'clean'\"")
    p.add_argument("query")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table",
                   help="table (default), or csv or json on stdout for piping (a JSON array of one object per row)")
    p.add_argument("--limit", type=int, help="at most N rows (default: 50 in a table, all in csv and json)")
    p.set_defaults(func=cmd_sql)
    p = add_command(sub, "gc", parents=[common],
                    help="remove staging folders and temporary files left by killed processes (never a running "
                         "one's)",
                    example="synthscope gc -w ws")
    p.set_defaults(func=cmd_gc)
