"""Calibration: measure each stage on known positives and hard negatives, as a scan sees them, and pick thresholds.

Known positives (twins)
    A *twin* of a benchmark item is a text known to be contamination of it:
    row ``i`` of an aligned dataset (its rephrasing, translation, copy) or a
    planted leak of a truth table. Each stage scores every (item, candidate)
    pair (exact: n-gram coverage; near-duplicate: Jaccard; semantic: best-window
    cosine; judged: P(same)).

Hard negatives, item level
    A scan compares every benchmark item with every record, so what decides a
    false flag is the item's *nearest* non-twin, not one random partner: a
    shuffled pair (item ``i`` against one other item's rephrasing) measured
    0.2 % FPR where a real scan flagged 38 % of same-kind items. So every item
    is compared with every candidate that is not its twin: every other
    benchmark item (the benchmark against itself: different problems, often on
    the same topic) and every other item's known positive (same-kind text). For
    a stage with score ``s`` and threshold ``t``::

        hardest(i)     = max_{c not a twin of i, c != i} s(i, c)        (the item's nearest non-twin)
        item FPR(t)    = |{i : hardest(i) >= t}| / N_items               (what a scan shows)
        pair FPR(t)    = |{(i, c) negative : s(i, c) >= t}| / N_pairs    (per comparison)
        recall(t)      = |{twin pairs p : s(p) >= t}| / P                (one per item when aligned)
        precision(t)   = TP / (TP + FP),  FP = items falsely flagged;  F1 = 2PR / (P + R)

    The pair FPR is what an expected-false-flags estimate multiplies: an item
    compared with ``R`` unrelated records gets about ``R * pairFPR(t)`` false
    flags (:class:`FprCurve`). The semantic stage's mutual-best margin is not
    applied: it only ever removes flags, so the item FPR here is an upper bound
    of a scan's on the same texts. The judge sees, as in a scan, each item's
    nearest candidate by cosine: its hard negatives are each item's nearest
    non-twin by the semantic stage.

Recommending a threshold
    Among thresholds at or above the stage's floor (near-duplicate: the LSH
    candidate threshold, below which a scan never even proposes a pair;
    semantic: ``candidate_at``; exact and judged: above 0) whose item FPR is at
    most the target and that catch at least one positive, the recommendation
    has the most recall, in the middle of the band of thresholds with that
    recall (as far from the negatives as from the weakest positive it must
    catch). It is refused, with the reason stored, when fewer than
    ``3 / target`` items back the item FPR (the target would allow fewer than
    three false flags: one item more or less moves the rate by a third of the
    target or more) or when no threshold meets it.

Artefacts (``calibrations/<id>/``)
    ``pairs.parquet`` (every twin pair and each item's hardest non-twin per
    stage, with every stage's score), ``sweep.parquet`` (item level: every
    distinct score as the threshold, exact), ``fpr.parquet`` (per stage on a
    grid of :data:`GRID_STEP`: pair FPR, item FPR and recall, for
    :class:`FprCurve`), ``recommendations.parquet`` and ``manifest.json``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from synthscope.algorithms.minhash import Shingles, jaccard, shingle
from synthscope.compute.embeddings import embed, max_cosine
from synthscope.contamination import judge
from synthscope.contamination.cascade import CascadeConfig
from synthscope.contamination.minhash import NearDuplicateConfig
from synthscope.contamination.ngram import BenchmarkIndex, NgramConfig, scan_texts
from synthscope.contamination.semantic import SemanticConfig
from synthscope.core import schemas
from synthscope.core.base import utc_now
from synthscope.core.text import record_text
from synthscope.core.workspace import DatasetRef, Workspace, atomic_write_json

Progress = Callable[[int, int, str], None]

GRID_STEP = 0.001  # resolution of the stored FPR curves (fpr.parquet)
MIN_FALSE_POSITIVES = 3  # a target FPR must allow at least this many falsely flagged items to be measured
_BLOCK_CELLS = 4_000_000  # (item, candidate) scores held at once


def sweep(scores: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Recall, FPR, precision and F1 at every distinct score used as the threshold.

    Rows are sorted by threshold, ascending. Missing scores (NaN: the stage could
    not score the pair) count as never flagged. :func:`run_calibration` feeds it
    the twin scores and each item's hardest non-twin score, so its FPR is the
    item-level one.
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


def min_negative_items(target_fpr: float) -> int:
    """Items with hard negatives needed to measure an item FPR of ``target_fpr``: ``ceil(3 / target)``.

    With fewer, the target allows fewer than three falsely flagged items, so one
    item more or less moves the measured rate by a third of the target or more.
    """
    return math.ceil(MIN_FALSE_POSITIVES / target_fpr - 1e-9) if target_fpr > 0 else 0


@dataclass(frozen=True)
class Recommendation:
    """A stage's threshold for a target FPR with its rates there, or ``reason`` why there is none."""

    threshold: float | None
    recall: float | None
    fpr: float | None
    precision: float | None
    f1: float | None
    reason: str | None = None

    @property
    def refused(self) -> bool:
        return self.threshold is None


