"""Baseline run vs candidate run on a task, split by what the contamination scan found.

The question: the candidate (trained with synthetic set S) scores higher on
benchmark B than the baseline — is the gain real, or does it sit on the items S
leaked? Both runs' per-sample results (view ``eval_samples``, linked to the
benchmark's records by ``doc_id`` and checked by ``doc_hash``) are joined item by
item to the scan verdicts of B against the synthetic datasets the candidate was
trained on (view ``latest_verdicts``). An item is *contaminated* when any of
those datasets' verdict for it is not ``clean``; it takes the strongest verdict,
the worst n-gram bucket, the largest coverage and cosine among them.

Then (maths in :mod:`synthscope.evals.stats`): each run's score overall, on clean
and on contaminated items, per verdict and per bucket; an exact McNemar test per
subset (also by evidence tier, and by what leaked: clean / question seen /
question and answer seen, since a model that saw the answer can recite it); the
inflation ``gain(contaminated) − gain(clean)`` with a stratified
paired bootstrap interval; the ConTAM curve over coverage or cosine; across
several tasks, Holm-adjusted p-values; and, where the runs have Min-K%++ scores
(:mod:`synthscope.evals.membership`), how well the model side agrees with the data
side (AUROC at telling the contaminated items).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError
from synthscope.evals import membership, stats
from synthscope.evals.runs import get_run

VERDICT_ORDER = ["exact", "near_duplicate", "semantic", "judged", "clean"]
BUCKET_ORDER = ["dirty", "partial", "clean"]
TIER_ORDER = ["confirmed", "likely", "candidate", "clean"]
# What the counted evidence of an item shows leaked, as Compare splits it.
LEAK_SUBSETS = {"question seen": ("question",), "question and answer seen": ("question+answer", "answer")}


@dataclass
class Comparison:
    task: str
    baseline: str
    candidate: str
    metric: str
    benchmark: str  # NAME@VERSION
    synthetics: list[str]  # the NAME@VERSION whose verdicts define contamination
    items: pd.DataFrame  # one row per item both runs answered: scores, verdict, bucket, coverage, cosine
    subsets: pd.DataFrame  # subset, n, baseline, candidate, gain, b, c, mcnemar_p
    inflation: stats.Inflation
    dropped: dict[str, int] = field(default_factory=dict)  # items left out, by reason
    # Model side: AUROC of Min-K%++ (mink_baseline, mink_candidate, mink_delta = candidate − baseline) at telling
    # the contaminated items; empty when neither run has Min-K%++ scores on the benchmark.
    membership: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def unscored_runs(self) -> list[str]:
        """Runs without Min-K%++ scores on this comparison's benchmark."""
        return [run for run, column in ((self.baseline, "mink_baseline"), (self.candidate, "mink_candidate"))
                if self.items[column].isna().all()]


def _eval_of(ws: Workspace, run_id: str, task: str) -> pd.Series:
    evals = ws.query("SELECT * FROM evals WHERE run_id = ? AND task = ? ORDER BY created_at DESC", [run_id, task])
    if evals.empty:
        get_run(ws, run_id)  # a clear error when the run itself is unknown
        raise WorkspaceError(f"run {run_id!r} has no evaluation of task {task!r}; "
                             f"run `synthscope eval run --run {run_id} --tasks {task}` or import one")
    return evals.iloc[0]


def _samples(ws: Workspace, eval_id: str, metric: str) -> pd.DataFrame:
    rows = ws.query(f"""
        SELECT doc_id, record_id, "filter", {metric} AS score, chosen, target_index, generated, loglikelihoods
        FROM eval_samples WHERE eval_id = ? ORDER BY "filter", doc_id""", [eval_id])
    if rows.empty:
        raise WorkspaceError(f"evaluation {eval_id} has no samples")
    first = rows["filter"].iloc[0]  # one filter pipeline per comparison (most tasks have only "none")
    return rows[rows["filter"] == first].drop(columns="filter")


def _synthetics(ws: Workspace, candidate: dict, given: Sequence[DatasetRef] | None) -> list[DatasetRef]:
    if given:
        return [ws.resolve(g) for g in given]
    kinds = {(m["name"], str(m["version"])): m["kind"] for m in ws.manifests()}
    out = [DatasetRef(d["name"], d["version"]) for d in candidate.get("datasets") or []
           if d.get("version") and kinds.get((d["name"], str(d["version"]))) == "synthetic"]
    if not out:
        raise WorkspaceError(f"run {candidate['run_id']!r} lists no synthetic dataset of this workspace among its "
                             "training data; say which with --synthetic NAME@VERSION")
    return out


