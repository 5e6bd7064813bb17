"""Arena statistics on battles: per-pair win rates with participant-clustered bootstrap
intervals, and Bradley–Terry ratings on the Elo scale. Pure functions on plain data.

Definitions (reference/formats.md, FastChat's arena):
- A battle of model_a vs model_b scores s = 1 for model_a's win, 0 for model_b's, 0.5 for
  "tie" and "tie (bothbad)". A pair's win rate for its first-named model, its tie-adjusted SE,
  Wald interval and sign test are eval/stats.py's (ties count half; the sign test drops ties).
- Clustered bootstrap: a participant's battles are not independent, so each resample draws
  participants (with replacement) and keeps all of a drawn participant's battles; the statistic
  is the win rate of the pooled battles; the interval is the (1−level)/2, (1+level)/2 quantiles.
- Bradley–Terry: P(i beats j) = σ(r_i − r_j); a tie is half a win to each side. The ratings
  maximise Σ_pairs [w_ij log σ(r_i − r_j) + w_ji log σ(r_j − r_i)] (w_ij: i's wins + half the
  ties) with L-BFGS; on the Elo scale R_i = 1000 + (400/ln 10)(r_i − mean r), so the mean rating
  is 1000 and 400 points mean odds of 10:1. As in FastChat's fit, a ridge of 1e-6 (sklearn's
  C = 1e6) keeps the fit finite; the MLE does not exist when a model won or lost every battle
  (without the ridge its rating would drift without bound): such a fit is flagged `separated`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from eval.stats import Interval, WinRate, summarize_win_rate, z_value

WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
SCORE = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
ELO_PER_LOGIT = 400 / math.log(10)
ELO_MEAN = 1000.0
RIDGE = 1e-6


@dataclass(frozen=True)
class Battle:
    """One comparison: model_a vs model_b, the winner, the participant (judge), the turn."""

    model_a: str
    model_b: str
    winner: str
    judge: str
    turn: int | str = 0
    phase: str = "turn"


def oriented_pairs(battles: Sequence[Battle]) -> dict[tuple[str, str], list[tuple[str, float]]]:
    """(first, second) -> [(judge, score for first)] per unordered pair of models. A pair is
    oriented as its first battle names it; battles naming it the other way round are flipped."""
    pairs: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for b in battles:
        if (b.model_b, b.model_a) in pairs:
            pairs[(b.model_b, b.model_a)].append((b.judge, 1.0 - SCORE[b.winner]))
        else:
            pairs.setdefault((b.model_a, b.model_b), []).append((b.judge, SCORE[b.winner]))
    return pairs


def clustered_bootstrap_interval(clusters: Sequence[Sequence[float]], level: float = 0.95,
                                 n_boot: int = 2000, seed: int = 0) -> Interval:
    """Percentile bootstrap of the pooled mean, resampling whole clusters (participants)."""
    z_value(level)
    clusters = [list(c) for c in clusters if len(c)]
    if not clusters:
        return Interval(math.nan, math.nan, level, "bootstrap")
    sums = np.array([sum(c) for c in clusters])
    sizes = np.array([len(c) for c in clusters])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(clusters), size=(n_boot, len(clusters)))
    means = np.sort(sums[draws].sum(axis=1) / sizes[draws].sum(axis=1))
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(low), float(high), level, "bootstrap")


def pair_win_rate(scored: Sequence[tuple[str, float]], level: float = 0.95, n_boot: int = 2000,
                  seed: int = 0) -> WinRate:
    """eval.stats' summary of one pair's scores, its bootstrap clustered by judge."""
    by_judge: dict[str, list[float]] = defaultdict(list)
    for judge, score in scored:
        by_judge[judge].append(score)
    summary = summarize_win_rate([s for _, s in scored], level, n_boot=1, seed=seed)
    return replace(summary, bootstrap=clustered_bootstrap_interval(
        list(by_judge.values()), level, n_boot, seed))


def win_counts(battles: Sequence[Battle], models: Sequence[str]) -> np.ndarray:
    """W[i, j] = battles model i won against j plus half their ties, shape (M, M)."""
    index = {m: i for i, m in enumerate(models)}
    wins = np.zeros((len(models), len(models)))
    for b in battles:
        i, j, s = index[b.model_a], index[b.model_b], SCORE[b.winner]
        wins[i, j] += s
        wins[j, i] += 1.0 - s
    return wins


def bradley_terry_logits(wins: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """Bradley–Terry strengths (logit units, mean 0) maximising the likelihood of W (from
    win_counts) minus ridge/2·Σr², the tiny penalty of FastChat's fit (sklearn's C = 1e6): it
    moves identifiable ratings by less than 1e-3 points and keeps separated ones finite."""
    m = wins.shape[0]

    def loss(r: np.ndarray) -> tuple[float, np.ndarray]:
        d = r[:, None] - r[None, :]
        nll = float(np.sum(wins * np.logaddexp(0.0, -d)))  # −w_ij log σ(r_i − r_j)
        g = wins * (1.0 / (1.0 + np.exp(d)))  # w_ij σ(r_j − r_i)
        return nll + ridge / 2 * float(r @ r), -(g.sum(axis=1) - g.sum(axis=0)) + ridge * r

    res = minimize(loss, np.zeros(m), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-9, "maxiter": 500})
    return res.x - res.x.mean()


def elo_scale(logits: np.ndarray) -> np.ndarray:
    """Logit strengths on the Elo scale, centred on a mean of 1000."""
    return ELO_MEAN + ELO_PER_LOGIT * (logits - logits.mean())


def separated(wins: np.ndarray) -> list[int]:
    """Indices of models that won every game or lost every game they played (no finite MLE)."""
    played = wins + wins.T
    return [i for i in range(len(wins)) if played[i].sum() > 0
            and (wins[i].sum() == 0 or wins[:, i].sum() == 0)]


def bradley_terry(battles: Sequence[Battle], level: float = 0.95, n_boot: int = 500,
                  seed: int = 0) -> dict[str, Any]:
    """model -> {rating, ci_low, ci_high} (Elo scale), intervals from a bootstrap over judges,
    plus `separated`: models whose ratings have no finite maximum-likelihood value."""
    models = sorted({m for b in battles for m in (b.model_a, b.model_b)})
    if len(models) < 2:
        return {"ratings": {}, "separated": []}
    with threadpool_limits(1):  # tiny fits: BLAS threads only contend (10x slower on 2 cores)
        return _bradley_terry(battles, models, level, n_boot, seed)


def _bradley_terry(battles: Sequence[Battle], models: list[str], level: float, n_boot: int,
                   seed: int) -> dict[str, Any]:
    wins = win_counts(battles, models)
    ratings = elo_scale(bradley_terry_logits(wins))
    by_judge: dict[str, list[Battle]] = defaultdict(list)
    for b in battles:
        by_judge[b.judge].append(b)
    judges = sorted(by_judge)
    judge_wins = np.stack([win_counts(by_judge[j], models) for j in judges])
    rng = np.random.default_rng(seed)
    boots = np.stack([elo_scale(bradley_terry_logits(judge_wins[draw].sum(axis=0)))
                      for draw in rng.integers(0, len(judges), size=(n_boot, len(judges)))])
    low, high = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return {"ratings": {m: {"rating": float(ratings[i]), "ci_low": float(low[i]),
                            "ci_high": float(high[i])} for i, m in enumerate(models)},
            "separated": [models[i] for i in separated(wins)]}
