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
every stage's scores. The verdict takes the first stage, in this order, whose
threshold the item reaches. The judge is the expensive one: it only looks at
items the first three left undecided whose best cosine reached ``candidate_at``.
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


@dataclass(frozen=True)
class CascadeConfig:
    stages: tuple[str, ...] = DEFAULT_STAGES
    ngram: NgramConfig = NgramConfig()
    near_duplicate: Any = None  # minhash.NearDuplicateConfig when the stage runs
    semantic: Any = None  # semantic.SemanticConfig
    judge: Any = None  # judge.JudgeConfig

    def __post_init__(self) -> None:
        unknown = set(self.stages) - set(STAGES)
        if unknown or "exact" not in self.stages:
            raise ValueError(f"stages must include 'exact' and come from {', '.join(STAGES)}; got {self.stages}")

    def settings(self) -> dict[str, Any]:
        """Plain data for manifests."""
        out: dict[str, Any] = {"stages": list(self.stages)}
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
    return CascadeConfig(stages, ngram, near, semantic, judge)


# -- deciding ------------------------------------------------------------------------------


def judge_candidates(verdicts: pd.DataFrame, semantic: pd.DataFrame | None, config: CascadeConfig) -> pd.DataFrame:
    """The pairs the judge should see: undecided items' best semantic record, best cosine first."""
    if config.judge is None or semantic is None or semantic.empty:
        return pd.DataFrame(columns=["item", "record_id", "cosine"])
    undecided = set(verdicts.loc[verdicts["verdict"] == "clean", "item"])
    best = (semantic.sort_values(["item", "cosine", "record_id"], ascending=[True, False, True])
            .groupby("item", sort=False).head(1))
    best = best[best["item"].isin(undecided) & (best["cosine"] >= config.semantic.candidate_at)]
    return best.sort_values("cosine", ascending=False).head(config.judge.max_pairs)[["item", "record_id", "cosine"]]


def decide(exact_verdicts: pd.DataFrame, exact_evidence: pd.DataFrame, config: CascadeConfig,
           near: pd.DataFrame | None = None, semantic: pd.DataFrame | None = None,
           judged: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-item verdicts and merged evidence from every stage's output.

    ``near`` has ``item, record_id, field, jaccard, masked_jaccard, number_substituted``;
    ``semantic`` has ``item, record_id, cosine, item_span, record_span``; ``judged`` has
    ``item, record_id, judge_score``. Each evidence row is one (item, record) pair with
    every score any stage gave it and ``method``: the strongest stage that flags the
    pair, else the strongest that surfaced it.
    """
    v = exact_verdicts.copy()
    v["verdict"] = np.where(v["bucket"] == "clean", "clean", "exact")
    item_best = pd.DataFrame({"item": v["item"]})

    pairs = exact_evidence.copy()
    pairs["found_exact"] = True
    pairs["flag_exact"] = pairs["coverage"] >= config.ngram.clean_below
    if near is not None:
        flag_at = config.near_duplicate.flag_at
        n = near.copy()
        n["flag_near"] = (n["jaccard"] >= flag_at) | n["number_substituted"].astype(bool)
        n = n.rename(columns={"field": "near_field"})
        pairs = pairs.merge(n, on=["item", "record_id"], how="outer")
        per_item = n.groupby("item").agg(jaccard=("jaccard", "max"), masked_jaccard=("masked_jaccard", "max"),
                                         number_substituted=("number_substituted", "any"),
                                         near_flag=("flag_near", "any"))
        item_best = item_best.merge(per_item, left_on="item", right_index=True, how="left")
    if semantic is not None:
        s = semantic.copy()
        s["flag_semantic"] = config.semantic.flags(s["cosine"], s["record_best"])
        pairs = pairs.merge(s.drop(columns=["record_best"]), on=["item", "record_id"], how="outer")
        per_item = s.groupby("item").agg(cosine=("cosine", "max"), semantic_flag=("flag_semantic", "any"))
        item_best = item_best.merge(per_item, left_on="item", right_index=True, how="left")
    if judged is not None and not judged.empty:
        j = judged[["item", "record_id", "judge_score"]].copy()
        j["flag_judged"] = j["judge_score"] >= config.judge.confirm_at
        pairs = pairs.merge(j, on=["item", "record_id"], how="outer")
        per_item = j.groupby("item").agg(judge_score=("judge_score", "max"))
        item_best = item_best.merge(per_item, left_on="item", right_index=True, how="left")

    for column in ("jaccard", "masked_jaccard", "cosine", "judge_score"):
        v[column] = item_best[column].to_numpy() if column in item_best else np.nan
    v["number_substituted"] = (item_best["number_substituted"].fillna(False).astype(bool).to_numpy()
                               if "number_substituted" in item_best else False)
    clean = v["verdict"] == "clean"
    if "near_flag" in item_best:
        v.loc[clean & item_best["near_flag"].fillna(False).astype(bool).to_numpy(), "verdict"] = "near_duplicate"
    clean = v["verdict"] == "clean"
    if "semantic_flag" in item_best:
        v.loc[clean & item_best["semantic_flag"].fillna(False).astype(bool).to_numpy(), "verdict"] = "semantic"
    clean = v["verdict"] == "clean"
    if judged is not None and not judged.empty:
        v.loc[clean & (v["judge_score"] >= config.judge.confirm_at), "verdict"] = "judged"
    v["stages"] = ",".join(config.stages)
    return v, _rank_evidence(pairs, config)


_FLAG = {"exact": "flag_exact", "near_duplicate": "flag_near", "semantic": "flag_semantic", "judged": "flag_judged"}
_FOUND = {"exact": "found_exact", "near_duplicate": "jaccard", "semantic": "cosine", "judged": "judge_score"}


def _rank_evidence(pairs: pd.DataFrame, config: CascadeConfig) -> pd.DataFrame:
    """Label each pair with its method and rank an item's pairs: flagged first, stronger stage first."""
    flags = [c for c in _FLAG.values() if c in pairs]
    for flag in flags:
        pairs[flag] = pairs[flag].astype("boolean").fillna(False).astype(bool)
    stages = [s for s in STAGES if _FOUND[s] in pairs]
    flagged_by = [pairs[_FLAG[s]] for s in stages if _FLAG[s] in pairs]
    found_by = [pairs[_FOUND[s]].notna() & (pairs[_FOUND[s]] != False) for s in stages]  # noqa: E712
    pairs["method"] = np.select(flagged_by + found_by,
                                [s for s in stages if _FLAG[s] in pairs] + stages, default="exact")
    pairs["flagged"] = pairs[flags].any(axis=1) if flags else False
    # Within a method, the stage's own score orders the pairs.
    score = pd.Series(0.0, index=pairs.index)
    for stage, column in (("exact", "coverage"), ("near_duplicate", "jaccard"), ("semantic", "cosine"),
                          ("judged", "judge_score")):
        if column in pairs:
            score = score.mask(pairs["method"] == stage, pairs[column].astype(float).fillna(0.0))
    pairs = pairs.assign(strength=pairs["method"].map(STRENGTH), score=score)
    pairs = pairs.sort_values(["item", "flagged", "strength", "score", "record_id"],
                              ascending=[True, False, True, False, True])
    pairs["rank"] = pairs.groupby("item").cumcount() + 1
    drop = ["found_exact", "strength", "score", *flags]
    return pairs.drop(columns=[c for c in drop if c in pairs]).reset_index(drop=True)
