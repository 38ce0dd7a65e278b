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
:func:`recommend` picks, for a target false-positive rate, a threshold with the
highest recall among those that keep the false positives in budget: the middle
of the band of such thresholds, so it is as far from the negatives as from the
weakest positive it must catch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from synthscope.compute.embeddings import embed, max_cosine
from synthscope.contamination import judge, minhash
from synthscope.contamination.cascade import CascadeConfig
from synthscope.contamination.judge import JudgeConfig
from synthscope.contamination.minhash import NearDuplicateConfig
from synthscope.contamination.ngram import BenchmarkIndex, NgramConfig, scan_texts
from synthscope.contamination.semantic import SemanticConfig
from synthscope.core import schemas
from synthscope.core.base import utc_now
from synthscope.core.text import record_text
from synthscope.core.workspace import DatasetRef, Workspace, atomic_write_json

Progress = Callable[[int, int, str], None]


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
    """The threshold for ``target_fpr``: the most recall in budget, as far from the negatives as possible.

    Every threshold from ``low`` (the lowest with ``fpr <= target_fpr`` and the
    best recall in budget) up to ``high`` (the highest with that recall, i.e. the
    weakest positive it still catches) gives the same recall on these pairs. The
    recommendation is their midpoint: a lowest-threshold rule would sit right on
    the negatives' edge (with few negatives, e.g. at a Jaccard of 0.02 when every
    negative scores 0), a highest one right on the positives'. None if no
    threshold keeps the FPR in budget.
    """
    ok = table[table["fpr"] <= target_fpr]
    if ok.empty:
        return None
    recall = ok["recall"].max()
    low = float(ok.loc[ok["recall"] == recall, "threshold"].min())
    high = float(table.loc[table["recall"] == recall, "threshold"].max())
    threshold = (low + high) / 2
    row = table[table["threshold"] >= threshold].iloc[0]  # what flags at the midpoint: the same positives
    return Recommendation(threshold, float(row["recall"]), float(row["fpr"]), float(row["precision"]),
                          float(row["f1"]))


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
    # A row with no text (a rephrasing the generator left empty) is no evidence either way.
    keep = np.flatnonzero([bool(t.strip()) for t in texts])
    if len(keep) < 2:
        raise ValueError(f"{positives} has {len(keep)} rows with text; calibration needs at least 2")
    items, cands = items.iloc[keep].reset_index(drop=True), cands.iloc[keep].reset_index(drop=True)
    candidates = pd.DataFrame({"candidate_id": cands["record_id"], "text": [texts[k] for k in keep]})
    negatives = shuffled_negatives(len(items), negatives_per_item, seed)
    pairs = pd.concat([
        pd.DataFrame({"item_id": items["record_id"], "candidate_id": cands["record_id"], "label": True,
                      "source": "aligned row"}),
        pd.DataFrame({"item_id": items["record_id"].to_numpy()[negatives[:, 0]],
                      "candidate_id": cands["record_id"].to_numpy()[negatives[:, 1]], "label": False,
                      "source": "shuffled row"}),
    ], ignore_index=True)
    left_out = f"; {len(texts) - len(keep)} empty rows left out" if len(keep) < len(texts) else ""
    return PairSet(items.rename(columns={"record_id": "item_id"}).fillna(""), candidates, pairs,
                   f"{positives} row i vs {benchmark} row i; {negatives_per_item} shuffled negatives per item"
                   + left_out)


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


