"""eval.stats against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eval import stats


def test_win_rate_counts_ties_half():
    assert stats.win_rate(6, 2, 2) == pytest.approx(0.7)
    assert stats.win_rate(0, 4, 0) == pytest.approx(0.5)
    assert math.isnan(stats.win_rate(0, 0, 0))


def test_tie_adjusted_se_hand_values():
    # w=6, t=2, l=2: p = 0.7, mean(s^2) = (6 + 2/4)/10 = 0.65, var = 0.65 - 0.49 = 0.16
    assert stats.tie_adjusted_se(6, 2, 2) == pytest.approx(math.sqrt(0.16 / 10))
    # no ties: the plain Wald sqrt(p(1-p)/n) = sqrt(0.21/10)
    assert stats.tie_adjusted_se(7, 0, 3) == pytest.approx(math.sqrt(0.21 / 10))
    # all ties: no variance at all
    assert stats.tie_adjusted_se(0, 5, 0) == pytest.approx(0.0)


def test_tie_adjusted_se_equals_sd_over_sqrt_n_of_scores():
    scores = [1, 1, 1, 0.5, 0, 0.5, 1, 0]
    w, t, l = stats.count_outcomes(scores)
    assert (w, t, l) == (4, 2, 2)
    assert stats.tie_adjusted_se(w, t, l) == pytest.approx(np.std(scores) / math.sqrt(len(scores)))


def test_wald_interval_and_clipping():
    iv = stats.wald_interval(0.7, 0.1, 0.95)
    assert (iv.low, iv.high) == pytest.approx((0.7 - 0.195996, 0.7 + 0.195996), abs=1e-5)
    assert stats.wald_interval(0.95, 0.1).high == 1.0
    assert stats.wald_interval(0.5, 1.0, bounds=None).low == pytest.approx(0.5 - 1.959964, abs=1e-5)
    with pytest.raises(ValueError):
        stats.z_value(1.5)


def test_sign_test_hand_values():
    assert stats.sign_test(6, 2) == pytest.approx(2 * 37 / 256)   # (1 + 8 + 28) / 2^8
    assert stats.sign_test(9, 1) == pytest.approx(2 * 11 / 1024)
    assert stats.sign_test(1, 9) == pytest.approx(2 * 11 / 1024)
    assert stats.sign_test(3, 3) == 1.0
    assert stats.sign_test(0, 0) == 1.0
    assert stats.sign_test(10, 0) == pytest.approx(2 / 1024)


def test_sign_test_matches_scipy_binomtest():
    scipy_stats = pytest.importorskip("scipy.stats")
    for w, l in [(13, 4), (2, 11), (20, 20), (0, 7)]:
        assert stats.sign_test(w, l) == pytest.approx(scipy_stats.binomtest(w, w + l).pvalue)


def test_bootstrap_interval_is_seeded_and_sensible():
    vals = [0.0, 1.0, 0.5, 1.0, 1.0, 0.0, 1.0, 0.5]
    a = stats.bootstrap_interval(vals, 0.9, n_boot=500, seed=3)
    b = stats.bootstrap_interval(vals, 0.9, n_boot=500, seed=3)
    assert a == b
    smooth = [0.13, 0.72, 0.41, 0.95, 0.08, 0.66, 0.29, 0.57]
    assert (stats.bootstrap_interval(smooth, 0.9, 500, seed=3)
            != stats.bootstrap_interval(smooth, 0.9, 500, seed=4))
    assert a.low < np.mean(vals) < a.high and 0 <= a.low and a.high <= 1
    const = stats.bootstrap_interval([0.3] * 5)
    assert (const.low, const.high) == pytest.approx((0.3, 0.3))
    assert math.isnan(stats.bootstrap_interval([]).low)


def test_quantile_matches_numpy_linear():
    vals = sorted([3.0, 1.0, 4.0, 1.5, 9.0, 2.6])
    for q in (0.0, 0.025, 0.5, 0.975, 1.0):
        assert stats._quantile(vals, q) == pytest.approx(np.quantile(vals, q))


def test_summarize_win_rate_and_mean():
    wr = stats.summarize_win_rate([1, 1, 1, 1, 1, 1, 0.5, 0.5, 0, 0])
    assert (wr.n, wr.wins, wr.ties, wr.losses) == (10, 6, 2, 2)
    assert wr.rate == pytest.approx(0.7)
    assert wr.se == pytest.approx(math.sqrt(0.016))
    assert wr.wald.low == pytest.approx(0.7 - 1.959964 * math.sqrt(0.016), abs=1e-6)
    assert wr.sign_test_p == pytest.approx(2 * 37 / 256)
    m = stats.summarize_mean([0.2, 0.4, 0.9])
    assert m.mean == pytest.approx(0.5)
    assert m.se == pytest.approx(np.std([0.2, 0.4, 0.9]) / math.sqrt(3))
    with pytest.raises(ValueError, match="1, 0.5 or 0"):
        stats.count_outcomes([1, 0.25])


def test_outcome_and_paired_outcomes():
    assert stats.outcome(0.8, 0.5) == 1.0
    assert stats.outcome(0.5, 0.8) == 0.0
    assert stats.outcome(0.5, 0.5) == 0.5
    assert stats.outcome(0.51, 0.5, tol=0.05) == 0.5
    keys, scores = stats.paired_outcomes({"x": 1, "y": 0, "z": 3}, {"y": 1, "x": 0, "w": 2})
    assert keys == ["x", "y"] and scores == [1.0, 0.0]
