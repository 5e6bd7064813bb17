"""WildBench scoring rules as pure functions: WB-Reward labels, the length penalty, both-order
averaging, the empty-response rule, checklist majorities, WB-Score rescaling, and the task-macro
average over the five tag groups (reference/formats.md).

Tag groups. Under the `wildsim` and `paper` protocols a task belongs to exactly one group, chosen
by its `primary_tag`; under `official` it counts in the group of its primary tag and of every
secondary tag, deduplicated per task (`task_groups`). Creative Tasks ← Creative Writing, Editing, Brainstorming, Role playing, Others;
Planning & Reasoning ← Planning, Reasoning; Math & Data Analysis ← Math, Data Analysis;
Information/Advice seeking ← Information seeking, Advice seeking; Coding & Debugging ← Coding &
Debugging. Matching ignores case; an unknown tag goes to Creative Tasks (as "Others") and is
counted by `tag_group_counts` so reports show it. The task-macro average is
Σ_g w_g·mean_g / Σ_g w_g over the groups that have at least one scored task, or, as the official
tables compute it, Σ_g w_g·mean_g / 4.75 (the sum of all five weights) whether or not a group is
present.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

GROUP_WEIGHTS: dict[str, float] = {
    "Creative Tasks": 0.5,
    "Planning & Reasoning": 1.25,
    "Math & Data Analysis": 1.0,
    "Information/Advice seeking": 0.75,
    "Coding & Debugging": 1.25,
}
PRIMARY_TAG_GROUP: dict[str, str] = {
    "creative writing": "Creative Tasks",
    "editing": "Creative Tasks",
    "brainstorming": "Creative Tasks",
    "role playing": "Creative Tasks",
    "others": "Creative Tasks",
    "planning": "Planning & Reasoning",
    "reasoning": "Planning & Reasoning",
    "math": "Math & Data Analysis",
    "data analysis": "Math & Data Analysis",
    "information seeking": "Information/Advice seeking",
    "advice seeking": "Information/Advice seeking",
    "coding & debugging": "Coding & Debugging",
}
FALLBACK_GROUP = "Creative Tasks"

#: Reward of the response shown as "A" for each label (the response shown as "B" gets minus it).
LABEL_REWARD: dict[str, float] = {"A++": 1.0, "A+": 0.5, "A=B": 0.0, "B+": -0.5, "B++": -1.0}


def tag_group(primary_tag: str | None) -> str:
    """The tag group of a task's primary tag (unknown or missing → Creative Tasks)."""
    return PRIMARY_TAG_GROUP.get((primary_tag or "").strip().lower(), FALLBACK_GROUP)


def is_known_tag(primary_tag: str | None) -> bool:
    return (primary_tag or "").strip().lower() in PRIMARY_TAG_GROUP


def length_penalised(label: str, len_a: int, len_b: int, k: int) -> str:
    """Apply the length penalty K to a label in the order shown: a slight win ("A+" / "B+")
    becomes "A=B" when the winner's response is more than K characters longer than the loser's.
    K = −1 (any negative K) disables the rule; clear wins are never changed."""
    if k < 0:
        return label
    if label == "A+" and len_a - len_b > k:
        return "A=B"
    if label == "B+" and len_b - len_a > k:
        return "A=B"
    return label


def reward_for_test(label: str, test_shown_as_a: bool, len_a: int, len_b: int, k: int) -> float:
    """The reward for the model under test from one verdict.

    label:           the judge's label in the order it saw (A = the response shown first)
    test_shown_as_a: whether the model under test was shown as A (False: the swapped order)
    len_a, len_b:    character lengths of the responses shown as A and as B
    The length penalty is applied in the shown order, then the label's reward is mapped back:
    in the swapped order "A++" means the reference was much better, i.e. −1 for the test model.
    """
    reward = LABEL_REWARD[length_penalised(label, len_a, len_b, k)]
    return reward if test_shown_as_a else -reward


def empty_rule(test_response: str, ref_response: str) -> float | None:
    """The reward fixed without a judge: an empty (or whitespace-only) response loses (−1 for an
    empty test response, +1 for an empty reference), both empty is a tie (0); None when both
    responses have text and the judge must decide."""
    test_empty, ref_empty = not test_response.strip(), not ref_response.strip()
    if test_empty and ref_empty:
        return 0.0
    if test_empty:
        return -1.0
    if ref_empty:
        return 1.0
    return None


