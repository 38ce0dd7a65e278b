"""Calibration: measure each stage on known positives and negatives, and pick its threshold.

A *pair* is a benchmark item and a candidate text with a label: 1 when the
candidate is known contamination of the item (a verbatim copy, a rephrasing, a
planted leak), 0 when it is known not to be (an unrelated item's rephrasing, a
clean look-alike). Each stage gives every pair a score (exact: n-gram coverage;
near-duplicate: Jaccard; semantic: cosine; judged: P(same)).

For a threshold ``t`` a stage flags the pairs with ``score >= t``:

* recall (true-positive rate) ``TP / P``, false-positive rate ``FP / N``,
* precision ``TP / (TP + FP)``, ``F1 = 2 * precision * recall / (precision + recall)``.

:func:`sweep` evaluates every distinct score as a threshold (exact, no binning);
:func:`recommend` picks, for a target false-positive rate, the lowest threshold
whose FPR stays at or under it, which is the one with the highest recall among
those that keep the false positives in budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from analysis.contamination.ngram import BenchmarkIndex, NgramConfig, scan_texts
from analysis.text import record_text
from analysis.workspace import DatasetRef, Workspace


def sweep(scores: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Recall, FPR, precision and F1 at every distinct score used as the threshold.

    Rows are sorted by threshold, ascending. Missing scores (NaN: the stage could
    not score the pair) count as never flagged.
    """
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    if scores.shape != labels.shape:
        raise ValueError("scores and labels must have the same length")
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        raise ValueError(f"calibration needs positives and negatives; got {positives} and {negatives}")
    known = ~np.isnan(scores)
    s, y = scores[known], labels[known]
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    # After the last occurrence of each distinct score (descending), the counts flagged at that threshold.
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1] if len(s) else np.array([], dtype=int)
    out = pd.DataFrame({"threshold": s[last], "tp": tp[last], "fp": fp[last]})
    out["recall"] = out["tp"] / positives
    out["fpr"] = out["fp"] / negatives
    flagged = out["tp"] + out["fp"]
    out["precision"] = np.where(flagged > 0, out["tp"] / flagged.clip(lower=1), 1.0)
    denom = out["precision"] + out["recall"]
    out["f1"] = np.where(denom > 0, 2 * out["precision"] * out["recall"] / denom.where(denom > 0, 1), 0.0)
    return out.sort_values("threshold").reset_index(drop=True)


@dataclass(frozen=True)
class Recommendation:
    threshold: float
    recall: float
    fpr: float
    precision: float
    f1: float


def recommend(table: pd.DataFrame, target_fpr: float) -> Recommendation | None:
    """The lowest threshold with ``fpr <= target_fpr`` (the most recall in budget); None if none is."""
    ok = table[table["fpr"] <= target_fpr]
    if ok.empty:
        return None
    best = ok.sort_values(["recall", "threshold"], ascending=[False, True]).iloc[0]
    # A threshold exactly at the best negative's score would flag it; the row already counts that.
    return Recommendation(float(best["threshold"]), float(best["recall"]), float(best["fpr"]),
                          float(best["precision"]), float(best["f1"]))


def shuffled_negatives(n: int, per_item: int, seed: int = 0) -> np.ndarray:
    """``per_item`` partners ``j != i`` for each of ``n`` items: shape ``(n * per_item, 2)`` of (i, j)."""
    if n < 2:
        raise ValueError("shuffled negatives need at least two items")
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        choices = rng.choice(n - 1, size=min(per_item, n - 1), replace=False)
        partners = np.where(choices >= i, choices + 1, choices)  # skip i itself
        pairs.extend((i, int(j)) for j in partners)
    return np.array(pairs, dtype=np.int64)


# -- known pairs -----------------------------------------------------------------------------


@dataclass
class PairSet:
    """Benchmark items, candidate texts, and labelled (item, candidate) pairs."""

    items: pd.DataFrame  # item_id, prompt, answer
    candidates: pd.DataFrame  # candidate_id, text
    pairs: pd.DataFrame  # item_id, candidate_id, label (bool), source (str)
    description: str

    def item_texts(self) -> pd.Series:
        return pd.Series([record_text(p, a) for p, a in zip(self.items["prompt"], self.items["answer"])],
                         index=self.items["item_id"])


def _records(ws: Workspace, ref: DatasetRef) -> pd.DataFrame:
    return pq.read_table(ws.records_path(ws.resolve(ref)), columns=["record_id", "prompt", "answer"]).to_pandas()