def item_contamination(ws: Workspace, benchmark: DatasetRef, synthetics: Sequence[DatasetRef]) -> pd.DataFrame:
    """Per benchmark item, its contamination across ``synthetics`` (latest scan of each pair)."""
    if not synthetics:
        raise ValueError("need at least one synthetic dataset")
    pairs = " OR ".join("(synthetic = ? AND synthetic_version = ?)" for _ in synthetics)
    params: list[object] = [benchmark.name, str(benchmark.version)]
    for s in synthetics:
        params += [s.name, str(s.version)]
    rows = ws.query(f"""
        SELECT item_id, synthetic || '@' || synthetic_version AS synthetic, verdict, bucket,
               coalesce(coverage, 0) AS coverage, cosine,
               coalesce(tier, CASE WHEN verdict = 'clean' THEN 'clean' ELSE 'confirmed' END) AS tier,
               coalesce(leaked, '') AS leaked
        FROM latest_verdicts WHERE benchmark = ? AND benchmark_version = ? AND ({pairs})""", params)
    found = set(rows["synthetic"])
    missing = [str(s) for s in synthetics if str(s) not in found]
    if missing:
        raise WorkspaceError(f"no scan of {benchmark} against {', '.join(missing)}; run "
                             f"`synthscope scan --benchmark {benchmark} "
                             + " ".join(f"--synthetic {m}" for m in missing) + "` first")
    rows["verdict_rank"] = rows["verdict"].map(VERDICT_ORDER.index)
    rows["bucket_rank"] = rows["bucket"].map(BUCKET_ORDER.index)
    rows["tier_rank"] = rows["tier"].map(lambda t: TIER_ORDER.index(t) if t in TIER_ORDER else len(TIER_ORDER) - 1)
    rows["leaked"] = rows["leaked"].where(rows["verdict"] != "clean", "")
    out = rows.groupby("item_id").agg(verdict_rank=("verdict_rank", "min"), bucket_rank=("bucket_rank", "min"),
                                      tier_rank=("tier_rank", "min"), coverage=("coverage", "max"),
                                      cosine=("cosine", "max"), leaked=("leaked", _union_leak))
    out["verdict"] = [VERDICT_ORDER[i] for i in out["verdict_rank"]]
    out["bucket"] = [BUCKET_ORDER[i] for i in out["bucket_rank"]]
    out["tier"] = [TIER_ORDER[i] for i in out["tier_rank"]]
    out["contaminated"] = out["verdict"] != "clean"
    return out.drop(columns=["verdict_rank", "bucket_rank", "tier_rank"]).reset_index()


def _union_leak(values: pd.Series) -> str:
    """What the synthetic datasets together show leaked of an item: question, answer, question+answer or ''."""
    parts = set("+".join(v for v in values if v).split("+")) - {""}
    return "+".join(p for p in ("question", "answer") if p in parts)


def _subset_row(name: str, items: pd.DataFrame, mask: np.ndarray) -> dict[str, object]:
    base, cand = items["baseline"].to_numpy(float), items["candidate"].to_numpy(float)
    score = stats.subset_scores(base, cand, mask)
    test = stats.mcnemar_exact(base[mask] >= 0.5, cand[mask] >= 0.5) if mask.any() else None
    return {"subset": name, "n": score.n, "baseline": score.baseline, "candidate": score.candidate,
            "gain": score.gain, "b": test.b if test else 0, "c": test.c if test else 0,
            "mcnemar_p": test.pvalue if test else math.nan}


