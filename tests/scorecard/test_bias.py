"""Bias metrics against hand computations on small fixed inputs (synthscope.scorecard.bias)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthscope.scorecard import bias

WORDS = {0: "billing invoice charge refund", 1: "parcel courier delivery tracking", 2: "password login account reset"}
BIAS_KEYS = {"bias.cluster_tvd", "bias.skewed_clusters", "bias.attribute_tvd_max", "bias.attribute_tvd.gender",
             "bias.attribute_tvd.region", "bias.attribute_tvd.language", "bias.label_tvd"}


def blobs(counts: list[int], seed: int) -> tuple[np.ndarray, list[str]]:
    """Unit vectors around three orthogonal centres, ``counts[c]`` of them around centre ``c``, with topic texts."""
    rng = np.random.default_rng(seed)
    which = np.repeat(np.arange(3), counts)
    v = np.eye(3, 16)[which] * 4 + rng.normal(scale=0.2, size=(len(which), 16))
    texts = [f"{WORDS[c]} ticket {i}" for i, c in enumerate(which)]
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32), texts


def skewed_section(synthetic: list[int], reference: list[int]) -> tuple[bias.Section, np.ndarray, np.ndarray]:
    sv, st = blobs(synthetic, 0)
    rv, rt = blobs(reference, 1)
    section = bias.bias_section(st, [f"s{i}" for i in range(len(st))], vectors=sv, reference_texts=rt,
                                reference_ids=[f"r{i}" for i in range(len(rt))], reference_vectors=rv)
    return section, sv, rv


def test_the_over_represented_topic_is_the_planted_one() -> None:
    # 20 + 21 rows: k = round(sqrt(41 / 4)) = 3, one cluster per centre; shares 0.7/0.2/0.1 against 1/3 each
    section, sv, rv = skewed_section([14, 4, 2], [7, 7, 7])
    clusters = section.evidence["clusters"]
    assert list(clusters.columns) == ["cluster", "label", "synthetic_n", "reference_n", "synthetic_share",
                                      "reference_share", "ratio", "status"]
    assert clusters["status"].tolist() == ["over", "under", "balanced"]
    assert clusters["synthetic_n"].tolist() == [14, 2, 4] and clusters["reference_n"].tolist() == [7, 7, 7]
    assert clusters["ratio"].tolist() == pytest.approx([2.1, 0.3, 0.6])
    assert clusters["label"].tolist() == ["billing charge invoice", "account login password",
                                          "courier delivery parcel"]
    hand = 0.5 * (abs(0.7 - 1 / 3) + abs(0.2 - 1 / 3) + abs(0.1 - 1 / 3))
    assert section.metric("bias.cluster_tvd").value == pytest.approx(hand)
    assert section.metric("bias.skewed_clusters").value == 2
    assert "over 'billing charge invoice' (70% vs 33%)" in section.metric("bias.skewed_clusters").detail


def test_cluster_examples_are_the_rows_closest_to_the_centre() -> None:
    section, sv, rv = skewed_section([14, 4, 2], [7, 7, 7])
    examples = section.evidence["cluster_examples"]
    assert list(examples.columns) == ["cluster", "side", "record_id", "text"]
    over = section.evidence["clusters"].iloc[0]["cluster"]
    shown = examples[(examples["cluster"] == over) & (examples["side"] == "synthetic")]["record_id"].tolist()
    members = np.arange(14)  # the billing rows come first in the synthetic set
    centre = np.vstack([sv[:14], rv[:7]]).astype(np.float64).mean(axis=0)
    nearest = members[np.argsort(np.linalg.norm(sv[:14] - centre, axis=1))][:3]
    assert shown == [f"s{i}" for i in nearest]
    clusters = section.evidence["clusters"].set_index("cluster")
    for (cluster, side), rows in examples.groupby(["cluster", "side"]):
        assert len(rows) == min(3, clusters.loc[cluster, f"{side}_n"])  # the 0.1 topic has 2 synthetic rows


def test_a_larger_skewed_set_flags_only_the_planted_topic() -> None:
    # 100 + 99 rows: k = 7, so a centre may split into several clusters; each keeps its side's ratio
    section, _, _ = skewed_section([70, 20, 10], [33, 33, 33])
    clusters = section.evidence["clusters"]
    over = clusters[clusters["status"] == "over"]
    assert len(over) >= 1 and all(set(label.split()) <= set(WORDS[0].split()) for label in over["label"])
    assert not any(set(label.split()) & set(WORDS[0].split())
                   for label in clusters[clusters["status"] == "under"]["label"])
    assert section.metric("bias.cluster_tvd").value == pytest.approx(0.5 * (0.7 - 1 / 3 + 1 / 3 - 0.2 + 1 / 3 - 0.1),
                                                                     abs=0.03)


def test_balanced_sets_have_no_skewed_cluster() -> None:
    section, _, _ = skewed_section([7, 7, 7], [7, 7, 7])
    assert section.metric("bias.skewed_clusters").value == 0
    assert section.metric("bias.cluster_tvd").value == pytest.approx(0.0, abs=1e-12)


def test_cluster_status_thresholds() -> None:
    assert bias.cluster_status(0.10, 0.05) == "over"
    assert bias.cluster_status(0.04, 0.01) == "balanced"  # ratio 4, but under 5 % of the synthetic rows
    assert bias.cluster_status(0.02, 0.06) == "under"
    assert bias.cluster_status(0.01, 0.04) == "balanced"  # ratio 1/4, but under 5 % of the reference rows
    assert bias.cluster_status(0.3, 0.0) == "over"  # a topic the reference never has
    assert bias.cluster_status(0.375, 0.25) == "balanced"
    assert bias.cluster_status(0.375, 0.25, over_ratio=1.5) == "over"
    assert bias.cluster_status(0.1, 0.2, under_ratio=0.5, min_share=0.3) == "balanced"


def test_cluster_terms_are_a_class_based_tf_idf() -> None:
    texts = ["apple apple banana the", "apple cherry", "banana banana cherry 42", "cherry melon melon"]
    labels = np.array([0, 0, 1, 1])
    # content words (no stop word "the", no number): cluster 0 {apple 3, banana 1, cherry 1} of 5 words,
    # cluster 1 {banana 2, cherry 2, melon 2} of 6; A = 5.5; f(apple) = f(banana) = f(cherry) = 3, f(melon) = 2;
    # score = tf * log(1 + A / f)
    idf = {"apple": math.log(1 + 5.5 / 3), "banana": math.log(1 + 5.5 / 3), "cherry": math.log(1 + 5.5 / 3),
           "melon": math.log(1 + 5.5 / 2)}
    scores0 = {"apple": 3 / 5 * idf["apple"], "banana": 1 / 5 * idf["banana"], "cherry": 1 / 5 * idf["cherry"]}
    scores1 = {"banana": 2 / 6 * idf["banana"], "cherry": 2 / 6 * idf["cherry"], "melon": 2 / 6 * idf["melon"]}
    assert scores1["melon"] > scores1["banana"]  # as frequent in the cluster, rarer elsewhere: more distinctive
    want = [" ".join(sorted(s, key=lambda w: (-s[w], w))[:2]) for s in (scores0, scores1)]
    assert bias.cluster_terms(texts, labels, 2, words=2) == want == ["apple banana", "melon banana"]


def test_tvd_by_hand() -> None:
    assert bias.tvd(np.array([1, 1]), np.array([1, 1])) == 0.0
    assert bias.tvd(np.array([3, 1]), np.array([1, 3])) == pytest.approx(0.5)
    assert bias.tvd([1, 0], [0, 5]) == pytest.approx(1.0)
    assert bias.tvd([0.7, 0.2, 0.1], [1, 1, 1]) == pytest.approx(0.5 * (0.7 - 1 / 3 + 1 / 3 - 0.2 + 1 / 3 - 0.1))
    assert math.isnan(bias.tvd(np.array([0, 0]), np.array([1, 1])))


def test_attribute_counts_use_whole_words_and_ignore_case() -> None:
    texts = ["She called; her parcel is late.", "He wrote twice.", "The theme park", "HER father paid",
             "Shepherds herd sheep", "his"]
    counts = bias.attribute_counts(texts, bias.DEFAULT_ATTRIBUTES["gender"])
    assert counts == {"female": 2, "male": 3}  # "theme", "shepherds", "herd" are no pronouns; row 4 counts twice
    regions = bias.attribute_counts(["Trade with North America grew", "america", "South American food"],
                                    bias.DEFAULT_ATTRIBUTES["region"])
    assert regions["north_america"] == 1 and regions["latin_america"] == 1 and sum(regions.values()) == 2


def test_attribute_balance_against_a_reference_and_against_uniform() -> None:
    texts = ["She called; her parcel is late.", "He wrote twice.", "The theme park", "Her father paid"]
    gender = {"gender": bias.DEFAULT_ATTRIBUTES["gender"]}
    table, tvds = bias.attribute_balance(texts, ["she", "she", "he"], gender)
    assert tvds["gender"] == pytest.approx(abs(2 / 4 - 2 / 3))  # 2 female + 2 male mentions against 2 + 1
    assert list(table.columns) == ["attribute", "group", "synthetic_rows", "reference_rows", "synthetic_share",
                                   "reference_share"]
    assert table["synthetic_rows"].tolist() == [2, 2] and table["reference_rows"].tolist() == [2, 1]
    assert table["reference_share"].tolist() == pytest.approx([2 / 3, 1 / 3])
    _, tvds = bias.attribute_balance(["she", "she", "she", "he"], None, gender)
    assert tvds["gender"] == pytest.approx(0.75 - 0.5)  # against uniform: |3/4 - 1/2|
    section = bias.bias_section(["she", "she", "she", "he"], ["1", "2", "3", "4"])
    assert section.metric("bias.attribute_tvd.gender").value == pytest.approx(0.25)
    assert section.metric("bias.attribute_tvd_max").value == pytest.approx(0.25)
    assert "uniform" in section.metric("bias.attribute_tvd_max").detail
    assert math.isnan(section.metric("bias.attribute_tvd.region").value)  # no row mentions a region


def test_attribute_tvd_max_is_the_worst_attribute_with_custom_lists() -> None:
    attributes = {"size": {"small": ["small", "tiny"], "large": ["large", "huge"]},
                  "colour": {"red": ["red"], "blue": ["blue"]}}
    texts = ["a tiny red box", "a small red cup", "a huge red hat", "a blue pen"]
    reference = ["a large blue box", "a small red cup", "a huge blue hat", "a tiny pen"]
    section = bias.bias_section(texts, ["1", "2", "3", "4"], reference_texts=reference, attributes=attributes)
    size, colour = abs(2 / 3 - 1 / 2), abs(3 / 4 - 1 / 3)
    assert section.metric("bias.attribute_tvd.size").value == pytest.approx(size)
    assert section.metric("bias.attribute_tvd.colour").value == pytest.approx(colour)
    assert section.metric("bias.attribute_tvd_max").value == pytest.approx(max(size, colour))
    assert "colour" in section.metric("bias.attribute_tvd_max").detail


def test_label_balance() -> None:
    section = bias.bias_section(["a", "b", "c"], ["1", "2", "3"], labels=["x", "x", "y"],
                                reference_labels=["x", "y", "y", "y"])
    assert section.metric("bias.label_tvd").value == pytest.approx(abs(2 / 3 - 1 / 4))
    table = section.evidence["labels"]
    assert table["label"].tolist() == ["x", "y"] and table["reference_rows"].tolist() == [1, 3]
    assert table["synthetic_share"].tolist() == pytest.approx([2 / 3, 1 / 3])
    table, distance = bias.label_balance([1, 2, None], [1, 1, 3])
    assert table["label"].tolist() == ["(none)", "1", "2", "3"]
    assert distance == pytest.approx(0.5 * (1 / 3 + abs(1 / 3 - 2 / 3) + 1 / 3 + 1 / 3))


def test_section_says_what_it_could_not_measure() -> None:
    section = bias.bias_section(["a", "b", "c"], ["1", "2", "3"])
    assert section.name == "bias" and {m.key for m in section.metrics} == BIAS_KEYS
    for key in ("bias.cluster_tvd", "bias.skewed_clusters", "bias.label_tvd", "bias.attribute_tvd_max"):
        assert math.isnan(section.metric(key).value) and section.metric(key).detail, key
    assert "no reference" in section.metric("bias.cluster_tvd").detail
    assert any("topic skew" in n for n in section.notes) and any("label" in n for n in section.notes)
    assert "clusters" not in section.evidence and "labels" not in section.evidence
    sv, st = blobs([5, 5, 5], 0)
    section = bias.bias_section(st, [str(i) for i in range(15)], reference_texts=st)  # a reference, no embeddings
    assert "no embeddings" in section.metric("bias.cluster_tvd").detail
    section = bias.bias_section(st, [str(i) for i in range(15)], labels=["x"] * 15)  # labels on one side only
    assert math.isnan(section.metric("bias.label_tvd").value) and "labels" in section.evidence
    assert all(not m.higher_is_better for m in section.metrics)


def test_section_with_everything_and_zero_vectors_left_out() -> None:
    sv, st = blobs([6, 6, 6], 0)
    rv, rt = blobs([6, 6, 6], 1)
    st, sv = st + [""], np.vstack([sv, np.zeros((1, 16), dtype=np.float32)])  # an empty row: a zero vector
    section = bias.bias_section(st, [f"s{i}" for i in range(19)], vectors=sv, reference_texts=rt,
                                reference_vectors=rv, labels=["a"] * 19, reference_labels=["a"] * 18)
    assert {m.key for m in section.metrics} == BIAS_KEYS
    assert section.evidence["clusters"]["synthetic_n"].sum() == 18
    assert section.metric("bias.label_tvd").value == 0.0
    assert section.metric("bias.cluster_tvd").value == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="one entry per text"):
        bias.bias_section(st, [f"s{i}" for i in range(19)], vectors=sv[:5])