def recommend(table: pd.DataFrame, target_fpr: float, floor: float = -math.inf, strict_floor: bool = False,
              negatives: int | None = None) -> Recommendation:
    """The threshold for ``target_fpr``: the most recall in budget, as far from the negatives as possible.

    ``table`` is a :func:`sweep` (item level in a calibration). Eligible
    thresholds are at or above ``floor`` (above it with ``strict_floor``), keep
    ``fpr <= target_fpr`` and catch at least one positive. Let ``low`` be the
    lowest eligible threshold with the best eligible recall and ``high`` the
    highest threshold with that recall (the weakest positive it must catch):
    every threshold above ``lower`` (the swept score just below ``low``, or the
    floor if higher) up to ``high`` flags those positives and keeps the budget.
    The recommendation is the middle of that band (rounded to three decimals
    when that changes nothing): a lowest-threshold rule would sit right on the
    negatives' edge, a highest one right on the positives'. Refused
    (``threshold`` None, ``reason`` set) when ``negatives`` is below
    :func:`min_negative_items` or nothing is eligible.
    """
    def refuse(reason: str) -> Recommendation:
        return Recommendation(None, None, None, None, None, reason)

    def usable(t: float) -> bool:
        return t > floor if strict_floor else t >= floor

    needed = min_negative_items(target_fpr)
    if negatives is not None and negatives < needed:
        return refuse(f"only {negatives} items have hard negatives; an item-level FPR of {target_fpr:g} needs at "
                      f"least {needed} (3 / target) to be measured")
    where = f"above {floor:g}" if strict_floor else f"from the floor {floor:g}"
    catching = table[table["threshold"].map(usable) & (table["recall"] > 0)]
    if catching.empty:
        return refuse(f"no known positive scores {where} (recall 0 at every threshold the stage can use)")
    ok = catching[catching["fpr"] <= target_fpr]
    if ok.empty:
        strictest = catching.iloc[-1]
        return refuse(f"no threshold {where} keeps the item-level FPR within {target_fpr:g} and catches a positive: "
                      f"at {strictest['threshold']:.3f}, where only the strongest positives are caught "
                      f"(recall {strictest['recall']:.3f}), it is {strictest['fpr']:.3f}")
    recall = ok["recall"].max()
    low = float(ok.loc[ok["recall"] == recall, "threshold"].min())
    high = float(table.loc[table["recall"] == recall, "threshold"].max())
    below = table.loc[table["threshold"] < low, "threshold"]
    lower = max(float(below.max()) if len(below) else low, floor)

    def flags(t: float) -> pd.Series:  # what a threshold flags: that of the first swept score at or above it
        return table[table["threshold"] >= t].iloc[0]

    def keeps(t: float) -> bool:
        return (usable(t) and lower <= t <= high and flags(t)["recall"] == recall
                and flags(t)["fpr"] <= target_fpr)

    middle = (lower + high) / 2
    rounded = [round(middle, 3), math.ceil(middle * 1000) / 1000, math.floor(middle * 1000) / 1000]
    threshold = next((t for t in rounded if keeps(t)), middle if keeps(middle) else low)
    row = flags(threshold)
    return Recommendation(threshold, float(row["recall"]), float(row["fpr"]), float(row["precision"]),
                          float(row["f1"]))


def shuffled_negatives(n: int, per_item: int, seed: int = 0) -> np.ndarray:
    """``per_item`` random partners ``j != i`` for each of ``n`` items: shape ``(n * per_item, 2)`` of (i, j).

    The old, too easy negatives: kept to show how much they understate a scan's FPR.
    """
    if n < 2:
        raise ValueError("shuffled negatives need at least two items")
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        choices = rng.choice(n - 1, size=min(per_item, n - 1), replace=False)
        partners = np.where(choices >= i, choices + 1, choices)  # skip i itself
        pairs.extend((i, int(j)) for j in partners)
    return np.array(pairs, dtype=np.int64)


# -- items, candidates and twins -------------------------------------------------------------


