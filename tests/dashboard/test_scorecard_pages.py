"""The scorecard pages (Overview wall, Quality & Bias, Privacy, Trends) on the demo workspace, through AppTest."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from synthscope.core.workspace import DatasetRef, Workspace
from synthscope.scorecard import report


def tables(at: AppTest) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe]


def test_overview_has_one_card_per_version_with_links_to_the_evidence(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws)
    links = [(p.proto.label, p.proto.page, p.proto.query_string) for p in at.get("page_link")]
    cards = [lk for lk in links if "dataset=support-synth" in (lk[2] or "")]
    assert len(cards) == 4 * 4  # four versions, four sections each
    v3 = [lk for lk in cards if lk[2] == "dataset=support-synth%40v3"]
    assert any(label.startswith("🔴 privacy — ") and "PII replay" in label for label, _, _ in v3), v3
    assert any(label.startswith("🟢 privacy") for label, _, q in cards if q.endswith("v4"))
    assert "**support-synth@v4** · 🟢 PASS" in [m.value for m in at.markdown]
    assert "**support-synth@v1** · 🔴 FAIL" in [m.value for m in at.markdown]


def test_privacy_page_opens_on_the_linked_version_with_values_masked(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, "app_pages/privacy.py", dataset="support-synth@v3")
    assert at.selectbox(key="pv_dataset").value == "support-synth@v3"
    metrics = next(t for t in tables(at) if "shown" in t.columns).set_index("key")
    assert metrics.loc["privacy.pii_replay_rate", "grade"] == "🔴 FAIL"
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
    assert metrics.loc["quality.exact_duplicate_rate", "grade"] == "🔴 FAIL"
    clusters = next(t for t in tables(at) if "cluster" in t.columns and "kind" in t.columns)
    assert (clusters["kind"] == "exact").any()
    invalid = next(t for t in tables(at) if "reason" in t.columns)
    assert invalid["reason"].str.startswith("template residue").all() and len(invalid) == 6


def test_trends_draw_each_graded_metric_with_the_policy_bounds(open_app, demo_ws: Path) -> None:
    at = open_app(demo_ws, "app_pages/trends.py")
    assert at.selectbox(key="tr_dataset").value == "support-synth"
    assert [m.value for m in at.metric][:4] == ["🔴 FAIL", "🔴 FAIL", "🔴 FAIL", "🟢 PASS"]
    charts = list(at.get("vega_lite_chart"))
    assert len(charts) == len(at.multiselect(key="tr_metrics").value) >= 8
    import json

    spec = json.loads(charts[0].proto.spec)
    assert len(spec["layer"]) == 3  # line, graded points, the policy's bounds
