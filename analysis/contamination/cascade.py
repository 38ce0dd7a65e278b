"""The cascade: cheapest evidence first, and each item's verdict is the strongest found.

Stages, in order of strength and cost:

1. ``exact`` — word n-grams (:mod:`.ngram`): coverage from 20 % flags an item;
2. ``near_duplicate`` — MinHash LSH confirmed by exact Jaccard (:mod:`.minhash`),
   including number-substituted variants;
3. ``semantic`` — embedding cosine over windows (:mod:`.semantic`);
4. ``judged`` (optional) — a local instruct model asked whether the item and its
   best semantic candidate are the same problem (:mod:`.judge`).

The first three are computed for every item — once the synthetic corpus is
signed and embedded, scoring all items costs little — so the drill-down shows
every stage's scores. The judge is the expensive one: it only looks at items
the others left uncounted whose best cosine reached ``candidate_at``.

Evidence tiers: how strong the proof is
    A semantic neighbour is often another problem on the same topic, so every
    pair, and every item through its best pair, gets a *tier*:

    ``confirmed``
        a copy (the exact stage covers the item's question, or its whole
        answer; a near-duplicate), or a semantic match that passed a task-aware
        check (:mod:`.checks`: the record's code passes the item's tests, it
        states the item's final answer, ...); identity checks (code tests,
        final answer) confirm any semantic pair from ``candidate_at``;
    ``likely``
        a semantic match (mutual best, from ``flag_at``) whose cosine reaches
        ``likely_at`` (calibrated on hard negatives) and that no identity check
        (code tests, final answer) refuted; or a judge's yes;
    ``candidate``
        worth a look, not counted: a partial overlap of the answer alone
        (shared building blocks such as an ``is_prime`` helper), a semantic
        match below ``likely_at`` or refuted by a check, a cosine from
        ``candidate_at``.

    ``count`` (default confirmed and likely) says which tiers make an item
    contaminated: ``verdict`` is then the stage of its best counted pair, else
    ``clean``, so every count downstream (grid, gate, Compare) follows it.
    ``leaked`` says what the counted evidence holds: ``question``, ``answer``
    or ``question+answer``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from synthscope.contamination.ngram import NgramConfig

STAGES = ("exact", "near_duplicate", "semantic", "judged")
DEFAULT_STAGES = ("exact", "near_duplicate", "semantic")
STRENGTH = {name: i for i, name in enumerate(STAGES)}
TIERS = ("confirmed", "likely", "candidate")
DEFAULT_COUNT = ("confirmed", "likely")
VETO_CHECKS = ("code_tests", "final_answer")  # checks that test the problem's identity: a failure refutes a match


@dataclass(frozen=True)
class CascadeConfig:
    stages: tuple[str, ...] = DEFAULT_STAGES
    ngram: NgramConfig = NgramConfig()
    near_duplicate: Any = None  # minhash.NearDuplicateConfig when the stage runs
    semantic: Any = None  # semantic.SemanticConfig
    judge: Any = None  # judge.JudgeConfig
    count: tuple[str, ...] = DEFAULT_COUNT  # the tiers that make an item contaminated
    checks: bool = True  # run the task-aware checks on semantic matches

    def __post_init__(self) -> None:
        unknown = set(self.stages) - set(STAGES)
        if unknown or "exact" not in self.stages:
            raise ValueError(f"stages must include 'exact' and come from {', '.join(STAGES)}; got {self.stages}")
        if not self.count or set(self.count) - set(TIERS) or "confirmed" not in self.count:
            raise ValueError(f"count must include 'confirmed' and come from {', '.join(TIERS)}; got {self.count}")

    def settings(self) -> dict[str, Any]:
        """Plain data for manifests."""
        out: dict[str, Any] = {"stages": list(self.stages), "count": list(self.count), "checks": self.checks}
        for name in ("ngram", "near_duplicate", "semantic", "judge"):
            value = getattr(self, name)
            if value is not None:
                out[name] = {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
        return out


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _build(cls: type, settings: Mapping[str, Any], section: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(settings) - known
    if unknown:
        raise ValueError(f"unknown [contamination.{section}] settings: {', '.join(sorted(unknown))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
    return cls(**values)


def config_from(settings: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> CascadeConfig:
    """Build the cascade settings from a ``[contamination]`` table (``synthscope.toml``) and overrides.

    ``overrides`` maps ``"stages"`` or ``"<section>.<field>"`` (e.g. ``"ngram.ns"``,
    ``"semantic.flag_at"``) to values; ``None`` values are ignored.
    """
    table = {k: dict(v) if isinstance(v, Mapping) else v for k, v in settings.items()}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if "." in key:
            section, name = key.split(".", 1)
            table.setdefault(section, {})[name] = value
        else:
            table[key] = value
    stages = tuple(table.pop("stages", DEFAULT_STAGES))
    count = tuple(table.pop("count", DEFAULT_COUNT))
    checks = bool(table.pop("checks", True))
    ngram = _build(NgramConfig, table.pop("ngram", {}), "ngram")
    near = semantic = judge = None
    if "near_duplicate" in stages:
        from synthscope.contamination.minhash import NearDuplicateConfig

        near = _build(NearDuplicateConfig, table.pop("near_duplicate", {}), "near_duplicate")
    if "semantic" in stages or "judged" in stages:
        from synthscope.contamination.semantic import SemanticConfig

        semantic = _build(SemanticConfig, table.pop("semantic", {}), "semantic")
    if "judged" in stages:
        from synthscope.contamination.judge import JudgeConfig

        judge = _build(JudgeConfig, table.pop("judge", {}), "judge")
    for section in ("near_duplicate", "semantic", "judge"):
        table.pop(section, None)  # settings of stages that are off
    if table:
        raise ValueError(f"unknown [contamination] settings: {', '.join(sorted(table))}")
    return CascadeConfig(stages, ngram, near, semantic, judge, count, checks)


# -- deciding ------------------------------------------------------------------------------


def check_candidates(exact_evidence: pd.DataFrame, semantic: pd.DataFrame | None,
                     config: CascadeConfig) -> pd.DataFrame:
    """The pairs a task-aware check may promote: semantic pairs from ``candidate_at``, and partial answer overlaps.

    Every semantic pair an item kept (its ``top_k`` records) from ``candidate_at``
    is checked, not only the mutual-best matches: a record whose code passes the
    item's own tests is that problem whatever its cosine (HumanEval/61's
    bracket checker sits at 0.65 and is another item's best match too). The
    number checked is bounded by items x ``top_k``. Columns ``item, record_id,
    record_span`` (the matched record window, or None).
    """
    frames = []
    if semantic is not None and len(semantic):
        frames.append(semantic.loc[semantic["cosine"] >= config.semantic.candidate_at,
                                   ["item", "record_id", "record_span"]])
    if len(exact_evidence) and "prompt_coverage" in exact_evidence:
        answer_only = ((exact_evidence["coverage"] >= config.ngram.clean_below)
                       & (exact_evidence["prompt_coverage"].fillna(0) < config.ngram.clean_below)
                       & (exact_evidence["coverage"] < config.ngram.dirty_from))
        frames.append(exact_evidence.loc[answer_only, ["item", "record_id"]].assign(record_span=None))
    if not frames:
        return pd.DataFrame(columns=["item", "record_id", "record_span"])
    return pd.concat(frames, ignore_index=True).drop_duplicates(["item", "record_id"]).reset_index(drop=True)


def judge_candidates(verdicts: pd.DataFrame, semantic: pd.DataFrame | None, config: CascadeConfig) -> pd.DataFrame:
    """The pairs the judge should see: uncounted items' best semantic record, best cosine first."""
    if config.judge is None or semantic is None or semantic.empty:
        return pd.DataFrame(columns=["item", "record_id", "cosine"])
    undecided = set(verdicts.loc[verdicts["verdict"] == "clean", "item"])
    best = (semantic.sort_values(["item", "cosine", "record_id"], ascending=[True, False, True])
            .groupby("item", sort=False).head(1))
    best = best[best["item"].isin(undecided) & (best["cosine"] >= config.semantic.candidate_at)]
    return best.sort_values("cosine", ascending=False).head(config.judge.max_pairs)[["item", "record_id", "cosine"]]


