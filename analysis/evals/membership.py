"""Min-K%++: does a run's model behave as if it had seen a benchmark item?

The scan (data side) says an item's text *is in* the synthetic data; this says
the model *acts as if it trained on* the item. Zhang et al. 2024, "Min-K%++:
Improved Baseline for Detecting Pre-Training Data from Large Language Models".
For an item of tokens ``x_1 .. x_T`` and the model's next-token distribution
``p(· | x_<t)``::

    z_t   = (log p(x_t | x_<t) − μ_t) / σ_t
    μ_t   = E_{v ~ p(·|x_<t)} [log p(v | x_<t)]
    σ_t²  = Var_{v ~ p(·|x_<t)} [log p(v | x_<t)]
    score = mean of the lowest ⌊k·T⌋ of the z_t (at least one), k = 0.2

Training pushes a seen text towards a local maximum of the likelihood: each of
its tokens is likely *compared with what else the model would say there*, so a
seen item scores higher. Alongside it the plain mean token log-probability (the
"loss" attack) is kept, the baseline every membership signal is measured against.

The text scored is what lm-eval scores for the right answer: the record's prompt
(``doc_to_text``), one space (lm-eval's default ``target_delimiter``), the answer
(``doc_to_target``, the right choice's text for multiple choice). Texts longer
than ``max_tokens`` are cut at the end and marked ``truncated``.

Scores land as ``membership/<score_id>/scores.parquet`` with a ``manifest.json``
(views ``membership`` and ``membership_scores``); :func:`run_scores` reads the
newest scores of a run on a benchmark version. How well a run's scores separate
the items the scan found contaminated is their AUROC (:func:`separation`); a
candidate's score minus the baseline's on the same item (a reference model,
which takes out what is easy or hard in the text itself) usually separates better.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from synthscope.algorithms.ranking import auroc
from synthscope.core import schemas
from synthscope.core.base import utc_now
from synthscope.core.workspace import DatasetRef, Workspace, WorkspaceError, atomic_write_json, atomic_write_parquet
from synthscope.evals.runs import get_run

Progress = Callable[[int, int, str], None]

DEFAULT_K = 0.2
DEFAULT_MAX_TOKENS = 512


def item_text(prompt: str | None, answer: str | None) -> str:
    """What lm-eval scores for the right answer: prompt, one space, answer (either may be empty)."""
    prompt, answer = (prompt or "").rstrip(), (answer or "").strip()
    return f"{prompt} {answer}" if prompt and answer else prompt or answer


def token_scores(logits: Any, input_ids: Any, attention_mask: Any,
                 k: float = DEFAULT_K) -> list[tuple[float, float, int]]:
    """Per sequence of a right-padded batch: (Min-K%++, mean token log-prob, tokens scored).

    ``logits`` is the causal LM's output ``(B, L, V)`` for ``input_ids`` ``(B, L)``;
    position ``t`` predicts token ``t + 1``. Computed in float32 on the logits' device.
    A sequence with fewer than two tokens has nothing to score: ``(nan, nan, 0)``.
    """
    import torch

    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    targets = input_ids[:, 1:]
    mask = attention_mask[:, 1:].bool()
    target_logp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    p = logp.exp()
    mu = (p * logp).sum(-1)
    sigma = (p * (logp - mu.unsqueeze(-1)) ** 2).sum(-1).clamp_min(0).sqrt()
    z = (target_logp - mu) / sigma
    z = torch.where(sigma > 0, z, torch.zeros_like(z))  # a one-token distribution: the target is certain
    out = []
    for row in range(len(targets)):
        keep = mask[row]
        n = int(keep.sum())
        if n == 0:
            out.append((math.nan, math.nan, 0))
            continue
        lowest = torch.sort(z[row][keep]).values[: max(1, int(k * n))]
        out.append((float(lowest.mean()), float(target_logp[row][keep].mean()), n))
    return out


@dataclass
class MembershipScores:
    score_id: str
    run_id: str
    benchmark: DatasetRef
    items: int
    truncated: int
    device: str
    seconds: float


def score_run(ws: Workspace, run_id: str, benchmark: DatasetRef, *, k: float = DEFAULT_K,
              max_tokens: int = DEFAULT_MAX_TOKENS, batch_size: int = 8, device: str = "auto",
              trust_remote_code: bool = False, online: bool = False,
              progress: Progress | None = None) -> MembershipScores:
    """Min-K%++ of every item of ``benchmark`` under run ``run_id``'s model; written as one artefact."""
    import torch

    from synthscope.compute.models import ModelError, load_instruct
    from synthscope.evals.lmeval import hf_environment

    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    if max_tokens < 2 or batch_size < 1:
        raise ValueError("max_tokens must be >= 2 and batch_size >= 1")
    run = get_run(ws, run_id)
    bench = ws.resolve(benchmark)
    records = ws.query("""SELECT record_id, doc_id, prompt, answer FROM records
                          WHERE dataset = ? AND version = ? ORDER BY row""", [bench.name, bench.version])
    if records.empty:
        raise WorkspaceError(f"{bench} has no records")
    report = progress or (lambda done, total, message: None)
    started = time.perf_counter()
    with hf_environment(ws, online):
        report(0, len(records), f"loading model {run['model']}")
        try:
            loaded = load_instruct(run["model"], ws=ws, device=device, trust_remote_code=trust_remote_code)
        except ModelError as exc:
            raise WorkspaceError(f"run {run_id}: {exc}") from exc
    model, tokenizer = loaded.model, loaded.tokenizer
    tokenizer.padding_side = "right"
    texts = [item_text(p, a) for p, a in zip(records["prompt"], records["answer"], strict=True)]
    rows: list[tuple[float, float, int, bool]] = []
    # Longest first, so a batch pads little; results go back to record order below.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    for start in range(0, len(order), batch_size):
        chunk = [texts[i] for i in order[start:start + batch_size]]
        batch = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=max_tokens)
        full = tokenizer(chunk, truncation=False)["input_ids"]
        with torch.inference_mode():
            logits = model(input_ids=batch["input_ids"].to(loaded.device),
                           attention_mask=batch["attention_mask"].to(loaded.device)).logits
        scores = token_scores(logits, batch["input_ids"].to(loaded.device),
                              batch["attention_mask"].to(loaded.device), k)
        rows.extend((*s, len(ids) > max_tokens) for s, ids in zip(scores, full, strict=True))
        report(min(start + batch_size, len(order)), len(order), "scoring items")
    by_item = [None] * len(texts)
    for position, i in enumerate(order):
        by_item[i] = rows[position]
    score_id = ws.new_id()
    frame = records[["record_id", "doc_id"]].copy()
    frame["min_k_pp"] = [r[0] for r in by_item]
    frame["mean_logprob"] = [r[1] for r in by_item]
    frame["tokens"] = [r[2] for r in by_item]
    frame["truncated"] = [r[3] for r in by_item]
    frame["score_id"], frame["run_id"] = score_id, run_id
    frame["benchmark"], frame["benchmark_version"] = bench.name, bench.version
    result = MembershipScores(score_id, run_id, bench, len(frame), int(frame["truncated"].sum()), loaded.device,
                              time.perf_counter() - started)
    manifest = {"score_id": score_id, "created_at": utc_now(), "run_id": run_id, "model": run["model"],
                "benchmark": bench.name, "benchmark_version": bench.version, "k": k, "max_tokens": max_tokens,
                "items": result.items, "truncated": result.truncated, "device": loaded.device,
                "seconds": round(result.seconds, 3), "text": "prompt + ' ' + answer"}
    with ws.staged(ws.artefact_dir("membership", score_id)) as tmp:
        atomic_write_parquet(tmp / "scores.parquet", schemas.to_table(frame, schemas.MEMBERSHIP_SCORES))
        atomic_write_json(tmp / "manifest.json", manifest)
    return result


