"""Divergences between cluster histograms, and MAUVE: the numbers simulator fidelity reports.

P is the real users' histogram over k behaviour clusters, Q a simulator's (counts, shape (k,)).
All logarithms are natural, so JS is at most ln 2.

- forward KL  = KL(P̃ ‖ Q̃): high when the simulator misses behaviours real users show (recall).
- backward KL = KL(Q̃ ‖ P̃): high when the simulator shows behaviours real users don't (precision).
- JS          = JS(P, Q) on the raw (unsmoothed) normalised histograms.
- MAUVE       = area under the divergence curve of the raw histograms (below); higher is closer.

Smoothing (add-1/k, then renormalised): a pseudo-count of 1/k is added to each of the k bins, so
one pseudo-observation is spread evenly over the bins, and the result is renormalised:

    p̃_i = (c_i + 1/k) / (N + 1),    N = Σ_i c_i

(Lidstone smoothing with α = 1/k; the total added mass is k · 1/k = 1.) Both histograms of a KL are
smoothed this way, each with its own N, which keeps every KL finite.

MAUVE (Pillutla et al., 2021) summarises both errors in one number in (0, 1], 1 = identical. On
the raw normalised histograms P and Q (no smoothing: every mixture R_λ = λP + (1 − λ)Q with
0 < λ < 1 is positive wherever P or Q is, so every KL below is finite):

    C(P, Q) = {(exp(−c KL(Q ‖ R_λ)), exp(−c KL(P ‖ R_λ))) : λ in the grid} ∪ {(1, 0), (0, 1)}

and MAUVE is the area under C, the points joined by straight lines. As the reference
implementation (`mauve-text`) does, the grid is 25 evenly spaced λ from 1e-6 to 1 − 1e-6 and the
scaling constant c = 5. The curve is monotone in λ (x falls, y rises), so the area is taken along
the points in λ order; the reference sorts the points by x and by y and averages the two areas,
which is the same number whenever no two points tie — and when P = Q (every grid point is (1, 1))
the λ order gives the area 1 that the definition requires.

Bootstrap intervals resample the items of each set with replacement while keeping their cluster
assignments fixed; resampling n items from a set with counts c gives counts ~ Multinomial(n, c/n),
which is what `bootstrap_divergences` draws.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def _counts(counts: np.ndarray | list[float], name: str = "counts") -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or c.size < 1:
        raise ValueError(f"{name} must be a non-empty 1-d histogram, got shape {c.shape}")
    if np.any(c < 0) or not np.all(np.isfinite(c)):
        raise ValueError(f"{name} must be finite and non-negative")
    if c.sum() <= 0:
        raise ValueError(f"{name} is empty (all bins zero)")
    return c


def normalise(counts: np.ndarray | list[float]) -> np.ndarray:
    """Raw histogram → probabilities: c_i / N. Shape (k,) → (k,)."""
    c = _counts(counts)
    return c / c.sum()


def smooth(counts: np.ndarray | list[float]) -> np.ndarray:
    """Add-1/k smoothing then renormalised: p̃_i = (c_i + 1/k) / (N + 1). Shape (k,) → (k,)."""
    c = _counts(counts)
    k = c.size
    return (c + 1.0 / k) / (c.sum() + 1.0)


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p ‖ q) = Σ_i p_i ln(p_i / q_i) for probability vectors (terms with p_i = 0 are 0);
    +inf when some q_i = 0 < p_i."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"histograms differ in shape: {p.shape} vs {q.shape}")
    mask = p > 0
    if np.any(q[mask] <= 0):
        return float("inf")
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def js(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence ½KL(p‖m) + ½KL(q‖m), m = ½(p + q); natural log, in [0, ln 2]."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def forward_kl(counts_real, counts_sim) -> float:
    """KL(P̃ ‖ Q̃) with both histograms add-1/k smoothed (see module docstring)."""
    return kl(smooth(counts_real), smooth(counts_sim))


def backward_kl(counts_real, counts_sim) -> float:
    """KL(Q̃ ‖ P̃) with both histograms add-1/k smoothed (see module docstring)."""
    return kl(smooth(counts_sim), smooth(counts_real))


def js_counts(counts_a, counts_b) -> float:
    """JS between two raw count histograms (normalised, unsmoothed)."""
    return js(normalise(counts_a), normalise(counts_b))


MAUVE_SCALING = 5.0   # c, the reference implementation's default
MAUVE_GRID = 25       # λ points on the divergence curve, the reference implementation's default
MAUVE_EPS = 1e-6      # the grid runs from MAUVE_EPS to 1 − MAUVE_EPS


def mixture_grid(points: int = MAUVE_GRID) -> np.ndarray:
    """λ values of the divergence curve: `points` evenly spaced in [1e-6, 1 − 1e-6]. Shape (m,)."""
    if points < 1:
        raise ValueError(f"the MAUVE grid needs at least one point, got {points}")
    return np.linspace(MAUVE_EPS, 1 - MAUVE_EPS, points)


def divergence_curve(p: np.ndarray, q: np.ndarray, lambdas: np.ndarray | None = None,
                     scaling: float = MAUVE_SCALING) -> np.ndarray:
    """MAUVE's divergence curve for probability vectors p, q (k,): rows (x, y) =
    (exp(−c KL(q ‖ r)), exp(−c KL(p ‖ r))) for r = λp + (1 − λ)q, λ ascending, between the end
    points (1, 0) and (0, 1). Shape (m + 2, 2) for m values of λ (default: `mixture_grid()`)."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 1:
        raise ValueError(f"histograms differ in shape or are not 1-d: {p.shape} vs {q.shape}")
    lambdas = np.sort(mixture_grid() if lambdas is None else np.asarray(lambdas, dtype=np.float64))
    if np.any((lambdas <= 0) | (lambdas >= 1)):
        raise ValueError("every λ of the divergence curve must lie strictly between 0 and 1")
    r = lambdas[:, None] * p + (1 - lambdas[:, None]) * q          # (m, k), > 0 where p or q is
    kl_q, kl_p = _kl_rows(q, r), _kl_rows(p, r)                     # (m,) each
    points = np.concatenate([[[0.0, np.inf]], np.stack([kl_q, kl_p], axis=1), [[np.inf, 0.0]]])
    return np.exp(-scaling * points)


