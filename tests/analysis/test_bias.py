"""Bias metrics against hand computations (analysis.bias)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis import bias

WORDS = {0: "billing invoice charge refund", 1: "parcel courier delivery tracking", 2: "password login account reset"}


def blobs(shares: list[float], n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 16) * 4
    which = np.repeat(np.arange(3), np.round(np.array(shares) * n).astype(int))
    v = centres[which] + rng.normal(scale=0.2, size=(len(which), 16))
    texts = [f"{WORDS[c]} ticket {i}" for i, c in enumerate(which)]
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32), texts


def test_the_over_represented_topic_is_named() -> None:
    sv, st_ = blobs([0.7, 0.2, 0.1], 100, 0)
    rv, rt = blobs([1 / 3, 1 / 3, 1 / 3], 99, 1)
    section = bias.bias_section(st_, [f"s{i}" for i in range(len(st_))], vectors=sv, reference_texts=rt,
                                reference_ids=[f"r{i}" for i in range(len(rt))], reference_vectors=rv)
    clusters = section.evidence["clusters"]
    over = clusters[clusters["status"] == "over"]
    assert len(over) >= 1 and all("billing" in label or "invoice" in label or "charge" in label or "refund" in label
                                  for label in over["label"])
    # TVD over the clusters equals the hand value of the planted shares when the clusters are the three blobs
    assert section.metric("bias.cluster_tvd").value == pytest.approx(
        bias.tvd(clusters["synthetic_n"].to_numpy(), clusters["reference_n"].to_numpy()))
    assert section.metric("bias.cluster_tvd").value == pytest.approx(0.5 * (0.7 - 1 / 3 + 1 / 3 - 0.2 + 1 / 3 - 0.1),
                                                                     abs=0.02)
    assert set(section.evidence["cluster_examples"]["side"]) == {"synthetic", "reference"}


def test_tvd_by_hand() -> None:
    assert bias.tvd(np.array([1, 1]), np.array([1, 1])) == 0.0
    assert bias.tvd(np.array([3, 1]), np.array([1, 3])) == pytest.approx(0.5)
    assert math.isnan(bias.tvd(np.array([0, 0]), np.array([1, 1])))


def test_attribute_counts_use_whole_words() -> None:
    texts = ["She called; her parcel is late.", "He wrote twice.", "The theme park", "Her father paid"]
    counts = bias.attribute_counts(texts, bias.DEFAULT_ATTRIBUTES["gender"])
    assert counts == {"female": 2, "male": 2}  # "theme" is not "he"; row 4 mentions both
    table, tvds = bias.attribute_balance(texts, ["she", "she", "he"], {"gender": bias.DEFAULT_ATTRIBUTES["gender"]})
    assert tvds["gender"] == pytest.approx(abs(0.5 - 2 / 3))
    assert set(table["group"]) == {"female", "male"}


def test_labels_and_missing_inputs() -> None:
    section = bias.bias_section(["a", "b", "c"], ["1", "2", "3"], labels=["x", "x", "y"],
                                reference_labels=["x", "y", "y", "y"])
    assert section.metric("bias.label_tvd").value == pytest.approx(abs(2 / 3 - 1 / 4))
    assert math.isnan(section.metric("bias.cluster_tvd").value) and section.notes
