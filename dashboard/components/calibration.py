"""Calibration charts: a stage's recall, precision and FPR against its threshold, and its score distributions.

Both mark the recommended threshold (solid rule) and the one in use now (dashed).
The data comes from :mod:`synthscope.contamination.calibration_results`; these only draw.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from synthscope.dashboard.components.widgets import is_missing

METRIC_COLOURS = {"recall": "#2e7d32", "precision": "#1565c0", "item_fpr": "#c62828", "pair_fpr": "#ef9a9a"}
LABEL_COLOURS = {"positive": "#c62828", "negative": "#607d8b"}
RULE_STYLES = {"recommended": [], "current": [5, 4]}


def _rules(recommended: float | None, current: float | None) -> alt.Chart | None:
    rows = [{"rule": name, "threshold": float(value)} for name, value in
            (("recommended", recommended), ("current", current)) if not is_missing(value)]
    if not rows:
        return None
    return alt.Chart(pd.DataFrame(rows)).mark_rule(color="#424242", strokeWidth=1.5).encode(
        x="threshold:Q",
        strokeDash=alt.StrokeDash("rule:N", title="threshold",
                                  scale=alt.Scale(domain=list(RULE_STYLES), range=list(RULE_STYLES.values()))),
        tooltip=[alt.Tooltip("rule:N", title="threshold"), alt.Tooltip("threshold:Q", format=".3f", title="value")],
    )


def threshold_chart(curves: pd.DataFrame, score_name: str, recommended: float | None,
                    current: float | None, height: int = 260) -> alt.LayerChart:
    """Step lines of recall, precision, item and pair FPR (``curves``: ``threshold, metric, value``) with the rules.

    Steps go *before* each point: a threshold between two swept scores flags what the higher one flags.
    """
    lines = alt.Chart(curves).mark_line(interpolate="step-before", strokeWidth=2).encode(
        x=alt.X("threshold:Q", title=f"threshold ({score_name})"),
        y=alt.Y("value:Q", title="rate", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("metric:N", title="metric", scale=alt.Scale(domain=list(METRIC_COLOURS),
                                                                    range=list(METRIC_COLOURS.values()))),
        tooltip=["metric:N", alt.Tooltip("threshold:Q", format=".3f"), alt.Tooltip("value:Q", format=".1%")],
    )
    rules = _rules(recommended, current)
    layers = [lines] if rules is None else [lines, rules]
    return alt.layer(*layers).properties(height=height).resolve_scale(color="independent")


def distribution_chart(histogram: pd.DataFrame, score_name: str, recommended: float | None,
                       current: float | None, height: int = 260) -> alt.LayerChart:
    """Share of known positives and of items' hardest negatives per score bin (overlaid bars) with the two rules."""
    bars = alt.Chart(histogram).mark_bar(opacity=0.55, binSpacing=0).encode(
        x=alt.X("bin_start:Q", title=score_name, bin="binned"),
        x2="bin_end:Q",
        y=alt.Y("share:Q", title="share of the label's scores", stack=None, axis=alt.Axis(format="%")),
        color=alt.Color("label:N", title="scores", scale=alt.Scale(domain=list(LABEL_COLOURS),
                                                                  range=list(LABEL_COLOURS.values()))),
        tooltip=["label:N", alt.Tooltip("bin_start:Q", format=".2f", title="from"),
                 alt.Tooltip("bin_end:Q", format=".2f", title="to"), "pairs:Q",
                 alt.Tooltip("share:Q", format=".1%")],
    )
    rules = _rules(recommended, current)
    layers = [bars] if rules is None else [bars, rules]
    return alt.layer(*layers).properties(height=height).resolve_scale(color="independent")
