"""Fidelity math against hand-computed values: smoothing, KL both ways, JS, bootstrap, floor
split, k capping, and the optimal mixture (EM against a brute-force grid)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eval.divergence import (backward_kl, bootstrap_divergences, divergences, forward_kl, js,
                             js_counts, kl, mauve, mauve_counts, normalise, smooth,
                             split_halves)
from eval.mixture import em_weights, kkt_violation, optimal_mixture
from eval.quantise import choose_k, quantise


def test_add_one_over_k_smoothing_by_hand():
    # k = 4, N = 6: p_i = (c_i + 1/4) / 7
    assert np.allclose(smooth([3, 2, 1, 0]), [3.25 / 7, 2.25 / 7, 1.25 / 7, 0.25 / 7])
    assert smooth([5, 0, 0]).sum() == pytest.approx(1.0)


def test_forward_and_backward_kl_by_hand():
    # k = 2. real [3, 1] -> (3.5/5, 1.5/5) = (0.7, 0.3); sim [1, 1] -> (1.5/3, 1.5/3) = (0.5, 0.5)
    fwd = 0.7 * math.log(0.7 / 0.5) + 0.3 * math.log(0.3 / 0.5)
    bwd = 0.5 * math.log(0.5 / 0.7) + 0.5 * math.log(0.5 / 0.3)
    assert forward_kl([3, 1], [1, 1]) == pytest.approx(fwd, abs=1e-12)
    assert backward_kl([3, 1], [1, 1]) == pytest.approx(bwd, abs=1e-12)
    assert fwd == pytest.approx(0.0822831, abs=1e-6)


def test_kl_missing_bin_is_finite_after_smoothing_and_infinite_before():
    assert kl([0.5, 0.5], [1.0, 0.0]) == math.inf
    # real [2, 2], sim [4, 0], k = 2: real (2.5/5, 2.5/5), sim (4.5/5, 0.5/5)
    expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert forward_kl([2, 2], [4, 0]) == pytest.approx(expected, abs=1e-12)


def test_js_on_raw_histograms_natural_log():
    assert js_counts([1, 0], [0, 1]) == pytest.approx(math.log(2))
    assert js_counts([5, 5], [1, 1]) == pytest.approx(0.0)
    # P = (.75, .25), Q = (.5, .5), M = (.625, .375)
    expected = 0.5 * (0.75 * math.log(0.75 / 0.625) + 0.25 * math.log(0.25 / 0.375)) \
        + 0.5 * (0.5 * math.log(0.5 / 0.625) + 0.5 * math.log(0.5 / 0.375))
    assert js_counts([3, 1], [1, 1]) == pytest.approx(expected, abs=1e-12)
    assert js([0.75, 0.25], [0.5, 0.5]) == pytest.approx(expected, abs=1e-12)
    d = divergences([3, 1], [1, 1])
    assert d.js == pytest.approx(expected) and d.forward_kl == pytest.approx(forward_kl([3, 1], [1, 1]))


def test_bad_histograms_are_rejected():
    with pytest.raises(ValueError, match="empty"):
        smooth([0, 0])
    with pytest.raises(ValueError, match="non-negative"):
        smooth([1, -1])


def test_bootstrap_intervals_are_seeded_and_shrink_with_more_data():
    small = bootstrap_divergences([30, 20, 10], [20, 20, 20], samples=300, seed=1)
    again = bootstrap_divergences([30, 20, 10], [20, 20, 20], samples=300, seed=1)
    big = bootstrap_divergences([3000, 2000, 1000], [2000, 2000, 2000], samples=300, seed=1)
    assert small == again
    width = lambda iv: iv.high - iv.low  # noqa: E731
    assert width(big["forward_kl"]) < width(small["forward_kl"]) / 3
    point = forward_kl([3000, 2000, 1000], [2000, 2000, 2000])
    assert big["forward_kl"].low <= point <= big["forward_kl"].high


def test_split_halves_partitions_the_labels():
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 0, 1])
    a, b = split_halves(labels, 4, seed=3)
    assert a.sum() == 4 and b.sum() == 4 and a.shape == (4,)
    assert np.all(a + b <= np.bincount(labels, minlength=4))


def test_choose_k_caps_small_inputs():
    assert choose_k(500, [100_000, 80_000]) == 500
    assert choose_k(500, [600, 1000]) == 60        # round(600 / 10)
    assert choose_k(500, [12, 1000]) == 2          # never below 2
    with pytest.raises(ValueError):
        choose_k(1, [100])


def test_quantise_shares_one_clustering_across_sets():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 5
    a = centres[rng.integers(0, 3, 200)] + rng.normal(size=(200, 8)) * 0.1
    b = centres[rng.integers(0, 2, 150)] + rng.normal(size=(150, 8)) * 0.1
    q = quantise([a, b], k=3, seed=0)
    assert q.k == 3 and len(q.labels[0]) == 200 and len(q.labels[1]) == 150
    # b never visits centre 2: one cluster holds only a's points
    assert (q.counts(1) == 0).sum() == 1 and q.counts(0).min() > 40


def test_em_mixture_recovers_planted_weights():
    q = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    p = 0.3 * q[0] + 0.7 * q[1]
    w, _ = em_weights(p, q)
    assert np.allclose(w, [0.3, 0.7], atol=1e-4)
    assert kkt_violation(p, q, w) < 1e-4


def test_optimal_mixture_matches_brute_force_and_beats_both():
    real = np.array([40, 30, 20, 10])
    sim_a = np.array([70, 25, 5, 0])     # lacks the last behaviour
    sim_b = np.array([5, 15, 30, 50])
    fit = optimal_mixture(real, [sim_a, sim_b])
    p, qa, qb = smooth(real), smooth(sim_a), smooth(sim_b)
    grid = np.linspace(0, 1, 20001)
    best = min(kl(p, w * qa + (1 - w) * qb) for w in grid)
    assert fit.divergences.forward_kl == pytest.approx(best, abs=1e-7)
    assert fit.divergences.forward_kl < min(forward_kl(real, sim_a), forward_kl(real, sim_b))
    assert fit.weights.sum() == pytest.approx(1.0) and fit.kkt_violation < 1e-4
    raw_mix = fit.weights[0] * normalise(sim_a) + fit.weights[1] * normalise(sim_b)
    assert fit.divergences.mauve == pytest.approx(mauve(normalise(real), raw_mix))
    assert fit.divergences.mauve > max(mauve_counts(real, sim_a), mauve_counts(real, sim_b))


def test_optimal_mixture_on_the_boundary_puts_zero_weight():
    real = np.array([50, 50, 0])
    fit = optimal_mixture(real, [np.array([50, 50, 0]), np.array([0, 0, 100])])
    assert fit.weights[1] < 1e-3 and fit.kkt_violation < 1e-3


@pytest.mark.parametrize("backend", ["sklearn", "faiss"])
def test_both_kmeans_backends_find_planted_clusters(backend):
    if backend == "faiss":
        pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(4, 6)) * 4
    z = rng.integers(0, 4, 400)
    x = centres[z] + rng.normal(size=(400, 6)) * 0.05
    q = quantise([x[:200], x[200:]], k=4, seed=3, backend=backend)
    assert q.backend == backend
    labels = np.concatenate(q.labels)
    # every planted cluster maps to exactly one k-means cluster
    assert all(len(set(labels[z == c])) == 1 for c in range(4))
    assert len(set(labels)) == 4
