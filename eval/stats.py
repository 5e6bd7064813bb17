"""Win-rate statistics used by every evaluation report: pure functions on plain numbers.

Definitions (docs/evaluation.md repeats them):

- A *pair* is one task on which assistant A and assistant B were compared. Its score for A is
  s = 1 (A wins), 0.5 (tie) or 0 (B wins).
- Win rate p = mean(s) = (w + t/2) / n for w wins, t ties among n pairs: ties count half.
- Tie-adjusted standard error: SE = sd(s) / sqrt(n), with the population variance of the per-pair
  scores, var(s) = mean(s²) − p² = (w + t/4)/n − p². Without ties this is exactly the Wald
  sqrt(p(1 − p)/n); every tie shrinks the variance below p(1 − p), because a tie sits at the
  middle instead of at 0 or 1.
- Wald interval: p ± z·SE, z the standard-normal quantile of the level, clipped to [0, 1].
- Percentile bootstrap: resample the n values with replacement `n_boot` times under a fixed
  seed, take the (1−level)/2 and (1+level)/2 quantiles of the resampled means.
- Sign test for "A beats B": ties dropped; under H0 wins ~ Binomial(w + l, 1/2); the two-sided
  exact p-value is min(1, 2·P(X ≤ min(w, l))) (the binomial is symmetric at 1/2, so this equals
  the usual sum of outcomes no more likely than the observed one).
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Sequence

WIN, TIE, LOSS = 1.0, 0.5, 0.0


@dataclass(frozen=True)
class Interval:
    """A confidence interval for some estimate; `method` is "wald" or "bootstrap"."""

    low: float
    high: float
    level: float
    method: str


@dataclass(frozen=True)
class WinRate:
    """Pairwise comparison of A over B: counts, win rate (ties half), SE, intervals, sign test."""

    n: int
    wins: int
    ties: int
    losses: int
    rate: float
    se: float
    wald: Interval
    bootstrap: Interval
    sign_test_p: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MeanEstimate:
    """A mean with its standard error (sd/sqrt(n), population sd) and a bootstrap interval."""

    n: int
    mean: float
    se: float
    bootstrap: Interval

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def outcome(a: float, b: float, tol: float = 0.0) -> float:
    """Per-pair score for A from two numbers (higher is better): 1 if a > b + tol, 0 if
    b > a + tol, else 0.5 (a tie)."""
    if a > b + tol:
        return WIN
    if b > a + tol:
        return LOSS
    return TIE


def count_outcomes(scores: Sequence[float]) -> tuple[int, int, int]:
    """(wins, ties, losses) from per-pair scores in {1, 0.5, 0}; any other value is an error."""
    wins = sum(1 for s in scores if s == WIN)
    ties = sum(1 for s in scores if s == TIE)
    losses = sum(1 for s in scores if s == LOSS)
    if wins + ties + losses != len(scores):
        bad = [s for s in scores if s not in (WIN, TIE, LOSS)]
        raise ValueError(f"pair scores must be 1, 0.5 or 0; got {bad[:5]}")
    return wins, ties, losses


def win_rate(wins: int, ties: int, losses: int) -> float:
    """(w + t/2) / n; NaN when there are no pairs."""
    n = wins + ties + losses
    return (wins + ties / 2) / n if n else math.nan


def tie_adjusted_se(wins: int, ties: int, losses: int) -> float:
    """sd(s)/sqrt(n) for per-pair scores s ∈ {1, 0.5, 0}: sqrt(((w + t/4)/n − p²) / n).
    Equals the Wald sqrt(p(1−p)/n) when t = 0. NaN when n = 0."""
    n = wins + ties + losses
    if n == 0:
        return math.nan
    p = win_rate(wins, ties, losses)
    var = max((wins + ties / 4) / n - p * p, 0.0)
    return math.sqrt(var / n)


def z_value(level: float) -> float:
    """Two-sided standard-normal quantile for a confidence level (0.95 → 1.95996…)."""
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    return NormalDist().inv_cdf((1 + level) / 2)


def wald_interval(estimate: float, se: float, level: float = 0.95,
                  bounds: tuple[float, float] | None = (0.0, 1.0)) -> Interval:
    """estimate ± z·se, clipped to `bounds` (None: no clipping)."""
    z = z_value(level)
    low, high = estimate - z * se, estimate + z * se
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Interval(low, high, level, "wald")


def bootstrap_interval(values: Sequence[float], level: float = 0.95, n_boot: int = 2000,
                       seed: int = 0) -> Interval:
    """Percentile bootstrap interval of the mean of `values` (seeded, so reports are stable).
    With no values the interval is (NaN, NaN)."""
    z_value(level)  # validates the level
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, level, "bootstrap")
    rng = random.Random(seed)
    vals = list(map(float, values))
    means = sorted(sum(rng.choices(vals, k=n)) / n for _ in range(n_boot))
    return Interval(_quantile(means, (1 - level) / 2), _quantile(means, (1 + level) / 2),
                    level, "bootstrap")


def _quantile(sorted_vals: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of sorted values (numpy's default 'linear' method)."""
    pos = q * (len(sorted_vals) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial (sign) test p-value of wins vs losses under p = 1/2, ties
    already dropped. 1.0 when there are no decided pairs."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def summarize_win_rate(scores: Sequence[float], level: float = 0.95, n_boot: int = 2000,
                       seed: int = 0) -> WinRate:
    """Everything a report needs about per-pair scores s ∈ {1, 0.5, 0} of A over B."""
    wins, ties, losses = count_outcomes(scores)
    rate = win_rate(wins, ties, losses)
    se = tie_adjusted_se(wins, ties, losses)
    wald = wald_interval(rate, se, level) if scores else Interval(math.nan, math.nan, level, "wald")
    return WinRate(n=len(scores), wins=wins, ties=ties, losses=losses, rate=rate, se=se,
                   wald=wald, bootstrap=bootstrap_interval(scores, level, n_boot, seed),
                   sign_test_p=sign_test(wins, losses))


def mean_sd_se(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, population sd, sd/sqrt(n)); NaNs when empty."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    return mean, sd, sd / math.sqrt(n)


def summarize_mean(values: Sequence[float], level: float = 0.95, n_boot: int = 2000,
                   seed: int = 0) -> MeanEstimate:
    """Mean reward with its standard error and a seeded percentile-bootstrap interval."""
    mean, _sd, se = mean_sd_se(values)
    return MeanEstimate(n=len(values), mean=mean, se=se,
                        bootstrap=bootstrap_interval(values, level, n_boot, seed))


def paired_outcomes(a: dict[str, float], b: dict[str, float], tol: float = 0.0
                    ) -> tuple[list[str], list[float]]:
    """Per-key outcomes of A over B on the keys both have (sorted keys, scores in {1, .5, 0})."""
    keys = sorted(set(a) & set(b))
    return keys, [outcome(a[k], b[k], tol) for k in keys]
