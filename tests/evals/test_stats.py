"""Evaluation statistics: subset scores, bootstrap inflation, exact McNemar, Holm, ConTAM curve, Min-K%++, AUROC.

Reference values come from scipy (binomtest, bootstrap), scikit-learn (roc_auc_score), closed forms worked by
hand, and independent re-implementations of the definitions (statsmodels is not installed here).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from synthscope.algorithms.ranking import auroc
from synthscope.evals import stats
from synthscope.evals.stats import (
    contam_curve,
    holm,
    inflation,
    mcnemar_exact,
    min_k_plus_plus,
    min_k_plus_plus_from_logits,
    subset_scores,
)

# ---------------------------------------------------------------------------------------------------- subset scores


def test_subset_scores_means_and_gain() -> None:
    base = np.array([1, 0, 1, 0, 1.0])
    cand = np.array([1, 1, 1, 0, 0.5])
    s = subset_scores(base, cand, np.array([True, True, False, False, True]))
    assert (s.n, s.baseline, s.candidate) == (3, pytest.approx(2 / 3), pytest.approx(2.5 / 3))
    assert s.gain == pytest.approx(0.5 / 3)
    every = subset_scores(base, cand)
    assert (every.n, every.gain) == (5, pytest.approx(0.5 / 5))
    assert subset_scores(base, cand, np.array([1, 0, 0, 0, 0])).gain == 0.0  # 0/1 masks are accepted


def test_subset_scores_empty_and_invalid() -> None:
    empty = subset_scores(np.ones(3), np.zeros(3), np.zeros(3, bool))
    assert empty.n == 0 and all(math.isnan(v) for v in (empty.baseline, empty.candidate, empty.gain))
    with pytest.raises(ValueError, match="length 3"):
        subset_scores(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="boolean"):
        subset_scores(np.ones(3), np.ones(3), np.array([0, 2, 1]))
    with pytest.raises(ValueError, match="non-finite"):
        subset_scores(np.array([1.0, np.nan]), np.ones(2))


# -------------------------------------------------------------------------------------------------------- inflation


def synthetic_runs(rng: np.random.Generator, n_dirty: int, n_clean: int, lift: float = 0.3):
    """Paired runs as real ones are: the candidate mostly repeats the baseline. Baseline right with p = 0.5;
    on clean items the candidate flips 20 % of answers either way (no gain); on contaminated items it turns a
    share ``2·lift`` of the baseline's wrong answers right. The true inflation is ``lift``."""
    n = n_dirty + n_clean
    dirty = np.zeros(n, bool)
    dirty[:n_dirty] = True
    base = rng.random(n) < 0.5
    cand = np.where(dirty, base | (rng.random(n) < 2 * lift), base ^ (rng.random(n) < 0.2))
    return base.astype(float), cand.astype(float), dirty


def test_inflation_point_estimate_by_hand() -> None:
    base = np.array([0, 0, 1, 1, 0, 1, 0, 1.0])
    cand = np.array([1, 1, 1, 0, 0, 1, 1, 1.0])
    dirty = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    r = inflation(base, cand, dirty, n_boot=500)
    # contaminated: 0.5 -> 0.75 (gain 0.25); clean: 0.5 -> 0.75 (gain 0.25)
    assert r.contaminated.gain == pytest.approx(0.25) and r.clean.gain == pytest.approx(0.25)
    assert r.estimate == pytest.approx(0.0)
    assert r.reason is None and r.n_boot == 500 and r.low <= 0 <= r.high


def test_inflation_matches_scipy_stratified_bootstrap() -> None:
    """scipy.stats.bootstrap resamples several samples independently: the same stratified scheme."""
    rng = np.random.default_rng(1)
    base, cand, dirty = synthetic_runs(rng, 150, 450)
    d = cand - base
    ours = inflation(base, cand, dirty, n_boot=20_000, seed=3)
    ref = sps.bootstrap(
        (d[dirty], d[~dirty]),
        lambda a, b, axis: a.mean(axis=axis) - b.mean(axis=axis),
        n_resamples=20_000,
        method="percentile",
        confidence_level=0.95,
        random_state=np.random.default_rng(4),
    )
    assert ours.estimate == pytest.approx(d[dirty].mean() - d[~dirty].mean())
    # Monte-Carlo error of a 2.5 % quantile with 20 000 replicates is about 0.02 standard errors
    assert abs(ours.low - ref.confidence_interval.low) < 0.1 * ours.standard_error
    assert abs(ours.high - ref.confidence_interval.high) < 0.1 * ours.standard_error
    analytic = math.sqrt(d[dirty].var() / dirty.sum() + d[~dirty].var() / (~dirty).sum())
    assert ours.standard_error == pytest.approx(analytic, rel=0.03)
    assert ours.standard_error == pytest.approx(ref.standard_error, rel=0.03)
    unpaired = math.sqrt(sum(x[m].var() / m.sum() for x in (base, cand) for m in (dirty, ~dirty)))
    assert ours.standard_error < 0.8 * unpaired  # pairing matters: the runs agree on most items


