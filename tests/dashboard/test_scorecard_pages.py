"""The scorecard pages (Overview wall, Quality & Bias, Privacy, Trends) on the demo workspace, through AppTest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.scorecard import report
from synthscope.scorecard.metrics import format_value

GRADE = re.compile(r"^:(?P<colour>\w+)-badge\[(?P<word>pass|warn|fail|info)\] ")
COLOURS = {"pass": "green", "warn": "orange", "fail": "red", "info": "gray"}
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F]")
PAGE_NAMES = ["Overview", "Datasets", "Contamination", "Calibration", "Quality & Bias", "Privacy", "Trends",
              "Generate", "Runs", "Compare"]


def tables(at: AppTest) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe]


def test_overview_has_one_card_per_version_with_links_to_the_evidence(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws)
    links = [(p.proto.label, p.proto.page, p.proto.query_string) for p in at.get("page_link")]
    cards = [lk for lk in links if "dataset=support-synth" in (lk[2] or "")]
    assert len(cards) == 4 * 4  # four versions, four sections each
    v3 = [lk for lk in cards if lk[2] == "dataset=support-synth%40v3"]
    assert any(label.startswith(":red-badge[fail] privacy — ") and "PII replay" in label for label, _, _ in v3), v3
    assert any(label.startswith(":green-badge[pass] privacy") for label, _, q in cards if q.endswith("v4"))
    assert "**support-synth@v4** · :green-badge[pass]" in [m.value for m in at.markdown]
    assert "**support-synth@v1** · :red-badge[fail]" in [m.value for m in at.markdown]


def test_grades_read_as_words_and_no_icon_stands_alone(open_app, demo_ws: Path) -> None:
    """Every grade on the Overview is its word in a coloured badge; no page or link carries an emoji icon."""
    at = open_app(demo_ws)
    labels = [p.proto.label for p in at.get("page_link")]
    card_lines = [lb for lb in labels if " — " in lb]
    assert len(card_lines) == 16
    words = [GRADE.match(lb) for lb in card_lines]
    assert all(words), card_lines
    assert {m["word"] for m in words} >= {"pass", "fail"}
    assert all(COLOURS[m["word"]] == m["colour"] for m in words)
    headers = [m.value for m in at.markdown if m.value.startswith("**support-synth@")]
    assert [h.rsplit(" · ", 1)[1] for h in headers] == [":red-badge[fail]"] * 3 + [":green-badge[pass]"]
    assert [p.proto.icon for p in at.get("page_link")] == [""] * len(labels)
    assert {p["page_name"]: p["icon"] for p in at._registered_pages.values()} == dict.fromkeys(PAGE_NAMES, "")
    shown = [*labels, *(m.value for m in at.markdown), *(c.value for c in at.caption)]
    assert not [t for t in shown if EMOJI.search(t)]


def test_grade_markup_is_a_word_in_colour_and_escapes_anything_else() -> None:
    from synthscope.dashboard.components.safe import md
    from synthscope.dashboard.components.scorecard import badge, coloured, grade_style

    assert [badge(g) for g in ("pass", "warn", "fail", "info")] == [
        ":green-badge[pass]", ":orange-badge[warn]", ":red-badge[fail]", ":gray-badge[info]"]
    assert coloured("fail") == ":red[fail]" and coloured("pass") == ":green[pass]"
    hostile = "x] ![b](http://h/p.png)"
    assert badge(hostile) == f":gray-badge[{md(hostile)}]" and badge("") == ":gray-badge[?]"
    assert "color" in grade_style("fail") and grade_style("nonsense") == ""


def test_privacy_page_opens_on_the_linked_version_with_values_masked(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, "app_pages/privacy.py", dataset="support-synth@v3")
    assert at.selectbox(key="pv_dataset").value == "support-synth@v3"
    metrics = next(t for t in tables(at) if "shown" in t.columns).set_index("key")
    assert metrics.loc["privacy.pii_replay_rate", "grade"] == "fail"
    hits = next(t for t in tables(at) if "masked" in t.columns)
    assert "value" not in hits.columns and hits["replayed"].any()
    copies = next(t for t in tables(at) if "synthetic_text" in t.columns)
    ws = Workspace.open(demo_ws)
    manifest = report.latest(ws, DatasetRef("support-synth", "v3"))
    raw = report.evidence(ws, manifest["report_id"], "privacy", "pii_hits")
    email = raw.loc[raw["entity"] == "email", "value"].iloc[0]
    assert not copies["synthetic_text"].str.contains(email, regex=False).any()  # masked inside texts too
    at.toggle(key="pv_reveal").set_value(True).run()
    hits = next(t for t in tables(at) if "masked" in t.columns)
    assert "value" in hits.columns and email in set(hits["value"])


def test_quality_page_shows_the_duplicates_of_v1(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, "app_pages/quality.py", dataset="support-synth@v1")
    metrics = next(t for t in tables(at) if "shown" in t.columns).set_index("key")
    assert metrics.loc["quality.exact_duplicate_rate", "grade"] == "fail"
    assert set(metrics["grade"]) <= {"pass", "warn", "fail", "info"}
    clusters = next(t for t in tables(at) if "cluster" in t.columns and "kind" in t.columns)
    assert (clusters["kind"] == "exact").any()
    invalid = next(t for t in tables(at) if "reason" in t.columns)
    assert invalid["reason"].str.startswith("template residue").all() and len(invalid) == 6


def test_trends_draw_each_graded_metric_with_the_policy_bounds(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, "app_pages/trends.py")
    assert at.selectbox(key="tr_dataset").value == "support-synth"
    assert [m.value for m in at.metric][:4] == [":red[fail]", ":red[fail]", ":red[fail]", ":green[pass]"]
    charts = list(at.get("vega_lite_chart"))
    assert len(charts) == len(at.multiselect(key="tr_metrics").value) >= 8
    spec = json.loads(charts[0].proto.spec)
    assert len(spec["layer"]) == 3  # line, graded points, the policy's bounds


def test_each_trend_chart_is_large_and_headed_by_where_its_metric_stands(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, "app_pages/trends.py")
    trends = report.version_trends(Workspace.open(demo_ws))
    mine = trends[trends["dataset"] == "support-synth"]
    newest = mine[mine["order"] == mine["order"].max()].set_index("label")
    shown = at.multiselect(key="tr_metrics").value
    charts = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert len(charts) == len(shown)
    for key, spec in zip(shown, charts, strict=True):
        assert spec["height"] >= 320
        (headline,) = spec["title"]["text"]
        label, rest = headline.split(": ", 1)
        row = newest.loc[label]
        assert row["key"] == key and rest == f"{format_value(key, row['value'])} in {row['version']} ({row['grade']})"
        (change,) = spec["title"]["subtitle"]
        assert change.startswith(("up from", "down from", "unchanged since")), change
        axes = spec["layer"][0]["encoding"]
        assert axes["y"]["axis"]["tickCount"] == 5 and axes["x"]["axis"]["labelAngle"] == 0
