"""Metrics of a dataset version: the one currency of the quality, bias and privacy sections.

A :class:`Section` is what one analysis (``quality``, ``bias``, ``privacy``)
says about one synthetic dataset version: its metrics, the evidence tables behind
them, and notes on what it could not measure. The report (:mod:`synthscope.scorecard.report`)
stores sections, the policy grades their metrics, and the pages draw them; none of
those needs to know how a metric was computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Metric:
    key: str  # "<section>.<name>", e.g. "privacy.pii_replay_rate": stable, policies name it
    value: float  # NaN when it cannot be computed here (``detail`` says why)
    label: str  # short, for a card: "PII replay"
    higher_is_better: bool
    detail: str = ""  # the numbers behind it, in words: "7 of 40 source PII values reappear"
    evidence: str | None = None  # the evidence table of the same section that backs it

    @property
    def defined(self) -> bool:
        return not math.isnan(self.value)


@dataclass
class Section:
    name: str  # "quality" | "bias" | "privacy"
    metrics: list[Metric] = field(default_factory=list)
    evidence: dict[str, pd.DataFrame] = field(default_factory=dict)  # rows behind the metrics, by table name
    notes: list[str] = field(default_factory=list)  # what was not measured and why

    def metric(self, key: str) -> Metric:
        for m in self.metrics:
            if m.key == key:
                return m
        raise KeyError(f"{self.name} has no metric {key!r}; it has {', '.join(m.key for m in self.metrics)}")


def format_value(key: str, value: float | None) -> str:
    """A metric value for a card: shares and rates as percentages, the rest to 3 significant digits; NaN as ``—``."""
    if value is None or math.isnan(value):
        return "—"
    name = key.rsplit(".", 1)[-1]
    if any(word in name for word in ("rate", "share", "precision", "recall")):
        return f"{value:.1%}"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.3g}"


def check_vectors(name: str, vectors: object, rows: int | None) -> None:
    """Refuse vectors that are not one row per text (``rows``); ``None`` (no vectors, or no texts) passes."""
    import numpy as np

    if vectors is None or rows is None:
        return
    shape = np.shape(vectors)
    if len(shape) != 2 or shape[0] != rows:
        raise ValueError(f"{name} must have one row per text ({rows}), got shape {shape}")