def test_inflation_covers_truth_and_shrinks_with_more_items() -> None:
    rng = np.random.default_rng(7)
    small = inflation(*synthetic_runs(rng, 100, 400), n_boot=4000)
    large = inflation(*synthetic_runs(rng, 1000, 4000), n_boot=4000)
    for r in (small, large):
        assert r.low < 0.3 < r.high and r.excludes_zero
        assert r.clean.gain == pytest.approx(0.0, abs=0.1)
    assert large.high - large.low < 0.5 * (small.high - small.low)  # ~ 1/sqrt(10)


def test_inflation_coverage_near_nominal() -> None:
    rng = np.random.default_rng(11)
    hits = []
    for _ in range(200):
        r = inflation(*synthetic_runs(rng, 80, 240), n_boot=1000, seed=int(rng.integers(1 << 30)))
        hits.append(r.low <= 0.3 <= r.high)
    assert 0.90 <= np.mean(hits) <= 0.99  # nominal 0.95; binomial sd over 200 runs is 0.015


def test_inflation_null_and_no_gain_anywhere() -> None:
    rng = np.random.default_rng(5)
    base = (rng.random(300) < 0.6).astype(float)
    same = inflation(base, base, rng.random(300) < 0.3, n_boot=200)
    assert (same.estimate, same.low, same.high, same.standard_error) == (0.0, 0.0, 0.0, 0.0)
    assert not same.excludes_zero
    # a uniform lift on every item is not inflation
    cand = np.minimum(1.0, base + (rng.random(300) < 0.5))
    flat = inflation(base, cand, np.arange(300) < 150, n_boot=2000)
    assert flat.low < 0 < flat.high or abs(flat.estimate) < 2 * flat.standard_error


def test_inflation_deterministic_and_block_size_invariant(monkeypatch: pytest.MonkeyPatch) -> None:
    base, cand, dirty = synthetic_runs(np.random.default_rng(2), 37, 91)
    a = inflation(base, cand, dirty, n_boot=1000, seed=9)
    assert inflation(base, cand, dirty, n_boot=1000, seed=9) == a
    other = inflation(base, cand, dirty, n_boot=1000, seed=10)
    assert (other.low, other.high) != (a.low, a.high)
    monkeypatch.setattr(stats, "_BLOCK", 100)  # one replicate per block instead of all at once
    assert inflation(base, cand, dirty, n_boot=1000, seed=9) == a


def test_inflation_empty_strata_and_invalid_arguments() -> None:
    base, cand = np.array([0, 1, 0.0]), np.array([1, 1, 0.0])
    none_dirty = inflation(base, cand, np.zeros(3, bool))
    assert none_dirty.reason == "no contaminated items" and math.isnan(none_dirty.estimate)
    assert none_dirty.clean.n == 3 and not none_dirty.excludes_zero
    all_dirty = inflation(base, cand, np.ones(3, bool))
    assert all_dirty.reason == "no clean items" and math.isnan(all_dirty.low) and math.isnan(all_dirty.high)
    with pytest.raises(ValueError, match="n_boot"):
        inflation(base, cand, np.array([1, 0, 0]), n_boot=1)
    with pytest.raises(ValueError, match="confidence"):
        inflation(base, cand, np.array([1, 0, 0]), confidence=95)
    with pytest.raises(ValueError, match="length 3"):
        inflation(base, cand, np.array([1, 0]))


def test_excludes_zero_flag() -> None:
    r = inflation(*synthetic_runs(np.random.default_rng(0), 50, 50), n_boot=100)
    assert replace(r, low=0.01, high=0.2).excludes_zero
    assert replace(r, low=-0.2, high=-0.01).excludes_zero
    assert not replace(r, low=-0.01, high=0.2).excludes_zero


