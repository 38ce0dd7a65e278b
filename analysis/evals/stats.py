"""Statistics for a baseline run against a candidate run, split by contamination.

Every function takes per-item arrays aligned on the same benchmark items (entry
``i`` of each array is the same question) and does no I/O.

Scores and gains
    An item's score ``s_i`` is 0/1 accuracy or a value in ``[0, 1]``. On a subset
    ``S`` of items, ``score(S) = mean_{i∈S} s_i`` and the candidate's gain over the
    baseline is ``gain(S) = mean_{i∈S} d_i`` with ``d_i = s^cand_i − s^base_i``.

Inflation
    With ``C`` the contaminated items and ``K`` the clean ones::

        inflation = gain(C) − gain(K)

    the part of the candidate's improvement found only on leaked items. Its
    confidence interval is a stratified paired bootstrap: a replicate draws
    ``|C|`` items from ``C`` and ``|K|`` from ``K`` with replacement (an item
    brings both runs' scores, i.e. its ``d_i``) and recomputes the statistic; the
    interval is the ``α/2`` and ``1 − α/2`` percentiles of ``B`` replicates. The
    strata keep their sizes because the split comes from the contamination scan,
    not from sampling. The bootstrap standard error tends to
    ``sqrt(σ²_C/|C| + σ²_K/|K|)``, ``σ²`` the population variance of ``d`` in a
    stratum.

McNemar (exact)
    For 0/1 correctness, ``b`` counts items the baseline got right and the
    candidate wrong, ``c`` the reverse; concordant items carry no information.
    Under H0 (equal accuracy), given ``n = b + c``, ``b ~ Bin(n, 1/2)`` and the
    two-sided p-value is ``min(1, 2·P[X <= min(b, c)])``, 1 when ``n = 0``.

Holm–Bonferroni
    For ``m`` p-values sorted ``p_(1) <= … <= p_(m)`` the adjusted values are
    ``p̃_(i) = max_{j <= i} min(1, (m − j + 1)·p_(j))``; rejecting ``p̃ <= α``
    keeps the family-wise error rate at ``α`` under any dependence. NaN p-values
    (untestable tasks) stay NaN and are not counted in ``m``.

ConTAM curve
    After Singh et al. (2024), "Evaluation data contamination in LLMs: how do we
    measure it and (when) does it matter?": an item is contaminated at threshold
    ``t`` when its contamination score ``c_i >= t``, and the estimated performance
    gain is ``EPG(t) = score(all) − score({i : c_i < t})``. Sweeping ``t`` shows
    how much the conclusion depends on where the line is drawn.

Min-K%++
    Zhang et al. (2024), "Min-K%++: Improved baseline for detecting pre-training
    data from large language models". At position ``t``, with next-token
    distribution ``p(·|x_<t)`` over the vocabulary::

        μ_t  = E_{z~p}[log p(z|x_<t)]
        σ_t² = E_{z~p}[(log p(z|x_<t) − μ_t)²]
        s_t  = (log p(x_t|x_<t) − μ_t) / σ_t

    and the item's score is the mean of its ``max(1, ⌊k·T⌋)`` lowest ``s_t`` (the
    reference code takes ``int(T·k)``). Seen text sits near a local maximum of the
    likelihood, so higher means more likely seen. When ``σ_t = 0`` the
    distribution is flat on its support and ``s_t`` is taken as 0 (its limit).

AUROC
    ``P(s⁺ > s⁻) + ½·P(s⁺ = s⁻)`` for a random positive and a random negative, from
    average ranks (Mann–Whitney ``U / (n⁺·n⁻)``); higher scores mean positive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

from synthscope.algorithms.ranking import boolean_mask

_BLOCK = 1 << 22  # bootstrap indices drawn at once per stratum (32 MB of indices + 32 MB of gathered values)


def _scores(name: str, x: object, n: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or (n is not None and len(a) != n):
        raise ValueError(f"{name} must be 1-D{'' if n is None else f' of length {n}'}, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} has non-finite values")
    return a


@dataclass(frozen=True)
class SubsetScore:
    """Both runs' mean score on a subset of items and the gain; NaN when the subset is empty."""

    n: int
    baseline: float
    candidate: float
    gain: float