def mean_or_none(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None (unparsed verdicts); None when there are none."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def item_majority(votes: Sequence[bool | None]) -> bool | None:
    """Majority over judges for one checklist item: satisfied only with a strict majority of the
    judges that answered; a tie (possible with an even number of judges) counts as not
    satisfied; None when no judge answered."""
    yes = sum(v is True for v in votes)
    no = sum(v is False for v in votes)
    if yes + no == 0:
        return None
    return yes > no


def item_two_of_three(votes: Sequence[bool | None]) -> bool | None:
    """The paper's majority for one item: satisfied when at least 2 of exactly 3 judges say so;
    None (incomplete) when any of the three gave no verdict."""
    if len(votes) != 3:
        raise ValueError(f"the 2-of-3 majority needs exactly 3 judges, got {len(votes)}")
    if any(v is None for v in votes):
        return None
    return sum(v is True for v in votes) >= 2


def compare_items(test: Sequence[Sequence[bool | None]], ref: Sequence[Sequence[bool | None]],
                  two_of_three: bool = False) -> tuple[int, int, int]:
    """(items the test response satisfies, items the reference satisfies, items left out) from
    per-judge item verdicts (rows: judges, columns: items) of both sides. An item whose majority
    is undecided on either side (no verdict) is left out of BOTH counts, so a failed reply tilts
    against neither side."""
    majority = item_two_of_three if two_of_three else item_majority
    n_items = len(test[0]) if test else 0
    t_sat = r_sat = left_out = 0
    for i in range(n_items):
        t, r = majority([row[i] for row in test]), majority([row[i] for row in ref])
        if t is None or r is None:
            left_out += 1
            continue
        t_sat, r_sat = t_sat + t, r_sat + r
    return t_sat, r_sat, left_out


def rescale_score(score: float) -> float:
    """WB-Score rescaling of a 1–10 score: (S − 5) × 2, so 1 → −8, 5 → 0, 10 → 10."""
    return (score - 5.0) * 2.0


@dataclass(frozen=True)
class GroupMean:
    """Mean of a per-task value over the tasks of one tag group."""

    group: str
    weight: float
    n: int
    mean: float


def task_groups(primary_tag: str | None, secondary_tags: Sequence[str] = (),
                all_tags: bool = False) -> tuple[str, ...]:
    """The groups a task counts in: its primary tag's group, plus (all_tags) the groups of its
    secondary tags, each group once, in GROUP_WEIGHTS order."""
    tags = [primary_tag, *secondary_tags] if all_tags else [primary_tag]
    found = {tag_group(t) for t in tags}
    return tuple(g for g in GROUP_WEIGHTS if g in found)


def group_means(values: Sequence[tuple[str | Sequence[str], float]]) -> list[GroupMean]:
    """Per-group means from (group or groups, value) pairs, in GROUP_WEIGHTS order; a value given
    several groups counts once in each; empty groups left out."""
    out = []
    for group, weight in GROUP_WEIGHTS.items():
        vals = [v for g, v in values if (g == group if isinstance(g, str) else group in g)]
        if vals:
            out.append(GroupMean(group, weight, len(vals), sum(vals) / len(vals)))
    return out


def task_macro(means: Sequence[GroupMean], over_all_weights: bool = False) -> float | None:
    """Σ w_g·mean_g / Σ w_g over the groups present, or / Σ of all five weights (4.75) when
    `over_all_weights` (the official tables); None when no group has a value."""
    if not means:
        return None
    total = sum(GROUP_WEIGHTS.values()) if over_all_weights else sum(m.weight for m in means)
    return sum(m.weight * m.mean for m in means) / total


def tag_group_counts(primary_tags: Iterable[str | None]) -> dict[str, int]:
    """How many tasks fall in each group, plus "unknown tag" for tags mapped by the fallback."""
    counts: dict[str, int] = {g: 0 for g in GROUP_WEIGHTS}
    counts["unknown tag"] = 0
    for tag in primary_tags:
        counts[tag_group(tag)] += 1
        counts["unknown tag"] += 0 if is_known_tag(tag) else 1
    return counts