def aligned_pairs(ws: Workspace, benchmark: DatasetRef, positives: DatasetRef, negatives_per_item: int = 5,
                  seed: int = 0) -> PairSet:
    """Row ``i`` of ``positives`` is known contamination of row ``i`` of ``benchmark`` (e.g. its
    rephrasing); ``negatives_per_item`` other rows ``j != i`` per item are known negatives."""
    items, cands = _records(ws, benchmark), _records(ws, positives)
    if len(items) != len(cands):
        raise ValueError(f"{benchmark} has {len(items)} rows and {positives} {len(cands)}; "
                         "aligned calibration pairs row i with row i, so they must match")
    texts = [record_text(p or "", a or "") for p, a in zip(cands["prompt"], cands["answer"])]
    candidates = pd.DataFrame({"candidate_id": cands["record_id"], "text": texts})
    negatives = shuffled_negatives(len(items), negatives_per_item, seed)
    pairs = pd.concat([
        pd.DataFrame({"item_id": items["record_id"], "candidate_id": cands["record_id"], "label": True,
                      "source": "aligned row"}),
        pd.DataFrame({"item_id": items["record_id"].to_numpy()[negatives[:, 0]],
                      "candidate_id": cands["record_id"].to_numpy()[negatives[:, 1]], "label": False,
                      "source": "shuffled row"}),
    ], ignore_index=True)
    return PairSet(items.rename(columns={"record_id": "item_id"}).fillna(""), candidates, pairs,
                   f"{positives} row i vs {benchmark} row i; {negatives_per_item} shuffled negatives per item")


def truth_pairs(ws: Workspace, benchmark: DatasetRef, truth: pd.DataFrame, negatives_per_item: int = 5,
                seed: int = 0) -> PairSet:
    """Pairs from a planted-truth table (``dataset, version, record_id, task_id, must_flag``).

    Rows that must be flagged are positives of their item; the others (clean
    look-alikes) are negatives of the item they imitate; every planted row is
    also a shuffled negative of ``negatives_per_item`` other items.
    """
    items = _records(ws, benchmark).rename(columns={"record_id": "item_id"}).fillna("")
    texts = []
    for (dataset, version), group in truth.groupby(["dataset", "version"]):
        records = _records(ws, DatasetRef(dataset, version)).set_index("record_id")
        for rid in group["record_id"]:
            row = records.loc[rid]
            texts.append((f"{dataset}@{version}/{rid}", record_text(row["prompt"] or "", row["answer"] or "")))
    candidates = pd.DataFrame(texts, columns=["candidate_id", "text"]).drop_duplicates("candidate_id")
    truth = truth.assign(candidate_id=truth["dataset"] + "@" + truth["version"] + "/" + truth["record_id"])
    planted = pd.DataFrame({"item_id": truth["task_id"], "candidate_id": truth["candidate_id"],
                            "label": truth["must_flag"].astype(bool),
                            "source": np.where(truth["must_flag"], "planted " + truth["kind"], truth["kind"])})
    rng = np.random.default_rng(seed)
    ids = items["item_id"].to_numpy()
    shuffled = []
    for row in planted.itertuples():
        others = ids[ids != row.item_id]
        for other in rng.choice(others, size=min(negatives_per_item, len(others)), replace=False):
            shuffled.append((other, row.candidate_id, False, "shuffled item"))
    pairs = pd.concat([planted, pd.DataFrame(shuffled, columns=planted.columns)], ignore_index=True)
    return PairSet(items, candidates, pairs, f"planted truth vs {benchmark}; {negatives_per_item} shuffled items each")


# -- scoring pairs ---------------------------------------------------------------------------


def score_exact(pairset: PairSet, config: NgramConfig) -> np.ndarray:
    """n-gram coverage of each pair's item by its candidate (the exact stage's score)."""
    index = BenchmarkIndex(list(pairset.items["prompt"]), list(pairset.items["answer"]), config.ns)
    result = scan_texts(index, list(pairset.candidates["text"]), list(pairset.candidates["candidate_id"]),
                        top_k=max(len(pairset.candidates), 1))
    item_ids = pairset.items["item_id"].to_numpy()
    found = {(item_ids[i], rid): cov for i, rid, cov in
             zip(result.pairs["item"], result.pairs["record_id"], result.pairs["coverage"])}
    return np.array([found.get((i, c), 0.0) for i, c in zip(pairset.pairs["item_id"], pairset.pairs["candidate_id"])])
