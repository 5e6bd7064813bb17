"""Seeded draws of the study: which pair a participant compares (balanced blocks), which side
each assistant sits on every turn, which reply continues a tie, which task a participant gets.

Balanced assignment: participant number k (0, 1, 2, … in order of arrival) falls in block
k // P of P = len(pairs) participants; each block is a seeded permutation of the P pairs, so
after every complete block each pair has the same number of participants, and the order inside
a block is not predictable without the seed. Every draw is a function of (seed, names), so a
restarted server draws the same sides for a turn it shows again.
"""

from __future__ import annotations

import random


def pair_for(number: int, n_pairs: int, seed: int) -> int:
    """Pair index of the `number`-th participant (0-based): a seeded permutation per block."""
    if n_pairs < 1 or number < 0:
        raise ValueError(f"need n_pairs >= 1 and number >= 0, got {n_pairs}, {number}")
    block, position = divmod(number, n_pairs)
    order = random.Random(f"pairs:{seed}:{block}").sample(range(n_pairs), n_pairs)
    return order[position]


def model_a_on_left(seed: int, token: str, kind: str, index: int) -> bool:
    """Whether the pair's first-named model sits on the left for this turn (drawn per turn)."""
    return random.Random(f"sides:{seed}:{token}:{kind}:{index}").random() < 0.5


def tie_continues_left(seed: int, token: str, kind: str, index: int) -> bool:
    """Which reply continues the conversation after a tie or a both-bad vote (a fair coin)."""
    return random.Random(f"tie:{seed}:{token}:{kind}:{index}").random() < 0.5


def task_index(seed: int, number: int, n_tasks: int) -> int:
    """Index of the task shown to participant `number`."""
    return random.Random(f"task:{seed}:{number}").randrange(n_tasks)