# ---------------------------------------------------------------------------------------------------------- McNemar


def pairs(b: int, c: int, both_right: int = 3, both_wrong: int = 2) -> tuple[np.ndarray, np.ndarray]:
    base = [True] * b + [False] * c + [True] * both_right + [False] * both_wrong
    cand = [False] * b + [True] * c + [True] * both_right + [False] * both_wrong
    return np.array(base), np.array(cand)


def exact_p(b: int, c: int) -> float:
    n = b + c
    return 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n)


def test_mcnemar_by_hand() -> None:
    r = mcnemar_exact(*pairs(1, 9))
    assert (r.n, r.b, r.c) == (15, 1, 9)
    assert r.pvalue == pytest.approx(22 / 1024, rel=1e-12)  # 2 · (C(10,0) + C(10,1)) / 2**10
    assert mcnemar_exact(*pairs(9, 1)).pvalue == pytest.approx(22 / 1024, rel=1e-12)
    swapped = mcnemar_exact(*reversed(pairs(1, 9)))
    assert (swapped.b, swapped.c) == (9, 1)


@pytest.mark.parametrize("b,c", [(0, 0), (0, 1), (0, 6), (2, 2), (3, 7), (5, 5), (12, 30), (40, 41), (1, 200)])
def test_mcnemar_matches_binomtest_and_exact_sum(b: int, c: int) -> None:
    r = mcnemar_exact(*pairs(b, c))
    assert r.pvalue == pytest.approx(exact_p(b, c), rel=1e-12, abs=1e-300)
    if b + c:
        assert r.pvalue == pytest.approx(sps.binomtest(b, b + c, 0.5).pvalue, rel=1e-9, abs=1e-300)
    else:
        assert r.pvalue == 1.0


def test_mcnemar_inputs() -> None:
    assert mcnemar_exact([1, 0, 1], [1, 0, 1]).pvalue == 1.0
    with pytest.raises(ValueError, match="boolean"):
        mcnemar_exact([1, 0, 2], [1, 0, 1])
    with pytest.raises(ValueError, match="length 3"):
        mcnemar_exact([1, 0, 1], [1, 0])


# ------------------------------------------------------------------------------------------------------------- Holm


def holm_rejects(p: np.ndarray, alpha: float) -> set[int]:
    """The step-down procedure itself: walk the sorted p-values, stop at the first p_(j) > alpha / (m - j + 1)."""
    ok = [i for i in range(len(p)) if not math.isnan(p[i])]
    order = sorted(ok, key=lambda i: p[i])
    rejected: set[int] = set()
    for j, i in enumerate(order):
        if p[i] > alpha / (len(order) - j):
            break
        rejected.add(i)
    return rejected


def test_holm_by_hand() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    np.testing.assert_allclose(holm([0.5, 0.3, 0.01]), [0.6, 0.6, 0.03], rtol=1e-12)
    np.testing.assert_allclose(holm([0.7, 0.9]), [1.0, 1.0])  # capped at 1
    np.testing.assert_allclose(holm([0.02, 0.02, 0.5]), [0.06, 0.06, 0.5])  # ties share a value
    np.testing.assert_allclose(holm([0.04]), [0.04])


def test_holm_nan_safe() -> None:
    out = holm([np.nan, 0.01, np.nan, 0.04])
    assert np.isnan(out[[0, 2]]).all()
    np.testing.assert_allclose(out[[1, 3]], [0.02, 0.04])  # m = 2, not 4
    assert holm([]).shape == (0,)
    assert np.isnan(holm([np.nan, np.nan])).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.1, 1.2])


def test_holm_agrees_with_step_down_procedure() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        m = int(rng.integers(1, 12))
        p = rng.random(m) ** 3  # many small p-values, so rejections happen
        p[rng.random(m) < 0.15] = np.nan
        adjusted = holm(p)
        ok = ~np.isnan(p)
        assert (adjusted[ok] >= p[ok]).all() and (adjusted[ok] <= 1).all()
        order = np.argsort(p[ok])
        assert (np.diff(adjusted[ok][order]) >= 0).all()  # monotone in p
        for alpha in (0.001, 0.01, 0.05, 0.1, 0.2):
            assert {int(i) for i in np.flatnonzero(adjusted <= alpha)} == holm_rejects(p, alpha)


