"""The cascade's decision: strongest evidence wins, every stage's scores are kept."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from synthscope.contamination.cascade import CascadeConfig, decide, judge_candidates

CONFIG = CascadeConfig(
    stages=("exact", "near_duplicate", "semantic", "judged"),
    near_duplicate=SimpleNamespace(flag_at=0.5),
    semantic=SimpleNamespace(flag_at=0.8, candidate_at=0.6,
                             flags=lambda cos, best: (cos >= 0.8) & (cos >= best - 0.05)),
    judge=SimpleNamespace(confirm_at=0.5, max_pairs=10),
)


def exact(buckets: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    verdicts = pd.DataFrame({"item": range(len(buckets)), "bucket": buckets,
                             "coverage": [{"clean": 0.0, "partial": 0.5, "dirty": 1.0}[b] for b in buckets]})
    evidence = verdicts[verdicts["bucket"] != "clean"][["item", "coverage"]].assign(record_id="r-exact")
    return verdicts, evidence


def test_each_item_takes_the_first_stage_that_flags_it() -> None:
    verdicts, evidence = exact(["dirty", "clean", "clean", "clean", "clean", "partial"])
    near = pd.DataFrame({"item": [1, 2, 5], "record_id": ["a", "b", "c"], "field": "prompt",
                         "jaccard": [0.7, 0.2, 0.9], "masked_jaccard": [0.7, 0.8, 0.9],
                         "number_substituted": [False, True, False]})
    semantic = pd.DataFrame({"item": [0, 1, 3, 4], "record_id": ["r-exact", "a", "d", "e"],
                             "cosine": [0.99, 0.9, 0.85, 0.7], "record_best": [0.99, 0.9, 0.85, 0.7],
                             "item_span": None, "record_span": None})
    judged = pd.DataFrame({"item": [4], "record_id": ["e"], "judge_score": [0.9]})
    v, e = decide(verdicts, evidence, CONFIG, near, semantic, judged)
    assert v["verdict"].tolist() == ["exact", "near_duplicate", "near_duplicate", "semantic", "judged", "exact"]
    assert v.loc[2, "number_substituted"] and not v.loc[1, "number_substituted"]
    assert v.loc[0, "cosine"] == 0.99 and np.isnan(v.loc[0, "jaccard"])  # scores kept even where exact decided
    assert v.loc[5, "jaccard"] == 0.9
    first = e[e["rank"] == 1].set_index("item")
    assert first["method"].to_dict() == {0: "exact", 1: "near_duplicate", 2: "near_duplicate", 3: "semantic",
                                         4: "judged", 5: "exact"}
    # One pair found by two stages is one evidence row carrying both scores.
    both = e[(e["item"] == 0) & (e["record_id"] == "r-exact")].iloc[0]
    assert both["coverage"] == 1.0 and both["cosine"] == 0.99 and both["method"] == "exact"


def test_unflagged_candidates_stay_as_evidence_below_flagged_ones() -> None:
    verdicts, evidence = exact(["clean"])
    semantic = pd.DataFrame({"item": [0, 0], "record_id": ["low", "high"], "cosine": [0.5, 0.85],
                             "record_best": [0.5, 0.85], "item_span": None, "record_span": None})
    v, e = decide(verdicts, evidence, CONFIG, semantic=semantic)
    assert v.loc[0, "verdict"] == "semantic"
    assert e.sort_values("rank")[["record_id", "flagged"]].values.tolist() == [["high", True], ["low", False]]


def test_judge_sees_only_undecided_items_above_the_candidate_threshold() -> None:
    verdicts = pd.DataFrame({"item": [0, 1, 2, 3], "verdict": ["exact", "clean", "clean", "clean"]})
    semantic = pd.DataFrame({"item": [0, 1, 1, 2, 3], "record_id": ["x", "y", "z", "w", "v"],
                             "cosine": [0.7, 0.65, 0.75, 0.5, 0.61]})
    picked = judge_candidates(verdicts, semantic, CONFIG)
    assert picked[["item", "record_id"]].values.tolist() == [[1, "z"], [3, "v"]]
    assert judge_candidates(verdicts, semantic, CascadeConfig()).empty  # judge off


def test_stage_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="must include 'exact'"):
        CascadeConfig(stages=("semantic",))
    with pytest.raises(ValueError):
        CascadeConfig(stages=("exact", "telepathy"))


def test_a_record_flags_only_the_items_it_matches_best() -> None:
    # Record "copy" is item 0 verbatim (cosine 0.97) and close to item 1 (0.85): item 1 stays clean.
    verdicts, evidence = exact(["dirty", "clean", "clean"])
    semantic = pd.DataFrame({"item": [0, 1, 2], "record_id": ["copy", "copy", "merge"],
                             "cosine": [0.97, 0.85, 0.9], "record_best": [0.97, 0.97, 0.92],
                             "item_span": None, "record_span": None})
    v, e = decide(verdicts, evidence.assign(record_id="copy"), CONFIG, semantic=semantic)
    assert v["verdict"].tolist() == ["exact", "clean", "semantic"]
    assert v.loc[1, "cosine"] == 0.85  # the score is still shown
