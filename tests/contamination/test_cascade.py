"""The cascade's decision: strongest evidence wins, every stage's scores are kept."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from synthscope.contamination.cascade import CascadeConfig, chance_after_checks, decide, judge_candidates

CONFIG = CascadeConfig(
    stages=("exact", "near_duplicate", "semantic", "judged"),
    near_duplicate=SimpleNamespace(flag_at=0.5),
    semantic=SimpleNamespace(flag_at=0.8, candidate_at=0.6, likely_at=0.8,
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


TIERED = CascadeConfig(
    stages=("exact", "semantic"),
    semantic=SimpleNamespace(flag_at=0.7, candidate_at=0.5, likely_at=0.85,
                             flags=lambda cos, best: (cos >= 0.7) & (cos >= best - 0.05)),
)


def _semantic(cosines: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"item": range(len(cosines)), "record_id": [f"r{i}" for i in range(len(cosines))],
                         "cosine": cosines, "record_best": cosines, "item_span": None, "record_span": None})


def _checks(rows: list[tuple[int, str, bool | None]]) -> pd.DataFrame:
    return pd.DataFrame({"item": [r[0] for r in rows], "record_id": [f"r{r[0]}" for r in rows],
                         "check": [r[1] for r in rows], "check_passed": [r[2] for r in rows],
                         "check_reason": [f"{r[1]} {'passed' if r[2] else 'failed'}" for r in rows],
                         "answer_leaked": [bool(r[2]) for r in rows]})


def test_a_semantic_match_needs_a_check_or_likely_at_to_count() -> None:
    verdicts, evidence = exact(["clean"] * 6)
    semantic = _semantic([0.75, 0.75, 0.9, 0.9, 0.6, 0.75])
    checks = _checks([(1, "code_tests", True), (3, "code_tests", False), (5, "choice", False)])
    v, e = decide(verdicts, evidence, TIERED, semantic=semantic, checks=checks)
    assert v["tier"].tolist() == ["candidate", "confirmed", "likely", "candidate", "candidate", "candidate"]
    assert v["verdict"].tolist() == ["clean", "semantic", "semantic", "clean", "clean", "clean"]
    # a passed check says the answer leaked too; a refuting identity check (code tests) demotes even above likely_at;
    # a failed answer check (choice) only says the answer is not there
    assert v["leaked"].tolist() == ["", "question+answer", "question", "", "", ""]
    assert v.loc[1, "reason"] == "code_tests passed"
    assert v.loc[2, "reason"].startswith("semantic match at or above likely_at")
    assert e.set_index("item").loc[4, "tier"] == "candidate" and not e.set_index("item").loc[4, "flagged"]


def test_a_partial_overlap_of_the_answer_alone_is_a_candidate_unless_checked() -> None:
    verdicts = pd.DataFrame({"item": [0, 1, 2], "bucket": ["partial", "partial", "partial"],
                             "coverage": [0.4, 0.4, 0.4]})
    evidence = pd.DataFrame({"item": [0, 1, 2], "record_id": ["r0", "r1", "r2"], "coverage": [0.4, 0.4, 0.4],
                             "prompt_coverage": [0.0, 0.0, 0.5], "answer_coverage": [0.4, 0.4, 0.0]})
    v, _ = decide(verdicts, evidence, TIERED, checks=_checks([(1, "code_tests", True)]))
    assert v["tier"].tolist() == ["candidate", "confirmed", "confirmed"]
    assert v["leaked"].tolist() == ["", "answer", "question"]


def test_the_count_policy_decides_what_is_contaminated() -> None:
    verdicts, evidence = exact(["clean", "clean"])
    semantic = _semantic([0.75, 0.9])
    wide = CascadeConfig(stages=TIERED.stages, semantic=TIERED.semantic, count=("confirmed", "likely", "candidate"))
    strict = CascadeConfig(stages=TIERED.stages, semantic=TIERED.semantic, count=("confirmed",))
    assert decide(verdicts, evidence, wide, semantic=semantic)[0]["verdict"].tolist() == ["semantic", "semantic"]
    assert decide(verdicts, evidence, strict, semantic=semantic)[0]["verdict"].tolist() == ["clean", "clean"]
    with pytest.raises(ValueError, match="count must include 'confirmed'"):
        CascadeConfig(count=("likely",))


def test_chance_flags_survive_identity_checks_only_as_often_as_checks_leave_them_undecided() -> None:
    """Passes are true matches and leave the null; of the rest, refuted ones cannot be chance flags."""
    config = CascadeConfig(semantic=SimpleNamespace(likely_at=0.8))
    evidence = pd.DataFrame({
        "item": [1, 1, 1, 2, 3],
        "cosine": [0.95, 0.85, 0.82, 0.9, 0.9],
        "check": ["code_tests", "code_tests", "code_tests", "code_tests", ""],
        "check_passed": pd.array([True, False, None, False, None], dtype="boolean"),
    })
    chance = pd.Series([0.4, 0.2, 0.3], index=[1, 2, 3])
    # strong checked pairs that did not pass: two of three refuted, a third survives; item 3 has no such check
    assert chance_after_checks(evidence, chance, config).round(3).tolist() == [0.133, 0.067, 0.3]