# ------------------------------------------------------------------------------------------------------ ConTAM curve


def naive_curve(scores: np.ndarray, contamination: np.ndarray, thresholds: np.ndarray) -> pd.DataFrame:
    rows = []
    for t in thresholds:
        dirty = contamination >= t
        mean = lambda m: scores[m].mean() if m.any() else np.nan
        rows.append(
            {
                "threshold": t,
                "n_contaminated": int(dirty.sum()),
                "share_contaminated": dirty.mean(),
                "score_all": scores.mean(),
                "score_clean": mean(~dirty),
                "score_contaminated": mean(dirty),
                "gain": scores.mean() - mean(~dirty),
            }
        )
    return pd.DataFrame(rows)


def test_contam_curve_by_hand() -> None:
    scores = np.array([1, 1, 0, 1, 0, 0.0])
    cov = np.array([0.9, 0.8, 0.8, 0.1, 0.2, 0.0])
    curve = contam_curve(scores, cov)
    assert list(curve.columns) == list(naive_curve(scores, cov, [0.5]).columns)
    assert curve["threshold"].tolist()[:-1] == [0.0, 0.1, 0.2, 0.8, 0.9]
    assert 0.9 < curve["threshold"].iloc[-1] < 0.9 + 1e-12
    at = curve.set_index("threshold").loc[0.8]
    # contaminated {0.9, 0.8, 0.8} score 2/3, clean 1/3, all 1/2 -> gain 1/6
    assert (at.n_contaminated, at.share_contaminated) == (3, 0.5)
    assert at.score_contaminated == pytest.approx(2 / 3) and at.score_clean == pytest.approx(1 / 3)
    assert at.gain == pytest.approx(1 / 6)
    first, last = curve.iloc[0], curve.iloc[-1]
    assert first.n_contaminated == 6 and math.isnan(first.score_clean) and math.isnan(first.gain)
    assert last.n_contaminated == 0 and last.gain == 0.0 and math.isnan(last.score_contaminated)


def test_contam_curve_matches_definition_with_ties() -> None:
    rng = np.random.default_rng(8)
    cov = np.round(rng.random(500), 2)  # many ties
    scores = rng.random(500) * (1 + (cov > 0.7)) / 2  # contaminated items score higher
    thresholds = np.array([-1.0, 0.0, 0.33, 0.5, 0.7, 0.705, 0.99, 1.0, 2.0])
    pd.testing.assert_frame_equal(
        contam_curve(scores, cov, thresholds), naive_curve(scores, cov, thresholds), check_dtype=False
    )
    default = contam_curve(scores, cov)
    pd.testing.assert_frame_equal(default, naive_curve(scores, cov, default["threshold"].to_numpy()), check_dtype=False)
    assert default.set_index("threshold").loc[0.71, "gain"] > 0.05


def test_contam_curve_edge_cases() -> None:
    assert contam_curve(np.array([]), np.array([])).empty
    with pytest.raises(ValueError, match="length 2"):
        contam_curve(np.array([1.0, 0.0]), np.array([0.5]))
    with pytest.raises(ValueError, match="NaN"):
        contam_curve(np.array([1.0]), np.array([0.5]), np.array([np.nan]))


# ---------------------------------------------------------------------------------------------------------- Min-K%++

# Two-token vocabulary, target with probability q: μ = q log q + (1-q) log(1-q), σ = sqrt(q(1-q)) |log(q/(1-q))|,
# so (log q − μ) / σ = sign(q − ½) · sqrt((1 − q) / q).
TWO_TOKEN = [(0.8, 0, 0.5), (0.8, 1, -2.0), (0.5, 0, 0.0), (0.9, 0, 1 / 3), (0.9, 1, -3.0)]


def two_token_logits() -> tuple[np.ndarray, np.ndarray]:
    logits = np.array([[math.log(q) + 7.0, math.log(1 - q) + 7.0] for q, _, _ in TWO_TOKEN])  # shift is irrelevant
    return logits, np.array([t for _, t, _ in TWO_TOKEN])


@pytest.mark.parametrize("k,expected", [(0.2, -3.0), (0.1, -3.0), (0.4, -2.5), (1.0, (0.5 - 2 + 0 + 1 / 3 - 3) / 5)])
def test_min_k_plus_plus_two_token_vocabulary(k: float, expected: float) -> None:
    assert min_k_plus_plus_from_logits(*two_token_logits(), k=k) == pytest.approx(expected, rel=1e-12)