def compare(ws: Workspace, baseline: str, candidate: str, task: str, *, metric: str = "acc",
            synthetics: Sequence[DatasetRef] | None = None, n_boot: int = 10_000, seed: int = 0) -> Comparison:
    """Compare two runs on ``task``; contamination from the scans of the task's benchmark against ``synthetics``
    (default: the synthetic datasets the candidate run was trained on)."""
    if metric not in ("acc", "acc_norm", "exact_match"):
        raise ValueError(f"metric must be acc, acc_norm or exact_match, got {metric!r}")
    base_eval, cand_eval = _eval_of(ws, baseline, task), _eval_of(ws, candidate, task)
    if not base_eval["benchmark"] or base_eval["benchmark"] != cand_eval["benchmark"] \
            or base_eval["benchmark_version"] != cand_eval["benchmark_version"]:
        raise WorkspaceError(f"the two evaluations of {task} are not linked to the same benchmark records "
                             f"({base_eval['benchmark']}@{base_eval['benchmark_version']} vs "
                             f"{cand_eval['benchmark']}@{cand_eval['benchmark_version']}); import both with "
                             "--benchmark NAME@VERSION")
    bench = DatasetRef(base_eval["benchmark"], base_eval["benchmark_version"])
    refs = _synthetics(ws, get_run(ws, candidate), synthetics)
    contamination = item_contamination(ws, bench, refs)
    base = _samples(ws, base_eval["eval_id"], metric)
    cand = _samples(ws, cand_eval["eval_id"], metric)
    items = base.merge(cand, on=["doc_id", "record_id"], suffixes=("_baseline", "_candidate"), how="inner")
    items = items.rename(columns={"score_baseline": "baseline", "score_candidate": "candidate"})
    dropped = {"only in one run": int(len(base) + len(cand) - 2 * len(items))}
    unlinked = items["record_id"].isna() | items["baseline"].isna() | items["candidate"].isna()
    dropped["not linked to the benchmark or no score"] = int(unlinked.sum())
    items = items[~unlinked].merge(contamination, left_on="record_id", right_on="item_id", how="left")
    unscanned = items["verdict"].isna()
    dropped["not in the scan"] = int(unscanned.sum())
    items = items[~unscanned].drop(columns="item_id").reset_index(drop=True)
    if items.empty:
        raise WorkspaceError(f"no item of {task} is answered by both runs, linked to {bench} and scanned")
    dirty = items["contaminated"].to_numpy(bool)
    rows = [_subset_row("all", items, np.ones(len(items), bool)), _subset_row("clean", items, ~dirty),
            _subset_row("contaminated", items, dirty)]
    rows += [_subset_row(f"verdict: {v}", items, (items["verdict"] == v).to_numpy())
             for v in VERDICT_ORDER[:-1] if (items["verdict"] == v).any()]
    rows += [_subset_row(f"bucket: {b}", items, (items["bucket"] == b).to_numpy())
             for b in BUCKET_ORDER if (items["bucket"] == b).any()]
    rows += [_subset_row(f"tier: {t}", items, (items["tier"] == t).to_numpy())
             for t in TIER_ORDER[:-1] if (items["tier"] == t).any()]
    for name, leaks in LEAK_SUBSETS.items():  # clean / question seen / question and answer seen
        mask = (dirty & items["leaked"].isin(leaks)).to_numpy()
        if mask.any():
            rows.append(_subset_row(name, items, mask))
    result = stats.inflation(items["baseline"].to_numpy(float), items["candidate"].to_numpy(float), dirty,
                             n_boot=n_boot, seed=seed)
    items = membership.attach(items, ws, {"baseline": baseline, "candidate": candidate}, bench)
    items["mink_delta"] = items["mink_candidate"] - items["mink_baseline"]
    scored = [c for c in ("mink_candidate", "mink_baseline", "mink_delta") if items[c].notna().any()]
    return Comparison(task, baseline, candidate, metric, str(bench), [str(r) for r in refs], items,
                      pd.DataFrame(rows), result, dropped, membership.separation(items, scored))


def curve(comparison: Comparison, score: str = "coverage") -> pd.DataFrame:
    """The ConTAM curve of both runs over ``score`` (``coverage`` or ``cosine``), and their difference.

    Per threshold: the share of items counted as contaminated, each run's estimated performance gain
    ``score(all) − score(clean)``, and ``inflation_gain`` = candidate's minus baseline's.
    """
    if score not in ("coverage", "cosine"):
        raise ValueError(f"score must be coverage or cosine, got {score!r}")
    items = comparison.items
    level = items[score].fillna(0.0).to_numpy(float)
    thresholds = np.unique(np.r_[level, np.nextafter(level.max(), np.inf)])
    cand = stats.contam_curve(items["candidate"].to_numpy(float), level, thresholds)
    base = stats.contam_curve(items["baseline"].to_numpy(float), level, thresholds)
    out = cand[["threshold", "n_contaminated", "share_contaminated"]].copy()
    out["candidate_gain"], out["baseline_gain"] = cand["gain"], base["gain"]
    out["inflation_gain"] = out["candidate_gain"] - out["baseline_gain"]
    return out


def summarize(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """One row per task: gains, inflation with its interval, McNemar p-values raw and Holm-adjusted across tasks."""
    rows = []
    for c in comparisons:
        subsets = c.subsets.set_index("subset")
        rows.append({
            "task": c.task, "items": len(c.items), "contaminated": int(c.items["contaminated"].sum()),
            "gain_clean": c.inflation.clean.gain, "gain_contaminated": c.inflation.contaminated.gain,
            "inflation": c.inflation.estimate, "ci_low": c.inflation.low, "ci_high": c.inflation.high,
            "excludes_zero": c.inflation.excludes_zero,
            "mcnemar_p_contaminated": subsets.loc["contaminated", "mcnemar_p"],
            "mcnemar_p_clean": subsets.loc["clean", "mcnemar_p"],
        })
    summary = pd.DataFrame(rows)
    if summary.empty:
        return summary
    summary["holm_p_contaminated"] = stats.holm(summary["mcnemar_p_contaminated"].to_numpy(float))
    summary["holm_p_clean"] = stats.holm(summary["mcnemar_p_clean"].to_numpy(float))
    return summary


def compare_tasks(ws: Workspace, baseline: str, candidate: str, tasks: Sequence[str], **options: object
                  ) -> tuple[list[Comparison], pd.DataFrame]:
    """:func:`compare` on every task, and their :func:`summarize` table."""
    comparisons = [compare(ws, baseline, candidate, t, **options) for t in tasks]  # type: ignore[arg-type]
    return comparisons, summarize(comparisons)
