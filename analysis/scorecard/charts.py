"""Altair charts of scorecards, shared by the dashboard and the HTML report (no Streamlit here).

Each function takes the data frame :mod:`synthscope.scorecard.report` returns and gives back an
Altair chart; the dashboard draws it with ``st.altair_chart``, the HTML report
renders it to inline SVG with vl-convert (no JavaScript, no network).
"""

from __future__ import annotations

import textwrap

import altair as alt
import pandas as pd

from synthscope.scorecard.metrics import format_value
from synthscope.scorecard.policy import Policy

GRADE_COLOURS = {"pass": "#2e7d32", "warn": "#f9a825", "fail": "#c62828", "info": "#607d8b"}


PERCENT_WORDS = ("rate", "share", "precision", "recall")  # as format_value reads a metric's key


def trend_headline(frame: pd.DataFrame, key: str) -> tuple[str, str]:
    """A trend chart's headline and the line under it: the newest version's value and grade, then how it moved
    since the version before (better or worse where the metric has a direction). ``frame`` as for
    :func:`metric_trend`; ``("Topic skew: 0.0625 in v4 (pass)", "up from 0.0583 in v3, worse")``."""
    data = frame[frame["key"] == key].dropna(subset=["value"]).sort_values("order")
    if data.empty:
        return f"{key}: not measured", ""
    last = data.iloc[-1]
    graded = f" ({last['grade']})" if last["grade"] in ("pass", "warn", "fail") else ""
    headline = f"{last['label']}: {format_value(key, last['value'])} in {last['version']}{graded}"
    if len(data) < 2:
        return headline, "the first version scored"
    before = data.iloc[-2]
    now, then = format_value(key, last["value"]), format_value(key, before["value"])
    if now == then:
        return headline, f"unchanged since {before['version']}"
    up = last["value"] > before["value"]
    better = None if pd.isna(last["higher_is_better"]) else bool(last["higher_is_better"]) == up
    verdict = "" if better is None else (", better" if better else ", worse")
    return headline, f"{'up' if up else 'down'} from {then} in {before['version']}{verdict}"


def metric_trend(frame: pd.DataFrame, key: str, policy: Policy | None = None, height: int = 360,
                 title_chars: int = 48) -> alt.LayerChart:
    """One metric across a dataset's versions (``frame``: :func:`synthscope.scorecard.report.version_trends` rows of one
    dataset), points coloured by grade, the policy's warn and fail bounds as dashed rules.

    The title is the headline (:func:`trend_headline`), the change under it, each wrapped at ``title_chars``;
    ``height`` is the whole chart's (title and legend included). The value axis has about five ticks, in percent
    for shares and rates, and the version labels stay level."""
    data = frame[frame["key"] == key].dropna(subset=["value"])
    order = list(data.sort_values("order")["version"])
    percent = any(word in key.rsplit(".", 1)[-1] for word in PERCENT_WORDS)
    y_axis = alt.Axis(tickCount=5, format=".1~%" if percent else "~g", title=None, labelFontSize=12)
    base = alt.Chart(data).encode(x=alt.X("version:N", sort=order, title=None,
                                          axis=alt.Axis(labelAngle=0, labelFontSize=12)))
    line = base.mark_line(color="#546e7a", strokeWidth=2).encode(y=alt.Y("value:Q", axis=y_axis))
    dots = base.mark_circle(size=110, opacity=1).encode(
        y="value:Q",
        color=alt.Color("grade:N", scale=alt.Scale(domain=list(GRADE_COLOURS), range=list(GRADE_COLOURS.values())),
                        legend=alt.Legend(title="grade", orient="top", values=sorted(set(data["grade"]),
                                                                                    key=list(GRADE_COLOURS).index))),
        tooltip=["version:N", alt.Tooltip("value:Q", format=".4g"), "grade:N", "detail:N"])
    layers: list[alt.Chart] = [line, dots]
    rule = policy.rules.get(key) if policy else None
    if rule is not None:
        bounds = [(name, value) for name in ("warn_above", "fail_above", "warn_below", "fail_below")
                  if (value := getattr(rule, name)) is not None]
        if bounds:
            lines = pd.DataFrame({"bound": [b for b, _ in bounds], "value": [v for _, v in bounds],
                                  "grade": [b.split("_")[0] for b, _ in bounds]})
            layers.append(alt.Chart(lines).mark_rule(strokeDash=[5, 4], strokeWidth=1.5).encode(
                y="value:Q",
                color=alt.Color("grade:N", scale=alt.Scale(domain=list(GRADE_COLOURS),
                                                           range=list(GRADE_COLOURS.values())), legend=None),
                tooltip=["bound:N", alt.Tooltip("value:Q", format=".4g")]))
    headline, change = trend_headline(frame, key)
    title = alt.TitleParams(textwrap.wrap(headline, title_chars), subtitle=textwrap.wrap(change, title_chars) or "",
                            anchor="start", fontSize=15, fontWeight="bold", subtitleFontSize=13, offset=10)
    return alt.layer(*layers).properties(height=height, title=title)


def cluster_shares(clusters: pd.DataFrame, height: int = 260) -> alt.Chart:
    """Per cluster, the synthetic and the reference share side by side (bias evidence ``clusters``)."""
    long = clusters.melt(id_vars=["cluster", "label", "status"], value_vars=["synthetic_share", "reference_share"],
                         var_name="side", value_name="share")
    long["side"] = long["side"].str.replace("_share", "", regex=False)
    long["name"] = long["cluster"].astype(str) + ": " + long["label"].astype(str)
    return alt.Chart(long).mark_bar().encode(
        x=alt.X("name:N", title=None, sort=list(dict.fromkeys(long["name"])),
                axis=alt.Axis(labelAngle=-30, labelLimit=180)),
        xOffset=alt.XOffset("side:N", sort=["synthetic", "reference"]),
        y=alt.Y("share:Q", axis=alt.Axis(format="%"), title="share of rows"),
        color=alt.Color("side:N", sort=["synthetic", "reference"],
                        scale=alt.Scale(domain=["synthetic", "reference"], range=["#e65100", "#90a4ae"])),
        tooltip=["name:N", "side:N", alt.Tooltip("share:Q", format=".1%"), "status:N"],
    ).properties(height=height)


def structure_shares(structure: pd.DataFrame, height: int = 200) -> alt.Chart:
    """Histograms of the structure features, synthetic vs reference (quality evidence ``structure``)."""
    long = structure.melt(id_vars=["feature", "bin"], value_vars=["synthetic_share", "reference_share"],
                          var_name="side", value_name="share")
    long["side"] = long["side"].str.replace("_share", "", regex=False)
    long["bin"] = long["bin"].astype(str)
    return alt.Chart(long).mark_bar(opacity=0.8).encode(
        x=alt.X("bin:N", title=None, sort=None),
        xOffset=alt.XOffset("side:N", sort=["synthetic", "reference"]),
        y=alt.Y("share:Q", axis=alt.Axis(format="%"), title=None),
        color=alt.Color("side:N", scale=alt.Scale(domain=["synthetic", "reference"], range=["#e65100", "#90a4ae"])),
        tooltip=["feature:N", "bin:N", "side:N", alt.Tooltip("share:Q", format=".1%")],
    ).properties(height=height, width=260).facet(column=alt.Column("feature:N", title=None)).resolve_scale(
        x="independent")