def test_min_k_plus_plus_from_given_moments() -> None:
    lp, mu, sigma = np.array([-1.0, -2.0, -3.0]), np.full(3, -1.5), np.array([0.5, 1.0, 2.0])  # z = 1, -0.5, -0.75
    assert min_k_plus_plus(lp, mu, sigma, k=0.5) == pytest.approx(-0.75)
    assert min_k_plus_plus(lp, mu, sigma, k=0.7) == pytest.approx(-0.625)
    assert min_k_plus_plus(lp, mu, sigma, k=1.0) == pytest.approx(-0.25 / 3)
    assert min_k_plus_plus(np.array([-0.5]), np.array([-0.5]), np.array([0.0])) == 0.0  # flat distribution
    assert min_k_plus_plus(np.array([-np.inf, -1.0]), np.array([-1.0, -1.0]), np.array([0.0, 1.0])) == -np.inf
    assert math.isnan(min_k_plus_plus(np.array([]), np.array([]), np.array([])))
    with pytest.raises(ValueError, match="k must"):
        min_k_plus_plus(lp, mu, sigma, k=0.0)
    with pytest.raises(ValueError, match="sigma"):
        min_k_plus_plus(lp, mu, -sigma)
    with pytest.raises(ValueError, match="one length"):
        min_k_plus_plus(lp, mu[:2], sigma)


def reference_mink_pp(logits: np.ndarray, targets: np.ndarray, k: float) -> float:
    """The published recipe (softmax, σ² = E[log p²] − μ², mean of the int(T·k) lowest), via exp / sum."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = z / z.sum(axis=1, keepdims=True)
    log_probs = np.log(probs)
    mu = (probs * log_probs).sum(1)
    sigma2 = (probs * log_probs**2).sum(1) - mu**2
    scores = (log_probs[np.arange(len(targets)), targets] - mu) / np.sqrt(sigma2)
    return float(np.sort(scores)[: int(len(scores) * k)].mean())


def test_min_k_plus_plus_matches_reference_recipe() -> None:
    rng = np.random.default_rng(0)
    for k in (0.1, 0.2, 0.5, 1.0):
        logits = rng.normal(0, 3, (40, 50))
        targets = rng.integers(0, 50, 40)
        ours = min_k_plus_plus_from_logits(logits, targets, k)
        assert ours == pytest.approx(reference_mink_pp(logits, targets, k), rel=1e-9)
        assert min_k_plus_plus_from_logits(logits.astype(np.float32), targets, k) == pytest.approx(ours, rel=1e-5)


def test_min_k_plus_plus_masked_tokens_and_extreme_logits() -> None:
    rng = np.random.default_rng(1)
    logits, targets = rng.normal(0, 2, (12, 6)), rng.integers(0, 5, 12)
    masked = np.hstack([logits, np.full((12, 1), -np.inf)])  # a token no row can produce
    assert min_k_plus_plus_from_logits(masked, targets) == pytest.approx(min_k_plus_plus_from_logits(logits, targets))
    huge = min_k_plus_plus_from_logits(logits * 1e4, targets)  # near one-hot rows: exp underflows to 0
    assert not math.isnan(huge)
    with pytest.raises(ValueError, match="token ids"):
        min_k_plus_plus_from_logits(logits, np.full(12, 6))
    with pytest.raises(ValueError, match=r"\(T, V\)"):
        min_k_plus_plus_from_logits(logits[0], targets)
    assert math.isnan(min_k_plus_plus_from_logits(np.empty((0, 6)), np.empty(0, int)))


# ------------------------------------------------------------------------------------------------------------- AUROC


def test_min_k_plus_plus_separates_memorised_items() -> None:
    """Memorised items follow the model's favourite tokens; clean ones are sampled from its distribution."""
    rng = np.random.default_rng(4)
    labels = np.arange(60) < 20
    item_scores = []
    for memorised in labels:
        logits = rng.normal(0, 2, (30, 40))
        if memorised:
            targets = np.argsort(-logits, axis=1)[np.arange(30), rng.integers(0, 3, 30)]  # one of the top 3
        else:
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            targets = np.array([rng.choice(40, p=row) for row in p])
        item_scores.append(min_k_plus_plus_from_logits(logits, targets, k=0.2))
    assert auroc(np.array(item_scores), labels) > 0.9