@dataclass
class PairSet:
    """Benchmark items, the candidate texts every item is compared with, and each item's twins.

    Every (item, candidate) pair that is not a twin pair and not the item
    against itself is a hard negative.
    """

    items: pd.DataFrame  # item_id, prompt, answer
    candidates: pd.DataFrame  # candidate_id, text, kind, self_item (the item it is, for benchmark items; else None)
    positives: pd.DataFrame  # item_id, candidate_id, source: the twin pairs
    description: str
    benchmark: str = ""  # the benchmark version, NAME@VERSION

    def item_texts(self) -> list[str]:
        return [record_text(p, a) for p, a in zip(self.items["prompt"], self.items["answer"])]

    def index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Row numbers ``(twin items, twin candidates, self items, self candidates)``."""
        item_row = {item_id: i for i, item_id in enumerate(self.items["item_id"])}
        cand_row = {cid: c for c, cid in enumerate(self.candidates["candidate_id"])}
        twin_i = np.array([item_row[i] for i in self.positives["item_id"]], dtype=np.int64)
        twin_c = np.array([cand_row[c] for c in self.positives["candidate_id"]], dtype=np.int64)
        own = [(item_row[s], c) for c, s in enumerate(self.candidates["self_item"]) if s is not None and s in item_row]
        self_i = np.array([i for i, _ in own], dtype=np.int64)
        self_c = np.array([c for _, c in own], dtype=np.int64)
        return twin_i, twin_c, self_i, self_c

    def negative_pairs(self) -> int:
        """Hard-negative pairs: every (item, candidate) but the twin pairs and each item against itself."""
        twin_i, twin_c, self_i, self_c = self.index()
        excluded = {(int(i), int(c)) for i, c in zip(np.r_[twin_i, self_i], np.r_[twin_c, self_c])}
        return len(self.items) * len(self.candidates) - len(excluded)

    def negative_items(self) -> int:
        """Items with at least one hard negative (every item, once there are two candidates besides its own)."""
        twin_i, _, self_i, _ = self.index()
        excluded = np.bincount(np.r_[twin_i, self_i], minlength=len(self.items)) if len(self.items) else np.zeros(0)
        return int((len(self.candidates) - excluded > 0).sum())


def _records(ws: Workspace, ref: DatasetRef) -> pd.DataFrame:
    return pq.read_table(ws.records_path(ws.resolve(ref)), columns=["record_id", "prompt", "answer"]).to_pandas()


def _benchmark_candidates(items: pd.DataFrame, benchmark: str) -> pd.DataFrame:
    """Every benchmark item as a candidate of the others (the benchmark against itself)."""
    return pd.DataFrame({"candidate_id": [f"{benchmark}/{i}" for i in items["item_id"]],
                         "text": [record_text(p, a) for p, a in zip(items["prompt"], items["answer"])],
                         "kind": "benchmark item", "self_item": list(items["item_id"])})


def aligned_pairs(ws: Workspace, benchmark: DatasetRef, positives: DatasetRef) -> PairSet:
    """Row ``i`` of ``positives`` is known contamination of row ``i`` of ``benchmark`` (e.g. its rephrasing).

    Every benchmark item is compared with every other item and every other
    row: those are its hard negatives. A row with no text (a rephrasing the
    generator left empty) is no evidence either way and is left out.
    """
    bench_ref, pos_ref = ws.resolve(benchmark), ws.resolve(positives)
    items, rows = _records(ws, bench_ref), _records(ws, pos_ref)
    if len(items) != len(rows):
        raise ValueError(f"{benchmark} has {len(items)} rows and {positives} {len(rows)}; "
                         "aligned calibration pairs row i with row i, so they must match")
    texts = [record_text(p or "", a or "") for p, a in zip(rows["prompt"], rows["answer"])]
    keep = np.flatnonzero([bool(t.strip()) for t in texts])
    if len(keep) < 1:
        raise ValueError(f"{positives} has no row with text; calibration needs at least one known positive")
    if len(items) < 2:
        raise ValueError(f"{benchmark} has {len(items)} item; hard negatives need at least two")
    items = items.rename(columns={"record_id": "item_id"}).fillna("")
    twin_ids = [f"{pos_ref}/{rows['record_id'].iloc[k]}" for k in keep]
    candidates = pd.concat([
        _benchmark_candidates(items, str(bench_ref)),
        pd.DataFrame({"candidate_id": twin_ids, "text": [texts[k] for k in keep], "kind": "aligned row",
                      "self_item": None}),
    ], ignore_index=True)
    twins = pd.DataFrame({"item_id": items["item_id"].iloc[keep].to_numpy(), "candidate_id": twin_ids,
                          "source": "aligned row"})
    left_out = f"; {len(texts) - len(keep)} empty rows left out" if len(keep) < len(texts) else ""
    return PairSet(items, candidates, twins,
                   f"{positives} row i vs {benchmark} row i; hard negatives: every other item and row" + left_out,
                   str(bench_ref))


def truth_pairs(ws: Workspace, benchmark: DatasetRef, truth: pd.DataFrame) -> PairSet:
    """Pairs from a planted-truth table (``dataset, version, record_id, task_id, must_flag[, kind]``).

    A row that must be flagged is a twin of its item; every planted row (clean
    look-alikes included) and every other benchmark item is a hard negative of
    each item it is not a twin of.
    """
    bench_ref = ws.resolve(benchmark)
    items = _records(ws, bench_ref).rename(columns={"record_id": "item_id"}).fillna("")
    unknown = sorted(set(truth.loc[truth["must_flag"], "task_id"]) - set(items["item_id"]))
    if unknown:
        raise ValueError(f"the truth names {len(unknown)} item(s) {benchmark} lacks, e.g. {unknown[0]!r}")
    texts, kinds = {}, {}
    for (dataset, version), group in truth.groupby(["dataset", "version"]):
        records = _records(ws, DatasetRef(dataset, version)).set_index("record_id")
        for rid, kind, must in zip(group["record_id"], group["kind"], group["must_flag"]):
            row = records.loc[rid]
            cid = f"{dataset}@{version}/{rid}"
            texts[cid] = record_text(row["prompt"] or "", row["answer"] or "")
            kinds.setdefault(cid, f"planted {kind}" if must else str(kind))
    planted = pd.DataFrame({"candidate_id": list(texts), "text": list(texts.values()),
                            "kind": [kinds[c] for c in texts], "self_item": None})
    candidates = pd.concat([_benchmark_candidates(items, str(bench_ref)), planted], ignore_index=True)
    must = truth[truth["must_flag"]]
    twin_ids = must["dataset"] + "@" + must["version"] + "/" + must["record_id"]
    twins = pd.DataFrame({"item_id": must["task_id"].to_numpy(), "candidate_id": twin_ids.to_numpy(),
                          "source": ("planted " + must["kind"]).to_numpy()})
    twins = twins.drop_duplicates(["item_id", "candidate_id"])
    if twins.empty:
        raise ValueError("the truth has no row with must_flag true; calibration needs at least one known positive")
    look_alikes = int((~truth["must_flag"]).sum())
    return PairSet(items, candidates, twins.reset_index(drop=True),
                   f"planted truth vs {benchmark}; hard negatives: every other item, every planted row "
                   f"({look_alikes} clean look-alikes)", str(bench_ref))


# -- scoring every (item, candidate) pair ------------------------------------------------


class _Scorer(Protocol):
    def block(self, start: int, stop: int) -> np.ndarray: ...  # scores of items [start, stop) x every candidate

    def pairs(self, items: np.ndarray, cands: np.ndarray) -> np.ndarray: ...  # scores of given pairs


class ExactScores:
    """n-gram coverage of each item by each candidate (the exact stage's score); sparse: most pairs are 0."""

    def __init__(self, pairset: PairSet, config: NgramConfig) -> None:
        index = BenchmarkIndex(list(pairset.items["prompt"]), list(pairset.items["answer"]), config.ns)
        m = len(pairset.candidates)
        result = scan_texts(index, list(pairset.candidates["text"]), [str(c) for c in range(m)], top_k=max(m, 1))
        i = result.pairs["item"].to_numpy(np.int64)
        c = result.pairs["record_id"].astype(np.int64).to_numpy()
        order = np.lexsort((c, i))
        self.i, self.c, self.v = i[order], c[order], result.pairs["coverage"].to_numpy(float)[order]
        self.m = m
        self.lookup = {(int(a), int(b)): float(v) for a, b, v in zip(self.i, self.c, self.v)}

    def block(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros((stop - start, self.m))
        a, b = np.searchsorted(self.i, [start, stop])
        out[self.i[a:b] - start, self.c[a:b]] = self.v[a:b]
        return out

    def pairs(self, items: np.ndarray, cands: np.ndarray) -> np.ndarray:
        return np.array([self.lookup.get((int(i), int(c)), 0.0) for i, c in zip(items, cands)], dtype=float)


class NearScores:
    """The near-duplicate stage's score: the best Jaccard of an item field (prompt, answer) with the candidate.

    With ``mask_numbers``, the masked Jaccard counts too (a number-substituted
    copy). All pairs at once as sparse products: ``|A ∩ B|`` is ``A @ B.T`` over
    0/1 shingle matrices and ``J = |A ∩ B| / (|A| + |B| - |A ∩ B|)``, 0 when
    either set is empty (as :func:`synthscope.algorithms.minhash.jaccard`).
    """

    def __init__(self, pairset: PairSet, config: NearDuplicateConfig) -> None:
        self.m = len(pairset.candidates)
        fields = [list(pairset.items["prompt"]), list(pairset.items["answer"])]
        cand_texts = list(pairset.candidates["text"])
        self.sets: list[tuple[Shingles, Shingles]] = []
        self.parts = []
        for masked in ((False, True) if config.mask_numbers else (False,)):
            cand = shingle(cand_texts, config.shingle, masked=masked)
            field_sets = [shingle(f, config.shingle, masked=masked) for f in fields]
            vocab = np.unique(np.concatenate([cand.values] + [f.values for f in field_sets]))
            cand_t = _incidence(cand, vocab).T.tocsr()
            for f in field_sets:
                self.sets.append((f, cand))
                self.parts.append((_incidence(f, vocab), f.sizes().astype(float), cand_t, cand.sizes().astype(float)))

    def block(self, start: int, stop: int) -> np.ndarray:
        best = np.zeros((stop - start, self.m))
        for a, a_size, b_t, b_size in self.parts:
            inter = (a[start:stop] @ b_t).toarray()
            union = a_size[start:stop, None] + b_size[None, :] - inter
            valid = (a_size[start:stop, None] > 0) & (b_size[None, :] > 0)
            np.maximum(best, np.divide(inter, union, out=np.zeros_like(inter), where=valid), out=best)
        return best

    def pairs(self, items: np.ndarray, cands: np.ndarray) -> np.ndarray:
        return np.array([max(jaccard(f.of(int(i)), c_set.of(int(c))) for f, c_set in self.sets)
                         for i, c in zip(items, cands)], dtype=float)


def _incidence(sets: Shingles, vocab: np.ndarray) -> Any:
    """The 0/1 matrix texts x ``vocab`` of shingle sets (scipy CSR)."""
    from scipy import sparse

    return sparse.csr_matrix((np.ones(len(sets.values)), np.searchsorted(vocab, sets.values), sets.offsets),
                             shape=(len(sets), len(vocab)))


class SemanticScores:
    """The semantic stage's score: the best cosine between a window of the item and one of the candidate.

    NaN where either text has no window (it is empty).
    """

    def __init__(self, ws: Workspace, pairset: PairSet, config: SemanticConfig) -> None:
        model = config.embedder()
        self.iv, windows = embed(ws, model, pairset.item_texts(), config.window, config.stride)
        self.io = windows.owner
        self.cv, windows = embed(ws, model, list(pairset.candidates["text"]), config.window, config.stride)
        self.co = windows.owner
        self.m = len(pairset.candidates)
        self.c_present = np.unique(self.co)
        self.c_starts = np.searchsorted(self.co, self.c_present)

    def block(self, start: int, stop: int) -> np.ndarray:
        out = np.full((stop - start, self.m), np.nan)
        a, b = np.searchsorted(self.io, [start, stop])
        if a == b or not len(self.c_present):
            return out
        sim = np.maximum.reduceat(self.iv[a:b] @ self.cv.T, self.c_starts, axis=1)
        owners = self.io[a:b]
        present = np.unique(owners)
        sim = np.maximum.reduceat(sim, np.searchsorted(owners, present), axis=0)
        out[np.ix_(present - start, self.c_present)] = sim
        return out

    def pairs(self, items: np.ndarray, cands: np.ndarray) -> np.ndarray:
        return max_cosine(self.iv, self.io, self.cv, self.co, np.c_[items, cands])

    def windows_per_item(self) -> float:
        return len(self.io) / max(int(self.io.max()) + 1 if len(self.io) else 1, 1)


class JudgeScores:
    """The judge's P(same problem), for the pairs it is shown (cached per pair in the workspace)."""

    def __init__(self, ws: Workspace, pairset: PairSet, config: judge.JudgeConfig,
                 progress: Progress | None = None) -> None:
        self.ws, self.config, self.progress = ws, config, progress
        self.item_texts = pairset.item_texts()
        self.cand_texts = list(pairset.candidates["text"])

    def block(self, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError("the judge scores only the pairs it is shown")

    def pairs(self, items: np.ndarray, cands: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame({"item_text": [self.item_texts[int(i)] for i in items],
                              "record_text": [self.cand_texts[int(c)] for c in cands]})
        return np.asarray(judge.judge_pairs(self.ws, frame, self.config, self.progress), dtype=float)


def grid(stage: str) -> np.ndarray:
    """The thresholds of a stage's stored FPR curve: every :data:`GRID_STEP` over its score's range."""
    low = -1.0 if stage == "semantic" else 0.0
    return np.round(np.arange(round(low / GRID_STEP), round(1 / GRID_STEP) + 1) * GRID_STEP, 3)


def _at_least(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each threshold, how many ``values`` are at or above it (NaN never)."""
    values = values[~np.isnan(values)]
    return len(values) - np.searchsorted(np.sort(values), thresholds, side="left")


@dataclass
class StageScores:
    """What one stage measured: the twins' scores, each item's hardest non-twin, and the negative pairs' curve."""

    stage: str
    positive: np.ndarray  # per twin pair (PairSet.positives order): its score, NaN if unscored
    hardest: np.ndarray  # per item: its best score over non-twin candidates, NaN if none was scored
    hardest_candidate: np.ndarray  # per item: that candidate's row, -1 if none
    has_negatives: np.ndarray  # per item: whether it has any hard negative (the item FPR counts these items)
    thresholds: np.ndarray  # grid(stage)
    pair_at_least: np.ndarray  # per grid threshold: negative pairs scoring at or above it
    pairs: int  # negative pairs scored

    @property
    def negative_items(self) -> int:
        return int(self.has_negatives.sum())

    def item_table(self) -> pd.DataFrame:
        """The exact item-level sweep: the twins against each item's hardest non-twin (``fpr`` is the item FPR)."""
        hardest = self.hardest[self.has_negatives]
        return sweep(np.r_[self.positive, hardest],
                     np.r_[np.ones(len(self.positive), bool), np.zeros(len(hardest), bool)])

    def curve(self) -> FprCurve:
        """The pair FPR, item FPR and recall on the stage's grid."""
        items, pairs = self.negative_items, self.pairs
        return FprCurve(self.stage, self.thresholds,
                        self.pair_at_least / pairs if pairs else np.zeros(len(self.thresholds)),
                        _at_least(self.hardest[self.has_negatives], self.thresholds) / max(items, 1),
                        _at_least(self.positive, self.thresholds) / max(len(self.positive), 1),
                        pairs, items, len(self.positive))


def score_stage(scorer: _Scorer, pairset: PairSet, stage: str, block_rows: int | None = None) -> StageScores:
    """Score every (item, candidate) pair with ``scorer``, a block of items at a time, and reduce.

    Keeps each twin pair's score, each item's best non-twin score (and which
    candidate), and counts the negative pairs at or above every grid threshold;
    nothing of size items x candidates is kept.
    """
    n, m = len(pairset.items), len(pairset.candidates)
    twin_i, twin_c, self_i, self_c = pairset.index()
    thresholds = grid(stage)
    counts = np.zeros(len(thresholds) + 1, dtype=np.int64)
    positive = np.full(len(twin_i), np.nan)
    hardest = np.full(n, np.nan)
    hardest_candidate = np.full(n, -1, dtype=np.int64)
    has_negatives = np.zeros(n, dtype=bool)
    scored = 0
    rows = block_rows or max(1, _BLOCK_CELLS // max(m, 1))
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block = scorer.block(start, stop)
        negative = np.ones(block.shape, dtype=bool)
        mine = (twin_i >= start) & (twin_i < stop)
        negative[twin_i[mine] - start, twin_c[mine]] = False
        positive[mine] = block[twin_i[mine] - start, twin_c[mine]]
        own = (self_i >= start) & (self_i < stop)
        negative[self_i[own] - start, self_c[own]] = False
        has_negatives[start:stop] = negative.any(axis=1)
        usable = negative & ~np.isnan(block)
        values = block[usable]
        scored += len(values)
        # bin k + 1 holds thresholds[k] <= s < thresholds[k + 1] (the last one also s above 1); bin 0, s below
        counts += np.bincount(np.searchsorted(thresholds, values, side="right"), minlength=len(counts))
        masked = np.where(usable, block, -np.inf)
        best = masked.argmax(axis=1)
        value = masked[np.arange(stop - start), best]
        found = np.isfinite(value)
        hardest[start:stop][found] = value[found]
        hardest_candidate[start:stop][found] = best[found]
    pair_at_least = np.cumsum(counts[::-1])[::-1][1:]
    return StageScores(stage, positive, hardest, hardest_candidate, has_negatives, thresholds, pair_at_least, scored)


def score_pairs_only(scorer: _Scorer, pairset: PairSet, stage: str, nearest: np.ndarray) -> StageScores:
    """Like :func:`score_stage` for a scorer shown only the twins and each item's ``nearest`` candidate (the judge)."""
    twin_i, twin_c, _, _ = pairset.index()
    thresholds = grid(stage)
    n = len(pairset.items)
    items = np.flatnonzero(nearest >= 0)
    positive = scorer.pairs(twin_i, twin_c) if len(twin_i) else np.zeros(0)
    negative = scorer.pairs(items, nearest[items]) if len(items) else np.zeros(0)
    hardest = np.full(n, np.nan)
    hardest[items] = negative
    has_negatives = np.zeros(n, dtype=bool)
    has_negatives[items] = True
    negative = np.asarray(negative, float)
    return StageScores(stage, np.asarray(positive, float), hardest, nearest.copy(), has_negatives, thresholds,
                       _at_least(negative, thresholds), int((~np.isnan(negative)).sum()))


@dataclass(frozen=True)
class FprCurve:
    """A stage's rates against its threshold, on a grid of :data:`GRID_STEP` (``fpr.parquet``).

    A threshold between grid points is read at the grid point at or below it,
    which flags at least as much: the rates are upper bounds there.
    ``expected_false_flags(t, records)`` is ``records * pair_fpr(t)``: how many
    unrelated records an item compared with ``records`` of them matches at ``t``.
    """

    stage: str
    thresholds: np.ndarray
    pair_fprs: np.ndarray
    item_fprs: np.ndarray
    recalls: np.ndarray
    negative_pairs: int
    negative_items: int
    positives: int

    def _at(self, values: np.ndarray, threshold: float | np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.thresholds, np.asarray(threshold, float) + 1e-9, side="right") - 1
        return values[np.clip(k, 0, len(values) - 1)]

    def pair_fpr(self, threshold: float | np.ndarray) -> np.ndarray:
        """Share of hard-negative pairs scoring at or above ``threshold``."""
        return self._at(self.pair_fprs, threshold)

    def item_fpr(self, threshold: float | np.ndarray) -> np.ndarray:
        """Share of items some non-twin candidate reaches ``threshold`` with."""
        return self._at(self.item_fprs, threshold)

    def recall(self, threshold: float | np.ndarray) -> np.ndarray:
        return self._at(self.recalls, threshold)

    def expected_false_flags(self, threshold: float | np.ndarray, records: int) -> np.ndarray:
        """``records * pair_fpr(threshold)``: unrelated records an item matches when compared with ``records``."""
        return records * self.pair_fpr(threshold)

    def frame(self) -> pd.DataFrame:
        """The curve as ``fpr.parquet`` rows (without ``stage`` and ``calibration_id``)."""
        return pd.DataFrame({
            "threshold": self.thresholds,
            "pair_fp": np.rint(self.pair_fprs * self.negative_pairs).astype(np.int64),
            "pair_negatives": self.negative_pairs, "pair_fpr": self.pair_fprs,
            "item_fp": np.rint(self.item_fprs * self.negative_items).astype(np.int64),
            "item_negatives": self.negative_items, "item_fpr": self.item_fprs,
            "tp": np.rint(self.recalls * self.positives).astype(np.int64), "positives": self.positives,
            "recall": self.recalls,
        })

    @classmethod
    def from_frame(cls, stage: str, frame: pd.DataFrame) -> FprCurve:
        frame = frame.sort_values("threshold")
        first = frame.iloc[0] if len(frame) else None
        return cls(stage, frame["threshold"].to_numpy(float), frame["pair_fpr"].to_numpy(float),
                   frame["item_fpr"].to_numpy(float), frame["recall"].to_numpy(float),
                   int(first["pair_negatives"]) if first is not None else 0,
                   int(first["item_negatives"]) if first is not None else 0,
                   int(first["positives"]) if first is not None else 0)


def measure(ws: Workspace, pairset: PairSet, config: CascadeConfig, stages: list[str],
            progress: Progress | None = None) -> tuple[dict[str, StageScores], dict[str, _Scorer]]:
    """Every stage of ``stages`` on every (item, candidate) pair of ``pairset``; returns scores and scorers."""
    report = progress or (lambda done, total, message: None)
    n, m = len(pairset.items), len(pairset.candidates)
    scorers: dict[str, _Scorer] = {}
    scores: dict[str, StageScores] = {}
    for k, stage in enumerate(stages):
        report(k, len(stages), f"scoring {n:,} items x {m:,} candidates with the {stage} stage")
        if stage == "exact":
            scorers[stage] = ExactScores(pairset, config.ngram)
        elif stage == "near_duplicate":
            scorers[stage] = NearScores(pairset, config.near_duplicate)
        elif stage in ("semantic", "judged") and "semantic" not in scorers:
            scorers["semantic"] = SemanticScores(ws, pairset, config.semantic)
        if stage == "judged":
            if "semantic" not in scores:
                scores["semantic"] = score_stage(scorers["semantic"], pairset, "semantic", _semantic_rows(scorers, m))
            scorers[stage] = JudgeScores(ws, pairset, config.judge)
            scores[stage] = score_pairs_only(scorers[stage], pairset, stage, scores["semantic"].hardest_candidate)
        elif stage not in scores:
            rows = _semantic_rows(scorers, m) if stage == "semantic" else None
            scores[stage] = score_stage(scorers[stage], pairset, stage, rows)
    return {s: scores[s] for s in stages}, scorers


def _semantic_rows(scorers: dict[str, _Scorer], m: int) -> int:
    scorer = scorers["semantic"]
    assert isinstance(scorer, SemanticScores)
    windows = max(len(scorer.cv), 1) * max(scorer.windows_per_item(), 1.0)
    return max(1, int(_BLOCK_CELLS / windows))


# -- a calibration run -----------------------------------------------------------------------


STAGE_SCORES = {"exact": "coverage", "near_duplicate": "jaccard", "semantic": "cosine", "judged": "judge_score"}
# Where each stage's recommended threshold is set in synthscope.toml. The semantic stage's is likely_at: from
# there a match counts as contamination without a task-aware check, so it must hold a scan's FPR on its own.
SETTING = {"exact": "[contamination.ngram] clean_below", "near_duplicate": "[contamination.near_duplicate] flag_at",
           "semantic": "[contamination.semantic] likely_at", "judged": "[contamination.judge] confirm_at"}
TRUTH_COLUMNS = ("dataset", "version", "record_id", "task_id", "must_flag")


def floor_of(config: CascadeConfig, stage: str) -> tuple[float, bool]:
    """``(floor, strict)``: the lowest threshold the stage can use (strict: only above it).

    Near-duplicate: the LSH candidate threshold (a pair below it is rarely even
    proposed); semantic: ``candidate_at`` (nothing below is kept); exact and
    judged: above 0 (0 flags everything).
    """
    if stage == "near_duplicate":
        return float(config.near_duplicate.lsh_threshold), False
    if stage == "semantic":
        return float(config.semantic.candidate_at), False
    return 0.0, True


def current_threshold(config: CascadeConfig, stage: str) -> float | None:
    """The threshold the recommendation would replace, as ``config`` sets it."""
    if stage == "exact":
        return config.ngram.clean_below
    if stage == "near_duplicate":
        return config.near_duplicate.flag_at
    if stage == "semantic":
        return config.semantic.likely_at
    return config.judge.confirm_at


def toml_lines(config: CascadeConfig, stage: str, threshold: float) -> str:
    """The synthscope.toml lines that set ``stage``'s recommended threshold (and keep the file valid)."""
    section, key = SETTING[stage].split(" ", 1)
    lines = [section, f"{key} = {_format(threshold)}"]
    if stage == "semantic" and threshold < config.semantic.flag_at:
        lines.append(f"flag_at = {_format(threshold)}  # needs candidate_at <= flag_at <= likely_at")
    return "\n".join(lines)


def _format(value: float) -> str:
    return f"{value:.3f}" if round(value, 3) == value else repr(float(value))


def recommendation_row(stage: str, measured: StageScores, config: CascadeConfig, target_fpr: float) -> dict:
    """The ``recommendations.parquet`` row of one stage."""
    table = measured.item_table()
    curve = measured.curve()
    floor, strict = floor_of(config, stage)
    rec = recommend(table, target_fpr, floor, strict, measured.negative_items)
    current = current_threshold(config, stage)
    at_current = _at(table, current)
    return {
        "stage": stage, "score": STAGE_SCORES[stage], "setting": SETTING[stage], "target_fpr": target_fpr,
        "floor": floor, "status": "refused" if rec.refused else "recommended", "reason": rec.reason,
        "threshold": rec.threshold, "recall": rec.recall, "item_fpr": rec.fpr,
        "pair_fpr": None if rec.refused else float(curve.pair_fpr(rec.threshold)),
        "precision": rec.precision, "f1": rec.f1,
        "toml": None if rec.refused else toml_lines(config, stage, rec.threshold),
        "positives": len(measured.positive), "negative_items": measured.negative_items,
        "negative_pairs": measured.pairs, "current_threshold": current, "current_recall": at_current[0],
        "current_item_fpr": at_current[1],
        "current_pair_fpr": None if current is None else float(curve.pair_fpr(current)),
    }


def _pairs_frame(pairset: PairSet, scores: dict[str, StageScores], scorers: dict[str, _Scorer]) -> pd.DataFrame:
    """Every twin pair and each item's hardest non-twin under each stage, with every stage's score."""
    twin_i, twin_c, _, _ = pairset.index()
    rows = {(int(i), int(c)): (True, src) for i, c, src in zip(twin_i, twin_c, pairset.positives["source"])}
    hardest_for: dict[tuple[int, int], list[str]] = {}
    for stage, measured in scores.items():
        for i in np.flatnonzero(measured.hardest_candidate >= 0):
            key = (int(i), int(measured.hardest_candidate[i]))
            rows.setdefault(key, (False, f"nearest {pairset.candidates['kind'].iloc[key[1]]}"))
            hardest_for.setdefault(key, []).append(stage)
    keys = list(rows)
    items = np.array([k[0] for k in keys], dtype=np.int64)
    cands = np.array([k[1] for k in keys], dtype=np.int64)
    frame = pd.DataFrame({
        "item_id": pairset.items["item_id"].to_numpy()[items] if len(keys) else [],
        "candidate_id": pairset.candidates["candidate_id"].to_numpy()[cands] if len(keys) else [],
        "label": [rows[k][0] for k in keys], "source": [rows[k][1] for k in keys],
        "hardest_for": [",".join(hardest_for.get(k, [])) or None for k in keys],
    })
    for stage in scores:
        values = np.full(len(keys), np.nan)
        scorer = scorers[stage]
        if stage == "judged":  # only what the judge was shown
            measured = scores[stage]
            shown = {(int(i), int(c)): v for i, c, v in zip(twin_i, twin_c, measured.positive)}
            shown |= {(int(i), int(measured.hardest_candidate[i])): measured.hardest[i]
                      for i in np.flatnonzero(measured.hardest_candidate >= 0)}
            values = np.array([shown.get(k, np.nan) for k in keys], dtype=float)
        elif len(keys):
            values = scorer.pairs(items, cands)
        frame[f"{stage}_score"] = values
    return frame


def run_calibration(ws: Workspace, pairset: PairSet, config: CascadeConfig, target_fpr: float = 0.01,
                    progress: Progress | None = None) -> str:
    """Score every (item, candidate) pair with every stage of ``config``, sweep, recommend, store.

    Writes ``calibrations/<id>/`` (see the module docstring) and returns the id.
    """
    if not 0 < target_fpr < 1:
        raise ValueError(f"the target false-positive rate must lie between 0 and 1; got {target_fpr}")
    if pairset.positives.empty:
        raise ValueError("calibration needs at least one known positive; got none")
    report = progress or (lambda done, total, message: None)
    stages = [s for s in config.stages if s in STAGE_SCORES]
    scores, scorers = measure(ws, pairset, config, stages, progress)
    sweeps, curves, recommendations = [], [], []
    for stage, measured in scores.items():
        sweeps.append(measured.item_table().rename(columns={"fpr": "item_fpr"}).assign(stage=stage))
        curves.append(measured.curve().frame().assign(stage=stage))
        recommendations.append(recommendation_row(stage, measured, config, target_fpr))
    negative_items = pairset.negative_items()
    calibration_id = ws.new_id()
    with ws.staged(ws.artefact_dir("calibrations", calibration_id)) as tmp:
        _pairs_frame(pairset, scores, scorers).assign(calibration_id=calibration_id).to_parquet(
            tmp / "pairs.parquet", index=False)
        for name, frames, schema in (("sweep", sweeps, schemas.CALIBRATION_SWEEPS),
                                     ("fpr", curves, schemas.CALIBRATION_FPR)):
            pq.write_table(schemas.to_table(pd.concat(frames, ignore_index=True).assign(calibration_id=calibration_id),
                                            schema), tmp / f"{name}.parquet")
        pq.write_table(schemas.to_table(pd.DataFrame(recommendations).assign(calibration_id=calibration_id),
                                        schemas.CALIBRATION_RECOMMENDATIONS), tmp / "recommendations.parquet")
        atomic_write_json(tmp / "manifest.json", {
            "calibration_id": calibration_id, "created_at": utc_now(), "description": pairset.description,
            "benchmark": pairset.benchmark, "method": "hard negatives, item level",
            "positives": len(pairset.positives), "items": len(pairset.items), "candidates": len(pairset.candidates),
            "negatives": negative_items, "negative_items": negative_items,
            "negative_pairs": pairset.negative_pairs(), "target_fpr": target_fpr,
            "min_negative_items": min_negative_items(target_fpr), "stages": ",".join(stages),
            "config": config.settings(),
        })
    report(len(stages), len(stages), "done")
    return calibration_id


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


def _at(table: pd.DataFrame, threshold: float | None) -> tuple[float | None, float | None]:
    """Recall and item FPR of the stage at ``threshold`` (the one it uses now)."""
    if threshold is None:
        return None, None
    above = table[table["threshold"] >= threshold]
    if above.empty:
        return 0.0, 0.0
    row = above.iloc[0]
    return float(row["recall"]), float(row["fpr"])
