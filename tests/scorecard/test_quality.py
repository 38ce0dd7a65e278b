"""Quality metrics against direct computations on small fixed inputs (synthscope.scorecard.quality)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from synthscope.algorithms import clusters as grouping
from synthscope.algorithms import lsh
from synthscope.core.text import tokenize
from synthscope.scorecard import quality

TOPICS = "router lamp keyboard webcam charger speaker kettle blender monitor printer".split()
# Ten texts of 20 words with no 5-gram in common (each has its own topic word in every sentence).
DISTINCT = [f"my {t} stopped working after {i + 2} days so I called support about the {t} and they said wait"
            for i, t in enumerate(TOPICS)]
QUALITY_KEYS = {
    "quality.exact_duplicate_rate", "quality.near_duplicate_rate", "quality.distinct_1", "quality.distinct_2",
    "quality.mean_pairwise_distance", "quality.cluster_entropy", "quality.structure_jsd",
    "quality.jsd_sentences_per_record", "quality.jsd_words_per_sentence", "quality.jsd_chars_per_word",
    "quality.knn_precision", "quality.knn_recall", "quality.invalid_rate",
}


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def shingles(text: str, k: int = 5) -> set[tuple[str, ...]]:
    words = tokenize(text)
    return {tuple(words[i:i + k]) for i in range(len(words) - k + 1)}


def brute_near_pairs(texts: list[str], threshold: float) -> set[tuple[int, int]]:
    """Every pair at word-5-gram Jaccard >= threshold, by the definition, in plain Python."""
    sets = [shingles(t) for t in texts]
    return {(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))
            if sets[i] and sets[j] and len(sets[i] & sets[j]) / len(sets[i] | sets[j]) >= threshold}


# -- duplicates -----------------------------------------------------------------------------


def long_text(seed: int, n: int = 60) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"w{i}" for i in rng.choice(10_000, n, replace=False)]


def test_planted_exact_and_near_duplicates_are_found_in_their_clusters() -> None:
    texts = list(DISTINCT)
    texts += [DISTINCT[2], DISTINCT[2].upper(), "  " + DISTINCT[5].replace(" ", "\n ")]  # 10, 11, 12: exact
    texts += [DISTINCT[7] + " indeed"]  # 13: one word more, Jaccard 16/17
    edited = long_text(1)
    texts += [" ".join(edited)]  # 14
    edited[30] = "changed"
    texts += [" ".join(edited)]  # 15: one word changed mid-text, Jaccard 51/61
    far = long_text(2)
    texts += [" ".join(far), " ".join(far[:30] + long_text(3, 30))]  # 16, 17: half shared, Jaccard 26/90
    texts += ["", "   "]  # 18, 19: blank rows are never duplicates

    assert quality.exact_duplicates(texts) == [[2, 10, 11], [5, 12]]
    pairs = quality.near_duplicate_pairs(texts, 0.8)
    brute = brute_near_pairs(texts, 0.8)
    assert {(a, b) for a, b, _ in pairs} <= brute  # rows with equal shingle sets are paired with the first only
    assert grouping.duplicate_clusters(len(texts), [(a, b) for a, b, _ in pairs]) == grouping.duplicate_clusters(
        len(texts), sorted(brute)) == [[2, 10, 11], [5, 12], [7, 13], [14, 15]]
    assert (16, 17) not in brute
    sets = [shingles(t) for t in texts]
    for a, b, score in pairs:
        assert score == pytest.approx(len(sets[a] & sets[b]) / len(sets[a] | sets[b]))

    section = quality.quality_section(texts, [f"r{i}" for i in range(len(texts))])
    assert section.metric("quality.exact_duplicate_rate").value == pytest.approx(3 / 20)
    assert section.metric("quality.near_duplicate_rate").value == pytest.approx(5 / 20)
    assert section.metric("quality.near_duplicate_rate").detail.startswith("5 of 20 rows in 4 clusters")
    table = section.evidence["duplicate_clusters"]
    assert list(table.columns) == ["cluster", "kind", "record_id", "text", "size", "jaccard"]
    exact = table[table["kind"] == "exact"]
    assert sorted(exact.groupby("cluster")["record_id"].apply(sorted)) == [["r10", "r11", "r2"], ["r12", "r5"]]
    near = table[table["kind"] == "near"]
    assert sorted(near.groupby("cluster")["record_id"].apply(sorted)) == [
        ["r10", "r11", "r2"], ["r12", "r5"], ["r13", "r7"], ["r14", "r15"]]
    assert near.loc[near["record_id"] == "r15", "jaccard"].item() == pytest.approx(51 / 61)
    assert set(near.loc[near["record_id"].isin(["r2", "r10"]), "size"]) == {3}


def test_distinct_texts_have_no_duplicates() -> None:
    assert quality.exact_duplicates(DISTINCT) == [] and quality.near_duplicate_pairs(DISTINCT) == []
    section = quality.quality_section(DISTINCT, [str(i) for i in range(10)])
    assert section.metric("quality.exact_duplicate_rate").value == 0.0
    assert section.metric("quality.near_duplicate_rate").value == 0.0
    assert section.evidence["duplicate_clusters"].empty


def test_a_crowded_lsh_bucket_still_joins_its_near_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    base = long_text(5, 40)
    texts = [" ".join(base[:-1] + [f"end{i}"]) for i in range(12)]  # pairwise Jaccard 35/37
    monkeypatch.setattr(lsh, "MAX_BUCKET", 3)  # every shared band is "crowded": star and chain only
    clusters = grouping.duplicate_clusters(len(texts), [(a, b) for a, b, _ in quality.near_duplicate_pairs(texts)])
    assert clusters == [list(range(12))]


# -- diversity ------------------------------------------------------------------------------


def test_distinct_n_is_a_hand_count() -> None:
    texts = ["a b a b", "B, c!"]
    assert quality.distinct_n(texts, 1) == pytest.approx(3 / 6)  # a b a b b c
    assert quality.distinct_n(texts, 2) == pytest.approx(3 / 4)  # ab ba ab | bc (no "b b" across texts)
    assert math.isnan(quality.distinct_n(["one"], 2))
    assert math.isnan(quality.distinct_n([], 1))


def test_distinct_n_matches_the_tokenizer_on_unicode() -> None:
    texts = ["Straße STRASSE straße ü Ü", "naïve café — naïve Café", "日本 語 日本", DISTINCT[0], DISTINCT[1]]
    for n in (1, 2, 3):
        grams = [tuple(w[i:i + n]) for t in texts for w in [tokenize(t)] for i in range(len(w) - n + 1)]
        assert quality.distinct_n(texts, n) == pytest.approx(len(set(grams)) / len(grams))


@pytest.mark.parametrize("n", [30, 2500])
def test_mean_pairwise_distance_equals_the_full_matrix(n: int) -> None:
    v = unit(np.random.default_rng(n).normal(size=(n, 8)) + 0.5)
    w = v.astype(np.float64)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    d = 1 - w @ w.T
    expected = d[~np.eye(n, dtype=bool)].mean()
    assert quality.mean_pairwise_distance(v) == pytest.approx(expected, abs=1e-9)
    assert math.isnan(quality.mean_pairwise_distance(v[:1]))


def test_cluster_entropy_of_even_and_lopsided_clusters() -> None:
    assert quality.cluster_entropy(np.array([0, 0, 1, 1]), 2) == pytest.approx(1.0)
    assert quality.cluster_entropy(np.array([0, 0, 0, 0]), 2) == 0.0
    p = np.array([0.75, 0.25])
    assert quality.cluster_entropy(np.array([0, 0, 0, 1]), 2) == pytest.approx(-(p * np.log(p)).sum() / np.log(2))
    assert quality.cluster_entropy(np.array([0, 1, 2, 2]), 4) == pytest.approx(
        -(2 * 0.25 * np.log(0.25) + 0.5 * np.log(0.5)) / np.log(4))


def test_cluster_entropy_of_two_constructed_clusters() -> None:
    rng = np.random.default_rng(3)
    v = unit(np.vstack([np.eye(1, 6, 0) * 5 + rng.normal(scale=0.1, size=(6, 6)),
                        np.eye(1, 6, 3) * 5 + rng.normal(scale=0.1, size=(2, 6))]))
    assert quality.entropy_clusters(len(v)) == 2
    labels, _ = grouping.kmeans(v, 2)
    assert len(set(labels[:6])) == 1 and len(set(labels[6:])) == 1 and labels[0] != labels[6]
    p = np.array([0.75, 0.25])
    section = quality.quality_section([f"row {i}" for i in range(8)], [str(i) for i in range(8)], vectors=v)
    assert section.metric("quality.cluster_entropy").value == pytest.approx(-(p * np.log(p)).sum() / np.log(2))


# -- structure ------------------------------------------------------------------------------


def test_structure_features_by_hand() -> None:
    features = quality.structure_features(["Hi there. How are you?\nFine", "", "One sentence, four words"])
    assert features["sentences_per_record"] == [3, 0, 1]
    assert features["words_per_sentence"] == [2, 3, 1, 4]
    assert features["chars_per_word"] == [2, 5, 3, 3, 3, 4, 3, 8, 4, 5]


def test_shared_histograms_bin_and_overflow() -> None:
    p, q, bins = quality.shared_histograms([0, 1, 1, 2], [2, 2, 2, 50], quantile=75)
    # cap = ceil(75th percentile of the union [0 1 1 2 2 2 2 50]) = 2; 50 falls in the overflow bin
    assert bins == ["0", "1", "2", ">2"]
    assert p.tolist() == [0.25, 0.5, 0.25, 0.0] and q.tolist() == [0.0, 0.0, 0.75, 0.25]


def test_js_divergence_bounds_and_scipy() -> None:
    p, q = np.array([0.2, 0.5, 0.3, 0.0]), np.array([0.4, 0.4, 0.0, 0.2])
    assert quality.js_divergence(p, p) == 0.0
    assert quality.js_divergence(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    assert quality.js_divergence(np.array([3, 1, 0, 0]), np.array([0, 0, 2, 2])) == pytest.approx(1.0)
    assert quality.js_divergence(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2)
    assert quality.js_divergence(np.array([2, 5, 3, 0]), np.array([4, 4, 0, 2])) == pytest.approx(
        jensenshannon(p, q, base=2) ** 2)  # counts are normalised
    assert math.isnan(quality.js_divergence(np.zeros(3), p[:3]))


def test_structure_divergence_of_the_same_and_of_different_texts() -> None:
    jsds, table = quality.structure_divergence(DISTINCT, list(reversed(DISTINCT)))
    assert all(v == 0.0 for v in jsds.values())
    short = ["Yes. No. Ok."] * 5
    jsds, table = quality.structure_divergence(DISTINCT, short)
    assert jsds["sentences_per_record"] == pytest.approx(1.0)  # 1 sentence per record against 3
    assert jsds["words_per_sentence"] == pytest.approx(1.0)  # 20 words against 1
    mine, theirs = quality.structure_features(DISTINCT), quality.structure_features(short)
    p, q, _ = quality.shared_histograms(mine["chars_per_word"], theirs["chars_per_word"])
    assert jsds["chars_per_word"] == pytest.approx(jensenshannon(p, q, base=2) ** 2)
    assert set(table["feature"]) == set(quality.STRUCTURE_FEATURES)
    for _, shares in table.groupby("feature"):
        assert shares[["synthetic_share", "reference_share"]].sum().tolist() == pytest.approx([1, 1])


# -- fidelity -------------------------------------------------------------------------------


def brute_knn(s: np.ndarray, r: np.ndarray, k: int) -> tuple[float, float]:
    """Kynkäänniemi et al.'s definition, in float64 with full distance matrices."""
    s, r = s.astype(np.float64), r.astype(np.float64)

    def radii(x: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(x[:, None] - x[None], axis=2)
        np.fill_diagonal(d, np.inf)  # the point itself is excluded
        return np.sort(d, axis=1)[:, k - 1]

    def inside(q: np.ndarray, c: np.ndarray, rad: np.ndarray) -> float:
        return float((np.linalg.norm(q[:, None] - c[None], axis=2) <= rad[None]).any(1).mean())

    return inside(s, r, radii(r)), inside(r, s, radii(s))


def test_knn_precision_recall_match_the_definition_and_drop_when_shifted() -> None:
    rng = np.random.default_rng(1)
    r = rng.normal(size=(80, 5)).astype(np.float32)
    s = rng.normal(size=(60, 5)).astype(np.float32)
    got = quality.knn_precision_recall(s, r, 5)
    assert got == pytest.approx(brute_knn(s, r, 5), abs=1e-12)
    assert 0.5 < got[0] <= 1 and 0.5 < got[1] <= 1
    shifted = s + 2.0
    p, rec = quality.knn_precision_recall(shifted, r, 5)
    assert (p, rec) == pytest.approx(brute_knn(shifted, r, 5), abs=1e-12)
    assert p < got[0] - 0.3
    narrow = (s * 0.3).astype(np.float32)  # synthetic rows in the middle only: realistic, but low coverage
    p, rec = quality.knn_precision_recall(narrow, r, 5)
    assert (p, rec) == pytest.approx(brute_knn(narrow, r, 5), abs=1e-12)
    assert rec < got[1] - 0.2
    for k in (1, 3):
        assert quality.knn_precision_recall(s, r, k) == pytest.approx(brute_knn(s, r, k), abs=1e-12)


def test_knn_radii_with_duplicate_points() -> None:
    x = np.array([[0, 0], [0, 0], [0, 0], [3, 4], [6, 8]], dtype=np.float32)
    assert quality.knn_radii(x, 1).tolist() == [0.0, 0.0, 0.0, 5.0, 5.0]
    assert quality.knn_radii(x, 2).tolist() == [0.0, 0.0, 0.0, 5.0, 10.0]
    assert quality.knn_radii(x, 3).tolist() == [5.0, 5.0, 5.0, 5.0, 10.0]
    assert math.isnan(quality.knn_precision_recall(x, x, 5)[0])  # needs more than k points


def test_a_point_on_a_ball_boundary_is_inside() -> None:
    reference = np.array([[i, 0] for i in range(10)], dtype=np.float32)  # 2nd-NN radius 2 at the ends, 1 inside
    synthetic = np.array([[-2, 0], [4.5, 0], [11, 0], [12, 0], [5, 1.5]], dtype=np.float32)
    inside = quality.inside_balls(synthetic, reference, quality.knn_radii(reference, 2))
    assert inside.tolist() == [True, True, True, False, False]  # -2 and 11 lie exactly on an end's ball
    precision = quality.knn_precision_recall(synthetic, reference, 2)[0]
    assert precision == brute_knn(synthetic, reference, 2)[0] == 0.6


# -- invalid rows ---------------------------------------------------------------------------

MID_SENTENCE = ("The shipment left the warehouse on Monday. It was expected within three business days. However the "
                "courier reported a delay at the regional sorting hub and told the customer it would arrive by the end "
                "of the wee")


@pytest.mark.parametrize("text, reason", [
    ("   \n\t", "empty"),
    ("Hello {customer_name}, your order shipped.", "template residue: unfilled {slot} '{customer_name}'"),
    ("Dear {{ name }}, thanks", "template residue: unfilled {{ var }}"),
    ("Please call <CUSTOMER_NAME> today.", "template residue: unfilled <SLOT>"),
    ("Best regards, [Your Name]", "template residue: unfilled [slot]"),
    ("As an AI language model, I cannot do that.", "echoed instruction 'as an ai language model'"),
    ("Here is the rewritten text: the parcel is late.", "echoed instruction 'here is the rewritten'"),
    ("Sure! Here's a question about tax.", "echoed instruction 'sure! here'"),
    ("<|im_start|>assistant hi", "template residue: chat-template token"),
    ("[INST] write a poem [/INST] roses are red.", "template residue: chat-template token"),
    ("```python\nprint(1)\n", "truncated: unclosed code fence"),
    ("The total is (3 + 4 * 2 and then we add", "truncated: unclosed '('"),
    ("The refund will be processed within five days and", "truncated: ends with a dangling 'and'"),
    ("Items you need: flour, sugar, eggs,", "truncated: ends with a dangling comma"),
    ("It was great and then...", "truncated: ends with an ellipsis"),
    ("It was great and then…", "truncated: ends with an ellipsis"),
    (MID_SENTENCE, "truncated: stops mid-sentence"),
])
def test_invalid_rows_are_found_with_their_reason(text: str, reason: str) -> None:
    assert reason in (quality.invalid_reason(text) or "")


CLEAN = DISTINCT + [
    "Use {} for formatting? No: f-strings.", "def f(x):\n    return {x: 1}", "Use `f'{name}'` to format.",
    "```python\nprint(f'{name}')\n```", "The answer is $\\frac{a}{b}$ and $x^{2}$.", "<div>hello</div>",
    "const s = `${user}`;", "Natalia sold 48/2 = 24 clips.\n#### 72", "I like rock and roll", "Take vitamin A",
    "Smile :)", "1) flour 2) sugar", "Q: What is 2+2?\n\nA: 4", MID_SENTENCE + "k.", "Here is the answer: 42.",
]


def test_clean_rows_are_not_invalid() -> None:
    for text in CLEAN:
        assert quality.invalid_reason(text) is None, text


def test_invalid_patterns_and_phrases_are_configurable() -> None:
    text = "Dear customer, %NAME% will call. Regenerate response"
    assert quality.invalid_reason(text) is None
    got = quality.invalid_reason(text, residue={"percent slot": r"%[A-Z]+%"}, phrases=("regenerate response",))
    assert got == "template residue: percent slot '%NAME%'; template residue: echoed instruction 'regenerate response'"


def test_invalid_rows_evidence_and_rate() -> None:
    texts = ["", "Fine row here.", "Hello {first_name}!", "It stops here and...", "Another fine row."]
    section = quality.quality_section(texts, ["a", "b", "c", "d", "e"])
    metric = section.metric("quality.invalid_rate")
    assert metric.value == pytest.approx(3 / 5) and not metric.higher_is_better
    assert metric.detail == "3 of 5 rows invalid: 1 empty, 1 template residue, 1 truncated"
    table = section.evidence["invalid_rows"]
    assert table["record_id"].tolist() == ["a", "c", "d"] and list(table.columns) == ["record_id", "reason", "text"]


# -- the section ----------------------------------------------------------------------------


def test_section_without_reference_or_embeddings_says_what_it_could_not_measure() -> None:
    section = quality.quality_section(DISTINCT, [str(i) for i in range(10)])
    assert section.name == "quality" and {m.key for m in section.metrics} == QUALITY_KEYS
    for key in ("quality.mean_pairwise_distance", "quality.cluster_entropy", "quality.structure_jsd",
                "quality.jsd_words_per_sentence", "quality.knn_precision", "quality.knn_recall"):
        metric = section.metric(key)
        assert math.isnan(metric.value) and metric.detail, key
    assert "no embeddings" in section.metric("quality.cluster_entropy").detail
    assert "no reference" in section.metric("quality.structure_jsd").detail
    assert any("reference" in n for n in section.notes) and any("embeddings" in n for n in section.notes)
    assert section.metric("quality.distinct_1").defined and "structure" not in section.evidence
    # reference texts without embeddings: structure is measured, fidelity is not
    section = quality.quality_section(DISTINCT, [str(i) for i in range(10)], reference_texts=DISTINCT[:5])
    assert section.metric("quality.structure_jsd").defined and not section.metric("quality.knn_recall").defined


def test_section_with_reference_and_embeddings() -> None:
    rng = np.random.default_rng(0)
    v = unit(rng.normal(size=(10, 12)))
    section = quality.quality_section(DISTINCT, [str(i) for i in range(10)], vectors=v, reference_texts=DISTINCT,
                                      reference_vectors=v)
    assert {m.key for m in section.metrics} == QUALITY_KEYS and all(m.defined for m in section.metrics)
    assert section.metric("quality.structure_jsd").value == 0.0  # the same texts: the same structure
    assert section.metric("quality.knn_precision").value == 1.0 and section.metric("quality.knn_recall").value == 1.0
    higher = {m.key for m in section.metrics if m.higher_is_better}
    assert higher == {"quality.distinct_1", "quality.distinct_2", "quality.mean_pairwise_distance",
                      "quality.cluster_entropy", "quality.knn_precision", "quality.knn_recall"}
    assert list(section.evidence["structure"].columns) == ["feature", "bin", "synthetic_share", "reference_share"]
    assert section.notes == []


def test_zero_vectors_of_empty_rows_are_left_out() -> None:
    rng = np.random.default_rng(2)
    v = unit(rng.normal(size=(12, 6)))
    texts = DISTINCT + ["", ""]
    with_empty = np.vstack([v[:10], np.zeros((2, 6), dtype=np.float32)])
    section = quality.quality_section(texts, [str(i) for i in range(12)], vectors=with_empty,
                                      reference_texts=DISTINCT, reference_vectors=v[:10])
    assert section.metric("quality.mean_pairwise_distance").value == pytest.approx(
        quality.mean_pairwise_distance(v[:10]))
    assert "2 empty rows left out" in section.metric("quality.mean_pairwise_distance").detail
    assert section.metric("quality.knn_precision").value == 1.0


def test_vectors_must_match_the_texts() -> None:
    with pytest.raises(ValueError, match="one row per text"):
        quality.quality_section(DISTINCT, [str(i) for i in range(10)], vectors=np.zeros((9, 4), dtype=np.float32))