def decide(exact_verdicts: pd.DataFrame, exact_evidence: pd.DataFrame, config: CascadeConfig,
           near: pd.DataFrame | None = None, semantic: pd.DataFrame | None = None,
           judged: pd.DataFrame | None = None, checks: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-item verdicts and merged evidence from every stage's output, with tiers.

    ``near`` has ``item, record_id, field, jaccard, masked_jaccard, number_substituted``;
    ``semantic`` has ``item, record_id, cosine, record_best, item_span, record_span``;
    ``judged`` has ``item, record_id, judge_score``; ``checks`` has ``item, record_id,
    check, check_passed, check_reason, answer_leaked``. Each evidence row is one
    (item, record) pair with every score any stage gave it, its ``tier``, what
    it shows ``leaked``, and ``method``: the stage behind its tier.
    """
    pairs = exact_evidence.copy()
    pairs["found_exact"] = True
    for column in ("prompt_coverage", "answer_coverage"):
        if column not in pairs:
            pairs[column] = pairs["coverage"] if column == "prompt_coverage" else 0.0
    if near is not None:
        n = near.rename(columns={"field": "near_field"})
        pairs = pairs.merge(n, on=["item", "record_id"], how="outer")
    if semantic is not None:
        pairs = pairs.merge(semantic, on=["item", "record_id"], how="outer")
    if judged is not None and not judged.empty:
        columns = [c for c in ("item", "record_id", "judge_score", "judge_reason") if c in judged]
        pairs = pairs.merge(judged[columns], on=["item", "record_id"], how="outer")
    if checks is not None and not checks.empty:
        pairs = pairs.merge(checks[["item", "record_id", "check", "check_passed", "check_reason", "answer_leaked"]],
                            on=["item", "record_id"], how="outer")
    pairs = _tiers(pairs, config)

    v = exact_verdicts.copy()
    per_item = pairs.groupby("item")
    best_of = {"jaccard": "max", "masked_jaccard": "max", "cosine": "max", "judge_score": "max"}
    for column, how in best_of.items():
        v[column] = v["item"].map(per_item[column].agg(how)) if column in pairs else np.nan
    v["number_substituted"] = (_per_item(v["item"], per_item["number_substituted"].agg(
        lambda x: bool(x.astype(object).fillna(False).astype(bool).any())), False).astype(bool)
        if "number_substituted" in pairs else False)
    ranked = _rank_evidence(pairs, config)
    top = ranked[ranked["rank"] == 1].set_index("item")
    v["tier"] = _per_item(v["item"], top["tier"], "clean")
    counted = v["tier"].isin(config.count)
    v["verdict"] = np.where(counted, v["item"].map(top["method"]), "clean")
    v["leaked"] = np.where(counted, _per_item(v["item"], _item_leak(ranked, config), ""), "")
    v["reason"] = _per_item(v["item"], top["reason"], "")
    v["stages"] = ",".join(config.stages)
    return v, ranked


def _per_item(items: pd.Series, values: pd.Series, missing: object) -> pd.Series:
    """``values`` (indexed by item) looked up for ``items``, ``missing`` where there is none.

    Looked up as objects: a lookup that finds nothing is all float NaN, which pandas will not fill with a
    string or a bool.
    """
    return items.map(values).astype(object).fillna(missing)


def _bool(pairs: pd.DataFrame, column: str) -> pd.Series:
    if column not in pairs:
        return pd.Series(False, index=pairs.index)
    return pairs[column].astype("boolean").fillna(False).astype(bool)


def _num(pairs: pd.DataFrame, column: str) -> pd.Series:
    return pairs[column].astype(float) if column in pairs else pd.Series(np.nan, index=pairs.index)


def _tiers(pairs: pd.DataFrame, config: CascadeConfig) -> pd.DataFrame:
    """Each pair's tier, the stage behind it (``method``), what it shows leaked, and why (``reason``)."""
    ng = config.ngram
    coverage, prompt_cov, answer_cov = (_num(pairs, c).fillna(0.0)
                                        for c in ("coverage", "prompt_coverage", "answer_coverage"))
    check = pairs["check"].fillna("") if "check" in pairs else pd.Series("", index=pairs.index)
    passed = _bool(pairs, "check_passed")
    refuted = check.isin(VETO_CHECKS) & pairs.get("check_passed", pd.Series(None, index=pairs.index)).eq(False)
    pairs["flag_exact"] = _bool(pairs, "found_exact") & (coverage >= ng.clean_below)
    exact_copy = pairs["flag_exact"] & ((prompt_cov >= ng.clean_below) | (coverage >= ng.dirty_from))
    pairs["flag_near"] = False
    if config.near_duplicate is not None and "jaccard" in pairs:
        pairs["flag_near"] = (_num(pairs, "jaccard").fillna(0) >= config.near_duplicate.flag_at) | _bool(
            pairs, "number_substituted")
    cosine = _num(pairs, "cosine")
    pairs["flag_semantic"] = False
    if config.semantic is not None and "cosine" in pairs:
        best = _num(pairs, "record_best").fillna(cosine)
        pairs["flag_semantic"] = config.semantic.flags(cosine.fillna(-1.0), best).astype(bool)
    pairs["flag_judged"] = False
    if config.judge is not None and "judge_score" in pairs:
        pairs["flag_judged"] = _num(pairs, "judge_score").fillna(0) >= config.judge.confirm_at
    likely_at = config.semantic.likely_at if config.semantic is not None else np.inf
    candidate_at = config.semantic.candidate_at if config.semantic is not None else np.inf
    cosine = cosine.fillna(-1.0)

    rules = [  # (condition, tier, method, reason), strongest first
        (exact_copy, "confirmed", "exact", "copied: n-grams cover the item"),
        (pairs["flag_near"], "confirmed", "near_duplicate", "near-duplicate text"),
        (pairs["flag_exact"] & passed, "confirmed", "exact", None),
        (pairs["flag_semantic"] & passed, "confirmed", "semantic", None),
        ((cosine >= candidate_at) & passed & check.isin(VETO_CHECKS), "confirmed", "semantic", None),
        (pairs["flag_semantic"] & (cosine >= likely_at) & ~refuted, "likely", "semantic",
         "semantic match at or above likely_at"),
        (pairs["flag_judged"], "likely", "judged", "the judge says same problem"),
        (pairs["flag_exact"], "candidate", "exact", "shares part of the answer only"),
        (pairs["flag_semantic"], "candidate", "semantic", "semantic match below likely_at"),
        (cosine >= candidate_at, "candidate", "semantic", "semantic neighbour"),
    ]
    conditions = [c.to_numpy(bool) for c, *_ in rules]
    pairs["tier"] = np.select(conditions, [t for _, t, *_ in rules], default="")
    found = [(_bool(pairs, "found_exact"), "exact"), (_num(pairs, "jaccard").notna(), "near_duplicate"),
             (cosine.notna(), "semantic"), (_num(pairs, "judge_score").notna(), "judged")]
    pairs["method"] = np.select(conditions + [f.to_numpy(bool) for f, _ in found],
                                [m for _, _, m, _ in rules] + [m for _, m in found], default="exact")
    default_reason = np.select(conditions, [r or "" for *_, r in rules], default="")
    check_reason = pairs["check_reason"].fillna("") if "check_reason" in pairs else pd.Series("", index=pairs.index)
    judge_reason = pairs["judge_reason"].fillna("") if "judge_reason" in pairs else pd.Series("", index=pairs.index)
    from_judge = (pairs["method"] == "judged") & (judge_reason != "")
    # A check that ran explains the tier; one that could not run is a footnote to a likely or candidate match.
    copied = (exact_copy | pairs["flag_near"]).to_numpy(bool)  # the text itself is the evidence
    ran = pairs.get("check_passed", pd.Series(None, index=pairs.index)).notna().to_numpy() & ~copied
    footnote = (check_reason != "") & pairs["tier"].isin(["likely", "candidate"])
    pairs["reason"] = np.where(ran, check_reason, np.where(
        from_judge, "judge: " + judge_reason,
        np.where(footnote & ~copied, default_reason + " (" + check_reason + ")", default_reason)))
    question = (prompt_cov >= ng.clean_below) & pairs["flag_exact"] | (pairs["flag_near"] & pairs.get(
        "near_field", pd.Series("", index=pairs.index)).fillna("").eq("prompt")) | pairs["flag_semantic"] | pairs[
        "flag_judged"]
    answer = ((answer_cov >= ng.clean_below) & pairs["flag_exact"]) | (pairs["flag_near"] & pairs.get(
        "near_field", pd.Series("", index=pairs.index)).fillna("").eq("answer")) | _bool(pairs, "answer_leaked")
    pairs["leaked"] = np.select([question & answer, question, answer], ["question+answer", "question", "answer"],
                                default="")
    pairs["flagged"] = pairs["tier"].isin(config.count)
    return pairs


def chance_after_checks(evidence: pd.DataFrame, chance: pd.Series, config: CascadeConfig) -> pd.Series:
    """Per item, the chance of a counted semantic flag by chance alone, once identity checks have had their say.

    ``chance`` is P(a record reaches ``likely_at`` by chance) per item (index:
    item; :func:`synthscope.contamination.semantic.chance_of_flag`). Where an
    identity check (code tests, final answer) ran on the item's pairs, a chance
    match is counted only if the check does not refute it, so it is scaled by
    the share of this scan's matches from ``likely_at`` that such checks neither
    refuted nor passed. A pair that passes is left out of that share: another
    problem passing an item's tests is rare (5 in 26,732 HumanEval pairs,
    ``bench/reports/code_check.md``), so a pass is a true match, not chance.
    True matches whose check could not decide stay in, so the estimate leans high.
    """
    cosine = _num(evidence, "cosine").fillna(-1.0)
    checked = evidence.get("check", pd.Series("", index=evidence.index)).fillna("").isin(VETO_CHECKS)
    outcome = evidence.get("check_passed", pd.Series(None, index=evidence.index)).astype("boolean")
    passed, refuted = outcome.eq(True).fillna(False), outcome.eq(False).fillna(False)
    strong = checked & (cosine >= config.semantic.likely_at) & ~passed  # strong matches a check did not pass
    survive = 1.0 - float(refuted[strong].mean()) if strong.any() else 1.0
    identity_items = set(evidence.loc[checked, "item"])
    factor = pd.Series([survive if i in identity_items else 1.0 for i in chance.index], index=chance.index)
    return chance * factor


def _item_leak(ranked: pd.DataFrame, config: CascadeConfig) -> pd.Series:
    """Per item, what its counted pairs show leaked together."""
    counted = ranked[ranked["tier"].isin(config.count)]
    if counted.empty:
        return pd.Series(dtype=object)
    leaks = counted.groupby("item")["leaked"].agg(lambda x: set("+".join(x).split("+")) - {""})
    return leaks.map(lambda parts: "+".join(p for p in ("question", "answer") if p in parts))


_RANK = {"confirmed": 0, "likely": 1, "candidate": 2, "": 3}
_SCORE = {"exact": "coverage", "near_duplicate": "jaccard", "semantic": "cosine", "judged": "judge_score"}


def _rank_evidence(pairs: pd.DataFrame, config: CascadeConfig) -> pd.DataFrame:
    """Rank an item's pairs: stronger tier first, then stronger stage, then the stage's own score."""
    score = pd.Series(0.0, index=pairs.index)
    for stage, column in _SCORE.items():
        if column in pairs:
            score = score.mask(pairs["method"] == stage, pairs[column].astype(float).fillna(0.0))
    pairs = pairs.assign(tier_rank=pairs["tier"].map(_RANK), strength=pairs["method"].map(STRENGTH), score=score)
    pairs = pairs.sort_values(["item", "tier_rank", "strength", "score", "record_id"],
                              ascending=[True, True, True, False, True])
    pairs["rank"] = pairs.groupby("item").cumcount() + 1
    drop = ["found_exact", "judge_reason", "tier_rank", "strength", "score", "flag_exact", "flag_near",
            "flag_semantic", "flag_judged"]
    return pairs.drop(columns=[c for c in drop if c in pairs]).reset_index(drop=True)
