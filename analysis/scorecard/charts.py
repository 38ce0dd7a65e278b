"""Altair charts of scorecards, shared by the dashboard and the HTML report (no Streamlit here).

Each function takes the data frame :mod:`synthscope.scorecard.report` returns and gives back an
Altair chart; the dashboard draws it with ``st.altair_chart``, the HTML report
renders it to inline SVG with vl-convert (no JavaScript, no network).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from synthscope.scorecard.policy import Policy

GRADE_COLOURS = {"pass": "#2e7d32", "warn": "#f9a825", "fail": "#c62828", "info": "#607d8b"}


def metric_trend(frame: pd.DataFrame, key: str, policy: Policy | None = None, height: int = 220) -> alt.LayerChart:
    """One metric across a dataset's versions (``frame``: :func:`synthscope.scorecard.report.version_trends` rows of one
    dataset), points coloured by grade, the policy's warn and fail bounds as dashed rules."""
    data = frame[frame["key"] == key].dropna(subset=["value"])
    label = data["label"].iloc[0] if len(data) else key
    order = list(data.sort_values("order")["version"])
    base = alt.Chart(data).encode(x=alt.X("version:N", sort=order, title="version"))
    line = base.mark_line(color="#546e7a").encode(y=alt.Y("value:Q", title=label))
    dots = base.mark_circle(size=90, opacity=1).encode(
        y="value:Q",
        color=alt.Color("grade:N", scale=alt.Scale(domain=list(GRADE_COLOURS), range=list(GRADE_COLOURS.values())),
                        legend=alt.Legend(title="grade", orient="top")),
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
    return alt.layer(*layers).properties(height=height, title=label)


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