def score_near(pairset: PairSet, config: NearDuplicateConfig) -> np.ndarray:
    """The near-duplicate stage's score: the best Jaccard of an item field with the candidate
    (numbers masked too, when the stage masks them: a number-substituted copy counts)."""
    fields = [list(pairset.items["prompt"]), list(pairset.items["answer"])]
    cand = list(pairset.candidates["text"])
    sets = [minhash.shingle(f, config.shingle) for f in fields] + [minhash.shingle(cand, config.shingle)]
    if config.mask_numbers:
        masked = [minhash.shingle(f, config.shingle, masked=True) for f in fields]
        masked_cand = minhash.shingle(cand, config.shingle, masked=True)
    item_row = {item_id: i for i, item_id in enumerate(pairset.items["item_id"])}
    cand_row = {cid: i for i, cid in enumerate(pairset.candidates["candidate_id"])}
    scores = []
    for item_id, cid in zip(pairset.pairs["item_id"], pairset.pairs["candidate_id"]):
        i, c = item_row[item_id], cand_row[cid]
        best = max(minhash.jaccard(sets[f].of(i), sets[2].of(c)) for f in (0, 1))
        if config.mask_numbers:
            best = max(best, *(minhash.jaccard(masked[f].of(i), masked_cand.of(c)) for f in (0, 1)))
        scores.append(best)
    return np.array(scores)


def score_judge(ws: Workspace, pairset: PairSet, config: JudgeConfig, progress: Progress | None = None) -> np.ndarray:
    """The judge's P(same problem) for every pair (cached per pair in the workspace)."""
    texts = pairset.item_texts()
    cand = pairset.candidates.set_index("candidate_id")["text"]
    pairs = pd.DataFrame({"item_text": texts.loc[pairset.pairs["item_id"]].to_numpy(),
                          "record_text": cand.loc[pairset.pairs["candidate_id"]].to_numpy()})
    return np.asarray(judge.judge_pairs(ws, pairs, config, progress), dtype=float)


def score_semantic(ws: Workspace, pairset: PairSet, config: SemanticConfig) -> np.ndarray:
    """The semantic stage's score: best window cosine between each pair's item and candidate."""
    model = config.embedder()
    item_vectors, item_windows = embed(ws, model, list(pairset.item_texts()), config.window, config.stride)
    cand_vectors, cand_windows = embed(ws, model, list(pairset.candidates["text"]), config.window, config.stride)
    item_row = {item_id: i for i, item_id in enumerate(pairset.items["item_id"])}
    cand_row = {cid: i for i, cid in enumerate(pairset.candidates["candidate_id"])}
    pairs = np.array([(item_row[i], cand_row[c]) for i, c in zip(pairset.pairs["item_id"],
                                                                  pairset.pairs["candidate_id"])], dtype=np.int64)
    return max_cosine(item_vectors, item_windows.owner, cand_vectors, cand_windows.owner, pairs)


# -- a calibration run -----------------------------------------------------------------------


def run_calibration(ws: Workspace, pairset: PairSet, config: CascadeConfig, target_fpr: float = 0.01,
                    progress: Progress | None = None) -> str:
    """Score every pair with every stage of ``config``, sweep thresholds, store the result.

    Writes ``calibrations/<id>/`` with ``pairs.parquet`` (each pair's scores and
    label), ``sweep.parquet`` (per stage and threshold: recall, FPR, precision,
    F1), ``recommendations.parquet`` (per stage: the threshold for
    ``target_fpr``) and ``manifest.json``; returns the id.
    """
    report = progress or (lambda done, total, message: None)
    labels = pairset.pairs["label"].to_numpy(bool)
    stages = [s for s in config.stages if s in STAGE_SCORES]
    scores: dict[str, np.ndarray] = {}
    for i, stage in enumerate(stages):
        report(i, len(stages), f"scoring {len(labels)} pairs with the {stage} stage")
        if stage == "exact":
            scores[stage] = score_exact(pairset, config.ngram)
        elif stage == "near_duplicate":
            scores[stage] = score_near(pairset, config.near_duplicate)
        elif stage == "semantic":
            scores[stage] = score_semantic(ws, pairset, config.semantic)
        else:
            scores[stage] = score_judge(ws, pairset, config.judge)
    sweeps, recommendations = [], []
    for stage, values in scores.items():
        table = sweep(values, labels).assign(stage=stage)
        sweeps.append(table)
        rec = recommend(table, target_fpr)
        current = _current_threshold(config, stage)
        recommendations.append({"stage": stage, "score": STAGE_SCORES[stage], "target_fpr": target_fpr,
                                "threshold": rec.threshold if rec else None, "recall": rec.recall if rec else None,
                                "fpr": rec.fpr if rec else None, "precision": rec.precision if rec else None,
                                "f1": rec.f1 if rec else None, "current_threshold": current,
                                **_at(table, current)})
    calibration_id = ws.new_id()
    with ws.staged(ws.artefact_dir("calibrations", calibration_id)) as tmp:
        pairs = pairset.pairs.assign(**{f"{s}_score": v for s, v in scores.items()}, calibration_id=calibration_id)
        pairs.to_parquet(tmp / "pairs.parquet", index=False)
        pq.write_table(schemas.to_table(pd.concat(sweeps, ignore_index=True).assign(calibration_id=calibration_id),
                                        schemas.CALIBRATION_SWEEPS), tmp / "sweep.parquet")
        pq.write_table(schemas.to_table(pd.DataFrame(recommendations).assign(calibration_id=calibration_id),
                                        schemas.CALIBRATION_RECOMMENDATIONS), tmp / "recommendations.parquet")
        atomic_write_json(tmp / "manifest.json", {
            "calibration_id": calibration_id, "created_at": utc_now(), "description": pairset.description,
            "positives": int(labels.sum()), "negatives": int((~labels).sum()), "target_fpr": target_fpr,
            "stages": ",".join(stages), "config": config.settings(),
        })
    report(len(stages), len(stages), "done")
    return calibration_id