def _kl_rows(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """KL(p ‖ r_j) for every row r_j of r (m, k), where r_j > 0 wherever p > 0. Shape (m,)."""
    support = p > 0
    return np.sum(p[support] * np.log(p[support] / r[:, support]), axis=1)


def area_under_curve(curve: np.ndarray) -> float:
    """Area under a curve given as points (m, 2) in order from (1, 0) to (0, 1), joined by straight
    lines (the trapezoid rule along the path): Σ ½ (y_i + y_{i+1}) (x_i − x_{i+1})."""
    x, y = np.asarray(curve, dtype=np.float64).T
    return float(np.sum(0.5 * (y[:-1] + y[1:]) * (x[:-1] - x[1:])))


def mauve(p: np.ndarray, q: np.ndarray, *, scaling: float = MAUVE_SCALING,
          points: int = MAUVE_GRID) -> float:
    """MAUVE of probability vectors p (real) and q (simulated), shape (k,): the area under their
    divergence curve, in (0, 1]; 1 when p = q, near 0 when their supports are disjoint.
    Symmetric in p and q."""
    return area_under_curve(divergence_curve(p, q, mixture_grid(points), scaling))


def mauve_counts(counts_real, counts_sim) -> float:
    """MAUVE between two raw count histograms (normalised, unsmoothed), default c and grid."""
    return mauve(normalise(counts_real), normalise(counts_sim))


@dataclass(frozen=True)
class Divergences:
    """The divergences between the real histogram and one other (MAUVE: None where not computed)."""

    forward_kl: float
    backward_kl: float
    js: float
    mauve: float | None = None

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def divergences(counts_real, counts_sim) -> Divergences:
    """Forward KL, backward KL, JS and MAUVE between a real and a simulated count histogram."""
    return Divergences(forward_kl(counts_real, counts_sim), backward_kl(counts_real, counts_sim),
                       js_counts(counts_real, counts_sim), mauve_counts(counts_real, counts_sim))


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval."""

    low: float
    high: float
    level: float
    samples: int


def bootstrap_divergences(counts_real, counts_sim, *, samples: int = 1000, level: float = 0.95,
                          seed: int = 0) -> dict[str, Interval]:
    """Percentile intervals of forward KL, backward KL, JS and MAUVE under resampling each set's
    items with replacement (counts ~ Multinomial(N, c/N) per set, independently). Keys: the
    `Divergences` field names."""
    if samples < 1 or not 0 < level < 1:
        raise ValueError("bootstrap needs samples >= 1 and 0 < level < 1")
    real, sim = _counts(counts_real, "counts_real"), _counts(counts_sim, "counts_sim")
    rng = np.random.default_rng(seed)
    boot_real = rng.multinomial(int(real.sum()), real / real.sum(), size=samples)
    boot_sim = rng.multinomial(int(sim.sum()), sim / sim.sum(), size=samples)
    values = np.array([[d.forward_kl, d.backward_kl, d.js, d.mauve] for d in
                       (divergences(r, s) for r, s in zip(boot_real, boot_sim))])
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2], axis=0)
    names = ("forward_kl", "backward_kl", "js", "mauve")
    return {n: Interval(float(lo[i]), float(hi[i]), level, samples) for i, n in enumerate(names)}


def split_halves(labels: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts (k,) of two random halves of one set's cluster labels (n,): the noise floor's inputs."""
    labels = np.asarray(labels)
    if labels.size < 2:
        raise ValueError("the floor needs at least two real items")
    order = np.random.default_rng(seed).permutation(labels.size)
    half = labels.size // 2
    return (np.bincount(labels[order[:half]], minlength=k),
            np.bincount(labels[order[half:2 * half]], minlength=k))
