"""Aggregates of judged WildBench tasks, per protocol (the units and rules of eval/wb_protocol.py).

WB-Reward (`reward_summary`): per-task rewards r ∈ [−1, 1] × reward_scale (1, or 100 for official and
paper). The plain reward is Σ r / (tasks with a reward + skipped pairs): skipped pairs (official:
an empty or truncated response) add 0 to the sum but stay in the denominator, as the official
tables do; dropped tasks (paper: a failed verdict) and unparsed ones are out of both. Tag-group
means use the judged tasks only, each task in every group it counts in; task-macro as
wb_aggregate.task_macro. Outcome counts: win_much r = 1, win 0 < r < 1, tie r = 0, lose −1 < r < 0,
lose_much r = −1. Two win rates: ties counted half (the project's, with SE and intervals) and
wins / n (the paper's "win_rate").

WB-Score (`score_summary`): (S − 5) × 2 × score_scale (1, or 10 for official) per task; groups and
task-macro leave out skipped tasks (official: empty placeholder or truncated response).

Checklist (`checklist_summary`): the win rate over scored tasks only; tasks without a checklist,
without comparable items, or incomplete are counted by status and left out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any, Sequence

from eval import stats
from eval import wb_aggregate as agg
from eval.wb_judge import ChecklistTask, RewardTask, ScoreTask
from eval.wb_protocol import WBProtocol


def outcome_counts(rewards: Sequence[float]) -> dict[str, int]:
    """The five official outcome buckets of per-task rewards in [−1, 1]."""
    return {"win_much": sum(r >= 1 for r in rewards), "win": sum(0 < r < 1 for r in rewards),
            "tie": sum(r == 0 for r in rewards), "lose": sum(-1 < r < 0 for r in rewards),
            "lose_much": sum(r <= -1 for r in rewards)}


def plain_reward(rewards: Sequence[float], n_skipped: int) -> float | None:
    """Σ rewards / (len(rewards) + n_skipped); None when the denominator is 0."""
    total = len(rewards) + n_skipped
    return sum(rewards) / total if total else None


def wins_over_n(outcomes: Sequence[float]) -> float | None:
    """The paper's win rate: wins ÷ n (ties count as not won); None without tasks."""
    return sum(o == stats.WIN for o in outcomes) / len(outcomes) if outcomes else None


def reward_summary(tasks: Sequence[RewardTask], proto: WBProtocol, level: float, n_boot: int,
                   seed: int) -> dict[str, Any]:
    """Aggregates of WB-Reward tasks under `proto` (see the module docstring)."""
    scored = [t for t in tasks if t.reward is not None]
    n_skipped = sum(t.rule == "skipped" for t in tasks)
    rewards = [t.reward for t in scored]
    scale = proto.reward_scale
    values = [r * scale for r in rewards] + [0.0] * n_skipped
    groups = agg.group_means([(t.groups, t.reward * scale) for t in scored])
    outcomes = [stats.outcome(r, 0.0) for r in rewards]
    calls = [c for t in tasks for c in t.calls]
    return {
        "protocol": proto.name, "units": f"reward x {scale:g}",
        "n_tasks": len(tasks), "n_scored": len(scored),
        "n_unscored": sum(t.reward is None and t.rule == "judge" for t in tasks),
        "n_empty_rule": sum(t.rule == "empty" for t in tasks), "n_skipped": n_skipped,
        "n_dropped": sum(t.rule == "dropped" for t in tasks),
        "reward": (lambda p: None if p is None else p * scale)(plain_reward(rewards, n_skipped)),
        "mean": stats.summarize_mean(values, level, n_boot, seed).as_dict(),
        "task_macro": agg.task_macro(groups, proto.macro_over_all_weights),
        "groups": [asdict(g) for g in groups],
        "outcomes": outcome_counts(rewards),
        "win_rate": stats.summarize_win_rate(outcomes, level, n_boot, seed).as_dict(),
        "wins_over_n": wins_over_n(outcomes),
        "labels": dict(Counter(c.label or "unparsed" for c in calls)),
        "parse": dict(Counter(c.how for c in calls)),
        "length_penalised": sum(c.penalised for c in calls),
    }


def checklist_summary(tasks: Sequence[ChecklistTask], how: Counter, proto: WBProtocol,
                      level: float, n_boot: int, seed: int) -> dict[str, Any]:
    """Checklist win rate over scored tasks (ties half, tie-adjusted SE, and wins ÷ n), mean
    satisfied fractions over the compared items, counts of tasks and items left out, parse counts."""
    scored = [t for t in tasks if t.outcome is not None]
    outcomes = [t.outcome for t in scored]
    status = Counter(t.status for t in tasks)
    compared = [(t, t.n_items - t.left_out_items) for t in scored]
    return {
        "protocol": proto.name, "n_tasks": len(tasks), "n_scored": len(scored),
        "n_without_checklist": status["no_checklist"],
        "n_no_comparable_items": status["no_comparable_items"],
        "n_incomplete": status["incomplete"], "incomplete": status["incomplete"] > 0,
        "left_out_items": sum(t.left_out_items for t in tasks),
        "win_rate": stats.summarize_win_rate(outcomes, level, n_boot, seed).as_dict(),
        "wins_over_n": wins_over_n(outcomes),
        "test_satisfied_fraction": _mean([t.test_satisfied / n for t, n in compared if n]),
        "ref_satisfied_fraction": _mean([t.ref_satisfied / n for t, n in compared if n]),
        "groups": [asdict(g) for g in agg.group_means([(t.groups, t.outcome) for t in scored])],
        "parse": dict(how),
    }


def score_summary(tasks: Sequence[ScoreTask], how: Counter, proto: WBProtocol, level: float,
                  n_boot: int, seed: int) -> dict[str, Any]:
    """WB-Score of one model under `proto`: mean with CI, tag groups, task-macro, parse counts."""
    scale = proto.score_scale
    scored = [t for t in tasks if t.rescaled is not None]
    grouped = [(t.groups, t.rescaled * scale) for t in scored if not t.skipped]
    groups = agg.group_means(grouped)
    return {
        "protocol": proto.name, "units": f"(S - 5) x 2 x {scale:g}",
        "n_tasks": len(tasks), "n_scored": len(scored), "n_unscored": len(tasks) - len(scored),
        "n_skipped_in_groups": sum(t.skipped for t in scored),
        "mean": stats.summarize_mean([t.rescaled * scale for t in scored], level, n_boot,
                                     seed).as_dict(),
        "task_macro": agg.task_macro(groups, proto.macro_over_all_weights),
        "groups": [asdict(g) for g in groups], "parse": dict(how),
    }


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
