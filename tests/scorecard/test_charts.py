"""Trend charts: a headline stating where a metric is and where it went, a readable size, level labels."""

from __future__ import annotations

import pandas as pd

from synthscope.scorecard.charts import metric_trend, trend_headline
from synthscope.scorecard.policy import Policy, Rule


def trends(key: str, label: str, values: list[float], grades: list[str], higher_is_better: bool) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({"version": [f"v{i + 1}" for i in range(n)], "key": key, "label": label, "value": values,
                         "grade": grades, "higher_is_better": higher_is_better, "detail": "", "order": range(1, n + 1)})


def test_headline_states_the_newest_value_its_grade_and_the_change() -> None:
    skew = trends("bias.cluster_tvd", "Topic skew", [0.12, 0.53, 0.0583, 0.0625], ["pass", "fail", "pass", "pass"],
                  higher_is_better=False)
    assert trend_headline(skew, "bias.cluster_tvd") == ("Topic skew: 0.0625 in v4 (pass)",
                                                        "up from 0.0583 in v3, worse")
    dcr = trends("privacy.dcr_protection", "DCR protection", [0.5, 0.9], ["fail", "pass"], higher_is_better=True)
    assert trend_headline(dcr, "privacy.dcr_protection") == ("DCR protection: 0.9 in v2 (pass)",
                                                            "up from 0.5 in v1, better")
    share = trends("contamination.contaminated_share", "Contaminated share", [0.0, 0.0], ["pass", "pass"], False)
    assert trend_headline(share, "contamination.contaminated_share") == ("Contaminated share: 0.0% in v2 (pass)",
                                                                         "unchanged since v1")
    one = trends("quality.invalid_rate", "Invalid rows", [0.25], ["info"], False)
    assert trend_headline(one, "quality.invalid_rate") == ("Invalid rows: 25.0% in v1", "the first version scored")


def test_trend_chart_is_tall_titled_by_its_headline_with_few_level_ticks() -> None:
    skew = trends("bias.cluster_tvd", "Topic skew", [0.12, 0.53, 0.0583, 0.0625], ["pass", "fail", "pass", "pass"],
                  higher_is_better=False)
    policy = Policy({"bias.cluster_tvd": Rule("bias.cluster_tvd", warn_above=0.2, fail_above=0.4)})
    spec = metric_trend(skew, "bias.cluster_tvd", policy).to_dict()
    assert spec["height"] >= 320
    assert spec["title"]["text"] == ["Topic skew: 0.0625 in v4 (pass)"]
    assert spec["title"]["subtitle"] == ["up from 0.0583 in v3, worse"]
    line = spec["layer"][0]["encoding"]
    assert line["y"]["axis"]["tickCount"] == 5 and line["x"]["axis"]["labelAngle"] == 0
    assert len(spec["layer"]) == 3  # line, graded points, the policy's bounds
    share = trends("contamination.contaminated_share", "Contaminated share", [0.0, 0.01], ["pass", "warn"], False)
    axis = metric_trend(share, "contamination.contaminated_share").to_dict()["layer"][0]["encoding"]["y"]["axis"]
    assert axis["format"].endswith("%")
