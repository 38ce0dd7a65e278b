"""Quality metrics against direct computations on small fixed inputs (analysis.quality)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from analysis import quality

BASE = [f"ticket {i}: the {w} arrived late and the box was damaged near the corner, please send a new one soon"
        for i, w in enumerate(["router", "lamp", "keyboard", "webcam", "charger", "speaker"])]
DISTINCT = [f"completely different sentence number {i} about topic {t} with its own words {t * 3}"
            for i, t in enumerate("abcdefghij")]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_planted_exact_and_near_duplicates_are_found_in_their_clusters() -> None:
    texts = DISTINCT + [DISTINCT[2], DISTINCT[2].upper(), "  " + DISTINCT[5]]  # exact after normalisation
    texts += [DISTINCT[7] + " indeed"]  # near: one word added
    assert quality.exact_duplicates(texts) == [[2, 10, 11], [5, 12]]
    near = {(a, b) for a, b, _ in quality.near_duplicate_pairs(texts, 0.8)}
    assert (7, 13) in near and all(b not in range(10) or a in (2, 5, 7) for a, b in near)
    section = quality.quality_section(texts, [f"r{i}" for i in range(len(texts))])
    assert section.metric("quality.exact_duplicate_rate").value == pytest.approx(3 / 14)
    assert section.metric("quality.near_duplicate_rate").value == pytest.approx(4 / 14)
    assert quality.exact_duplicates(DISTINCT) == [] and quality.near_duplicate_pairs(DISTINCT) == []


def test_distinct_n_is_a_hand_count() -> None:
    texts = ["a b a b", "b c"]
    assert quality.distinct_n(texts, 1) == pytest.approx(3 / 6)
    assert quality.distinct_n(texts, 2) == pytest.approx(3 / 4)  # ab, ba, ab | bc
    assert math.isnan(quality.distinct_n(["one"], 2))


def test_mean_pairwise_distance_equals_the_full_matrix() -> None:
    v = unit(np.random.default_rng(0).normal(size=(30, 8)))
    d = 1 - v.astype(np.float64) @ v.T.astype(np.float64)
    expected = d[~np.eye(30, dtype=bool)].mean()
    assert quality.mean_pairwise_distance(v) == pytest.approx(expected, abs=1e-6)


def test_cluster_entropy_of_even_and_lopsided_clusters() -> None:
    assert quality.cluster_entropy(np.array([0, 0, 1, 1]), 2) == pytest.approx(1.0)
    assert quality.cluster_entropy(np.array([0, 0, 0, 0]), 2) == 0.0
    p = np.array([0.75, 0.25])
    assert quality.cluster_entropy(np.array([0, 0, 0, 1]), 2) == pytest.approx(-(p * np.log(p)).sum() / np.log(2))


def test_js_divergence_bounds_and_scipy() -> None:
    p, q = np.array([0.2, 0.5, 0.3]), np.array([0.4, 0.4, 0.2])
    assert quality.js_divergence(p, p) == 0.0
    assert quality.js_divergence(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    assert quality.js_divergence(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2)


def brute_knn(s: np.ndarray, r: np.ndarray, k: int) -> tuple[float, float]:
    def radii(x: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(x[:, None] - x[None], axis=2)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    def inside(q: np.ndarray, c: np.ndarray, rad: np.ndarray) -> float:
        return float((np.linalg.norm(q[:, None] - c[None], axis=2) <= rad[None]).any(1).mean())

    return inside(s, r, radii(r)), inside(r, s, radii(s))


def test_knn_precision_recall_match_the_definition_and_drop_when_shifted() -> None:
    rng = np.random.default_rng(1)
    r = rng.normal(size=(80, 5)).astype(np.float32)
    s = rng.normal(size=(60, 5)).astype(np.float32)
    got = quality.knn_precision_recall(s, r, 5)
    assert got == pytest.approx(brute_knn(s, r, 5), abs=1e-9)
    shifted = s + 3.0
    p, _ = quality.knn_precision_recall(shifted, r, 5)
    assert p == pytest.approx(brute_knn(shifted, r, 5)[0]) and p < got[0] - 0.5


@pytest.mark.parametrize("text, reason", [
    ("   ", "empty"), ("Hello {customer_name}, your order shipped.", "template residue"),
    ("Dear {{ name }}, thanks", "template residue"), ("As an AI language model, I cannot", "template residue"),
    ("<|im_start|>assistant hi", "template residue"), ("```python\nprint(1)\n", "unclosed code fence"),
    ("The refund will be processed within five days and", "dangling"), ("It was great and then...", "ellipsis"),
])
def test_invalid_rows_are_found_with_their_reason(text: str, reason: str) -> None:
    assert reason in (quality.invalid_reason(text) or "")


def test_clean_rows_are_not_invalid() -> None:
    for text in DISTINCT + BASE + ["Use {} for formatting? No: f-strings.", "def f(x):\n    return {x: 1}"]:
        assert quality.invalid_reason(text) is None, text


def test_section_says_what_it_could_not_measure() -> None:
    section = quality.quality_section(DISTINCT, [str(i) for i in range(10)])
    assert math.isnan(section.metric("quality.knn_precision").value)
    assert math.isnan(section.metric("quality.structure_jsd").value)
    assert any("reference" in n for n in section.notes) and any("embeddings" in n for n in section.notes)
    with_ref = quality.quality_section(DISTINCT, [str(i) for i in range(10)], reference_texts=DISTINCT,
                                       vectors=unit(np.eye(10, 12) + 0.1), reference_vectors=unit(np.eye(10, 12) + 0.1))
    assert with_ref.metric("quality.structure_jsd").value == 0.0  # the same texts: the same structure
    assert with_ref.metric("quality.knn_precision").value == 1.0
    assert not with_ref.evidence["structure"].empty