STAGE_SCORES = {"exact": "coverage", "near_duplicate": "jaccard", "semantic": "cosine", "judged": "judge_score"}
# Where each stage's threshold is set in synthscope.toml.
SETTING = {"exact": "[contamination.ngram] clean_below", "near_duplicate": "[contamination.near_duplicate] flag_at",
           "semantic": "[contamination.semantic] flag_at", "judged": "[contamination.judge] confirm_at"}
TRUTH_COLUMNS = ("dataset", "version", "record_id", "task_id", "must_flag")


def read_truth(path: Path) -> pd.DataFrame:
    """A planted-truth table from Parquet, JSONL or CSV, checked for the columns :func:`truth_pairs` needs."""
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if path.suffix == ".parquet":
        truth = pd.read_parquet(path)
    elif path.suffix in (".jsonl", ".json"):
        truth = pd.read_json(path, lines=path.suffix == ".jsonl", dtype=False)
    elif path.suffix == ".csv":
        truth = pd.read_csv(path, dtype=str)
    else:
        raise ValueError(f"{path}: truth must be .parquet, .jsonl or .csv")
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise ValueError(f"{path}: truth lacks the column(s) {', '.join(missing)}; needs {', '.join(TRUTH_COLUMNS)}")
    truth = truth.astype({c: str for c in TRUTH_COLUMNS if c != "must_flag"})
    flags = truth["must_flag"].astype(str).str.lower().map({"true": True, "1": True, "false": False, "0": False})
    if flags.isna().any():
        bad = int(flags.isna().to_numpy().nonzero()[0][0])
        value = truth["must_flag"].iloc[bad]
        raise ValueError(f"{path}: row {bad + 1}: must_flag must be true or false, got {value!r}")
    truth["must_flag"] = flags.astype(bool)
    if "kind" not in truth.columns:
        truth["kind"] = np.where(truth["must_flag"], "leak", "look-alike")
    return truth


def _current_threshold(config: CascadeConfig, stage: str) -> float | None:
    if stage == "exact":
        return config.ngram.clean_below
    if stage == "near_duplicate":
        return config.near_duplicate.flag_at
    if stage == "semantic":
        return config.semantic.flag_at
    return config.judge.confirm_at


def _at(table: pd.DataFrame, threshold: float | None) -> dict[str, float | None]:
    """Recall and FPR of the stage at the threshold it uses now."""
    if threshold is None:
        return {"current_recall": None, "current_fpr": None}
    above = table[table["threshold"] >= threshold]
    if above.empty:
        return {"current_recall": 0.0, "current_fpr": 0.0}
    row = above.iloc[0]
    return {"current_recall": float(row["recall"]), "current_fpr": float(row["fpr"])}