def subset_scores(baseline: np.ndarray, candidate: np.ndarray, mask: np.ndarray | None = None) -> SubsetScore:
    """Mean score of each run on the items where ``mask`` is true (all items when ``None``)."""
    base = _scores("baseline", baseline)
    cand = _scores("candidate", candidate, len(base))
    sel = np.ones(len(base), bool) if mask is None else boolean_mask("mask", mask, len(base))
    n = int(sel.sum())
    if n == 0:
        return SubsetScore(0, math.nan, math.nan, math.nan)
    b, c = float(base[sel].mean()), float(cand[sel].mean())
    return SubsetScore(n, b, c, float((cand[sel] - base[sel]).mean()))


@dataclass(frozen=True)
class Inflation:
    """``gain(contaminated) − gain(clean)`` with a stratified paired-bootstrap percentile interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    standard_error: float  # standard deviation of the bootstrap replicates
    contaminated: SubsetScore
    clean: SubsetScore
    n_boot: int
    reason: str | None = None  # why the values are NaN (an empty stratum)

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly above or below 0 (False when undefined)."""
        return bool(self.low > 0 or self.high < 0)


def _bootstrap_means(d: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_boot`` resamples of ``d`` with replacement, drawn in blocks of at most ``_BLOCK`` indices.

    Consecutive ``Generator.integers`` calls continue one stream (the bit generator keeps a spare 32-bit half
    between calls), so the block size bounds memory without changing the result; a test pins this.
    """
    n = len(d)
    out = np.empty(n_boot)
    rows = max(1, _BLOCK // n)
    for start in range(0, n_boot, rows):
        m = min(rows, n_boot - start)
        idx = rng.integers(0, n, size=(m, n))
        out[start : start + m] = d[idx].mean(axis=1)
    return out


def inflation(
    baseline: np.ndarray,
    candidate: np.ndarray,
    contaminated: np.ndarray,
    *,
    n_boot: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Inflation:
    """Gain on contaminated items minus gain on clean items, with a paired bootstrap CI.

    Each stratum is resampled on its own (its own child of ``SeedSequence(seed)``), an item keeping both runs'
    scores together; the result is deterministic given the inputs, ``n_boot`` and ``seed``.
    """
    base = _scores("baseline", baseline)
    cand = _scores("candidate", candidate, len(base))
    dirty_mask = boolean_mask("contaminated", contaminated, len(base))
    if n_boot < 2:
        raise ValueError("n_boot must be at least 2")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    dirty, clean = subset_scores(base, cand, dirty_mask), subset_scores(base, cand, ~dirty_mask)
    reason = "no contaminated items" if dirty.n == 0 else "no clean items" if clean.n == 0 else None
    if reason:
        return Inflation(math.nan, math.nan, math.nan, confidence, math.nan, dirty, clean, n_boot, reason)
    d = cand - base
    rng_dirty, rng_clean = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    boot = _bootstrap_means(d[dirty_mask], n_boot, rng_dirty) - _bootstrap_means(d[~dirty_mask], n_boot, rng_clean)
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    est = dirty.gain - clean.gain
    return Inflation(est, float(low), float(high), confidence, float(boot.std(ddof=1)), dirty, clean, n_boot)


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test: ``b`` = baseline right & candidate wrong, ``c`` = the reverse."""

    n: int
    b: int
    c: int
    pvalue: float


def mcnemar_exact(baseline_correct: np.ndarray, candidate_correct: np.ndarray) -> McNemar:
    """Exact two-sided McNemar test, ``min(1, 2·P[X <= min(b, c)])`` with ``X ~ Bin(b + c, 1/2)``."""
    base = boolean_mask("baseline_correct", baseline_correct)
    cand = boolean_mask("candidate_correct", candidate_correct, len(base))
    b, c = int(np.sum(base & ~cand)), int(np.sum(~base & cand))
    p = 1.0 if b + c == 0 else min(1.0, 2.0 * float(stats.binom.cdf(min(b, c), b + c, 0.5)))
    return McNemar(len(base), b, c, p)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values, in input order; NaN stays NaN and is not counted."""
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be 1-D, got shape {p.shape}")
    ok = ~np.isnan(p)
    q = p[ok]
    if ((q < 0) | (q > 1)).any():
        raise ValueError("p-values must lie in [0, 1]")
    m = len(q)
    order = np.argsort(q, kind="stable")
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * q[order]))
    out = np.full(len(p), np.nan)
    out[ok] = adjusted
    return out


def contam_curve(scores: np.ndarray, contamination: np.ndarray, thresholds: np.ndarray | None = None) -> pd.DataFrame:
    """ConTAM curve of one run: for each threshold ``t``, items with ``contamination >= t`` are contaminated.

    Columns: ``threshold``, ``n_contaminated``, ``share_contaminated``, ``score_all``, ``score_clean`` (items
    below ``t``), ``score_contaminated`` and ``gain = score_all − score_clean`` (ConTAM's estimated performance
    gain); a score over no items is NaN. Default thresholds: every distinct contamination score, ascending,
    then the next double above the maximum (nothing contaminated, gain 0).
    """
    s = _scores("scores", scores)
    c = _scores("contamination", contamination, len(s))
    if thresholds is None:
        distinct = np.unique(c)
        t = np.append(distinct, np.nextafter(distinct[-1], np.inf)) if len(c) else np.empty(0)
    else:
        t = np.asarray(thresholds, dtype=np.float64).ravel()
        if np.isnan(t).any():
            raise ValueError("thresholds has NaN")
    order = np.argsort(c, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(s[order])])
    n = len(s)
    n_clean = np.searchsorted(c[order], t, side="left")  # items with c < t
    n_dirty = n - n_clean
    with np.errstate(invalid="ignore", divide="ignore"):
        score_all = np.divide(cum[-1], n)
        score_clean = cum[n_clean] / n_clean
        score_dirty = (cum[-1] - cum[n_clean]) / n_dirty
        share = n_dirty / n
    return pd.DataFrame(
        {
            "threshold": t,
            "n_contaminated": n_dirty,
            "share_contaminated": share,
            "score_all": np.full(len(t), score_all),
            "score_clean": score_clean,
            "score_contaminated": score_dirty,
            "gain": score_all - score_clean,
        }
    )


def min_k_plus_plus(token_logprobs: np.ndarray, mu: np.ndarray, sigma: np.ndarray, k: float = 0.2) -> float:
    """Min-K%++ of one item: mean of the lowest ``max(1, ⌊k·T⌋)`` of ``(log p(x_t) − μ_t) / σ_t``.

    ``token_logprobs`` may hold ``-inf`` (a token the model rules out). NaN for an item with no tokens.
    """
    lp = np.asarray(token_logprobs, dtype=np.float64)
    mu, sigma = np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    if lp.ndim != 1 or mu.shape != lp.shape or sigma.shape != lp.shape:
        raise ValueError(f"token_logprobs, mu, sigma must be 1-D of one length: {lp.shape} {mu.shape} {sigma.shape}")
    if np.isnan(lp).any() or np.isposinf(lp).any() or not np.isfinite(mu).all() or not np.isfinite(sigma).all():
        raise ValueError("token_logprobs must not hold NaN or +inf; mu and sigma must be finite")
    if (sigma < 0).any():
        raise ValueError("sigma must be >= 0")
    if not 0 < k <= 1:
        raise ValueError("k must be in (0, 1]")
    if len(lp) == 0:
        return math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (lp - mu) / sigma
    z[np.isnan(z)] = 0.0  # 0/0: flat distribution and the target in its support
    return float(np.sort(z)[: max(1, int(k * len(z)))].mean())


def min_k_plus_plus_from_logits(logits: np.ndarray, targets: np.ndarray, k: float = 0.2) -> float:
    """Min-K%++ from next-token ``logits`` of shape ``(T, V)`` and the ``T`` observed ``targets``.

    Row ``t`` of ``logits`` must be the prediction for ``targets[t]`` (shift a causal LM's output by one).
    Computed in float64 from a log-softmax; ``-inf`` logits (masked tokens) are allowed.
    """
    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(targets)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"logits must be (T, V) and targets (T,), got {x.shape} and {y.shape}")
    if len(y) and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= x.shape[1]):
        raise ValueError("targets must be integer token ids in [0, V)")
    if np.isnan(x).any() or np.isposinf(x).any():
        raise ValueError("logits must not hold NaN or +inf")
    logp = special.log_softmax(x, axis=1)
    p = np.exp(logp)
    with np.errstate(invalid="ignore"):
        mu = np.where(p > 0, p * logp, 0.0).sum(axis=1)
        var = np.where(p > 0, p * (logp - mu[:, None]) ** 2, 0.0).sum(axis=1)
    return min_k_plus_plus(logp[np.arange(len(y)), y], mu, np.sqrt(var), k)
