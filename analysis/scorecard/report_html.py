"""One self-contained HTML report of a scorecard, to hand to a reviewer.

Everything is inline: styles in a ``<style>`` block, charts rendered to SVG with
vl-convert (Vega-Lite without a browser), no script, no font, no link that loads
anything. Every string from the data is HTML-escaped. PII values never appear:
evidence tables show masked values only (PII inside texts is masked too), and long
texts are cut.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd

from synthscope.core.workspace import Workspace, WorkspaceError, atomic_write_text
from synthscope.scorecard import charts, report
from synthscope.scorecard.privacy import redact

EVIDENCE_ROWS = 20
TEXT_CHARS = 300
HIDDEN_COLUMNS = {"value", "normalized", "source_value"}  # raw PII; the masked column stays
SHOWN_EVIDENCE = {  # section -> tables worth a reviewer's eye, in order
    "contamination": ["benchmarks"],
    "quality": ["duplicate_clusters", "invalid_rows"],
    "bias": ["clusters", "attributes"],
    "privacy": ["replay_by_entity", "pii_hits", "near_copies"],
}
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #212121; line-height: 1.45; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.86rem; margin: 0.6rem 0 1rem; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid #e0e0e0; vertical-align: top; }
th { background: #f5f5f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.grade { display: inline-block; padding: 0.05rem 0.5rem; border-radius: 0.8rem; color: white; font-weight: 600;
         font-size: 0.8rem; }
.pass { background: #2e7d32; } .warn { background: #f9a825; color: #212121; } .fail { background: #c62828; }
.info { background: #607d8b; }
.meta { color: #616161; font-size: 0.9rem; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; } .chart { flex: 0 0 auto; }
.note { color: #5d4037; font-size: 0.88rem; }
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _badge(grade: str) -> str:
    return f'<span class="grade {_esc(grade)}">{_esc(grade.upper())}</span>'


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="num">{"—" if value != value else f"{value:.4g}"}</td>'
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    text = "" if value is None else redact(str(value))
    if len(text) > TEXT_CHARS:
        text = text[:TEXT_CHARS] + "…"
    return f"<td>{_esc(text)}</td>"


def table_html(frame: pd.DataFrame, limit: int = EVIDENCE_ROWS) -> str:
    """An escaped HTML table of the first ``limit`` rows, raw PII columns left out."""
    frame = frame[[c for c in frame.columns if c not in HIDDEN_COLUMNS]]
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>"
                   for row in frame.head(limit).itertuples(index=False))
    more = f'<p class="meta">{len(frame) - limit} more rows in the workspace.</p>' if len(frame) > limit else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def svg(chart: Any) -> str:
    """A chart as inline SVG (vl-convert renders Vega-Lite without a browser)."""
    import vl_convert

    return vl_convert.vegalite_to_svg(chart.to_dict())


def _trend(trends: pd.DataFrame, key: str, policy: Any) -> Any:
    """A metric's trend chart at the report's size (its headline wrapped to fit)."""
    return charts.metric_trend(trends, key, policy, height=160, title_chars=40).properties(width=300)


def render(ws: Workspace, manifest: dict[str, Any]) -> str:
    """The report of the scorecard ``manifest`` as one HTML document."""
    report_id = manifest["report_id"]
    metrics = report.metrics(ws, report_id)
    ref = f"{manifest['dataset']}@{manifest['version']}"
    inputs = ", ".join(f"{k} {manifest[k]}" for k in ("reference", "source", "holdout") if manifest.get(k)) or "none"
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>synthscope report — {_esc(ref)}"
             f"</title><style>{STYLE}</style></head><body>",
             f"<h1>{_esc(ref)} {_badge(manifest['status'])}</h1>",
             f'<p class="meta">Scorecard {_esc(report_id)}, measured {_esc(manifest["created_at"])} against '
             f"{_esc(inputs)}; graded by {_esc(manifest['policy'])} (sha256 {_esc(manifest['policy_digest'])}).</p>",
             "<table><thead><tr><th>section</th><th>grade</th></tr></thead><tbody>"
             + "".join(f"<tr><td>{_esc(s)}</td><td>{_badge(g)}</td></tr>" for s, g in manifest["sections"].items())
             + "</tbody></table>"]
    policy = report.policy_of(manifest)
    trends = report.version_trends(ws)
    trends = trends[trends["dataset"] == manifest["dataset"]]
    for section in report.SECTIONS:
        rows = metrics[metrics["section"] == section]
        parts.append(f"<h2>{_esc(section.capitalize())} {_badge(manifest['sections'].get(section, 'info'))}</h2>")
        parts.append("<table><thead><tr><th>metric</th><th>value</th><th>grade</th><th>policy</th><th>behind it</th>"
                     "</tr></thead><tbody>" + "".join(
                         f"<tr><td>{_esc(r.label)}<br><span class=\"meta\">{_esc(r.key)}</span></td>{_cell(r.value)}"
                         f"<td>{_badge(r.grade)}</td><td>{_esc(r.rule)}</td><td>{_esc(r.detail)}</td></tr>"
                         for r in rows.itertuples()) + "</tbody></table>")
        graded = [k for k in rows["key"] if k in policy.rules]
        if trends["version"].nunique() > 1 and graded:
            parts.append('<div class="charts">' + "".join(
                f'<div class="chart">{svg(_trend(trends, key, policy))}</div>'
                for key in graded if trends.loc[trends["key"] == key, "value"].notna().any()) + "</div>")
        for table in SHOWN_EVIDENCE[section]:
            try:
                frame = report.evidence(ws, report_id, section, table)
            except WorkspaceError:  # a table this section did not produce is simply not shown
                continue
            if frame.empty:
                continue
            if section == "bias" and table == "clusters":
                parts.append(f'<div class="chart">{svg(charts.cluster_shares(frame).properties(width=900))}</div>')
            parts.append(f"<h3>{_esc(table.replace('_', ' '))}</h3>{table_html(frame)}")
    if manifest.get("notes"):
        parts.append("<h2>Not measured</h2>" + "".join(f'<p class="note">{_esc(n)}</p>' for n in manifest["notes"]))
    parts.append('<p class="meta">Made by synthscope. Every number here is in the workspace: '
                 f"<code>synthscope sql \"SELECT * FROM report_metrics WHERE report_id = '{_esc(report_id)}'\"</code>"
                 "</p></body></html>")
    return "".join(parts)


def write(ws: Workspace, manifest: dict[str, Any], path: Path) -> Path:
    """Render and write atomically (a failed render leaves no half-written file)."""
    atomic_write_text(path, render(ws, manifest))
    return path
