"""The mixture of simulators closest to real users: weights minimising the forward KL.

Given the real histogram P̃ and the simulators' histograms Q̃_1..Q̃_m (all add-1/k smoothed, see
eval.divergence), find weights w on the simplex minimising

    KL(P̃ ‖ Σ_j w_j Q̃_j) = const − Σ_i p̃_i ln(Σ_j w_j q̃_ji).

This is the maximum-likelihood estimate of mixture proportions with fixed components: the
objective is convex in w, and the EM (multiplicative) update

    w_j ← w_j · Σ_i p̃_i q̃_ji / (Σ_l w_l q̃_li)

never increases it and converges to the global minimum from any interior start. At the optimum
the KKT conditions hold: g_j = Σ_i p̃_i q̃_ji / m_i equals 1 where w_j > 0 and is ≤ 1 where w_j = 0
(m = the mixture); `kkt_violation` reports max_j (g_j − 1)⁺ plus the spread of g over the support.

With equal set sizes N the mixture of smoothed histograms equals the smoothed histogram of the
weighted counts Σ_j w_j c_j, so its divergences read like a single simulator's. Its JS is taken
on the raw mixture Σ_j w_j c_j / N_j.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eval.divergence import Divergences, js, kl, mauve, normalise, smooth


@dataclass
class MixtureFit:
    """Optimal weights (one per simulator, summing to 1) and how well the fit converged."""

    weights: np.ndarray       # (m,)
    divergences: Divergences  # of the mixture to real
    iterations: int
    kkt_violation: float


def kkt_violation(p: np.ndarray, q: np.ndarray, w: np.ndarray, support_tol: float = 1e-6) -> float:
    """How far w is from optimal: max (g_j − 1)⁺ over all j, and |g_j − 1| over j with w_j > tol.
    p (k,), q (m, k), w (m,)."""
    g = q @ (p / (w @ q))
    over = np.maximum(g - 1.0, 0.0).max()
    on_support = np.abs(g[w > support_tol] - 1.0).max() if np.any(w > support_tol) else 0.0
    return float(max(over, on_support))


def em_weights(p: np.ndarray, q: np.ndarray, *, tol: float = 1e-12, max_iter: int = 100_000
               ) -> tuple[np.ndarray, int]:
    """Mixture proportions minimising KL(p ‖ w @ q) by EM. p (k,) probabilities, q (m, k) rows of
    probabilities with no zeros. Stops when the objective improves by less than `tol`."""
    m = q.shape[0]
    w = np.full(m, 1.0 / m)
    prev = np.inf
    for it in range(1, max_iter + 1):
        mix = w @ q
        w = w * (q @ (p / mix))
        w /= w.sum()
        obj = -float(p @ np.log(w @ q))
        if prev - obj < tol:
            return w, it
        prev = obj
    return w, max_iter


def optimal_mixture(counts_real: np.ndarray, counts_sims: list[np.ndarray]) -> MixtureFit:
    """Weights over the simulators whose smoothed-histogram mixture is closest to real in forward
    KL, and the mixture's forward KL, backward KL, JS and MAUVE (JS and MAUVE on the
    unsmoothed mixture of the normalised histograms, as for a single simulator)."""
    if not counts_sims:
        raise ValueError("a mixture needs at least one simulator")
    p = smooth(counts_real)
    q = np.stack([smooth(c) for c in counts_sims])
    w, iters = em_weights(p, q)
    mix = w @ q
    raw_mix = w @ np.stack([normalise(c) for c in counts_sims])
    div = Divergences(kl(p, mix), kl(mix, p), js(normalise(counts_real), raw_mix),
                      mauve(normalise(counts_real), raw_mix))
    return MixtureFit(w, div, iters, kkt_violation(p, q, w))