def run_scores(ws: Workspace, run_id: str, benchmark: DatasetRef) -> pd.DataFrame:
    """The newest Min-K%++ scores of ``run_id`` on ``benchmark`` (record_id, min_k_pp, mean_logprob); may be empty."""
    return ws.query("""
        SELECT record_id, min_k_pp, mean_logprob, tokens, truncated FROM membership_scores
        WHERE run_id = ? AND benchmark = ? AND benchmark_version = ?
        QUALIFY score_id = max(score_id) OVER ()""", [run_id, benchmark.name, str(benchmark.version)])


def attach(items: pd.DataFrame, ws: Workspace, runs: dict[str, str], benchmark: DatasetRef) -> pd.DataFrame:
    """``items`` (with ``record_id``) plus ``mink_<label>`` per ``{label: run_id}`` that has scores, else NaN."""
    out = items.copy()
    for label, run_id in runs.items():
        scores = run_scores(ws, run_id, benchmark).set_index("record_id")["min_k_pp"]
        out[f"mink_{label}"] = out["record_id"].map(scores).astype(float)
    return out


def separation(items: pd.DataFrame, columns: Sequence[str], label: str = "contaminated") -> pd.DataFrame:
    """AUROC of each score column at telling ``label`` items from the rest (items without the score left out).

    0.5 is chance; 1.0 puts every contaminated item above every clean one.
    """
    rows = []
    y = items[label].to_numpy(bool)
    for column in columns:
        x = items[column].to_numpy(float)
        keep = ~np.isnan(x)
        rows.append({"score": column, "items": int(keep.sum()), "positives": int(y[keep].sum()),
                     "auroc": auroc(x[keep], y[keep]) if keep.any() else math.nan})
    return pd.DataFrame(rows, columns=["score", "items", "positives", "auroc"])


def scored_runs(ws: Workspace) -> pd.DataFrame:
    """Every Min-K%++ artefact: run, benchmark version, items, when."""
    return ws.query("""SELECT score_id, run_id, benchmark || '@' || benchmark_version AS benchmark, items, truncated,
                              k, device, seconds, created_at FROM membership ORDER BY created_at DESC""")


def evaluated_benchmarks(ws: Workspace, run_id: str) -> list[DatasetRef]:
    """The benchmark versions a run's evaluations are linked to (what ``eval mink`` scores by default)."""
    rows = ws.query("""SELECT DISTINCT benchmark, benchmark_version FROM evals
                       WHERE run_id = ? AND benchmark IS NOT NULL ORDER BY ALL""", [run_id])
    return [DatasetRef(b, v) for b, v in zip(rows["benchmark"], rows["benchmark_version"], strict=True)]
