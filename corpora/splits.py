"""User-disjoint train/validation/test split, stratified by country (reference/methods.md A).

A user is its hashed_ip alone (WildChatConversation.user_key): an IP seen in two countries is one
user, so all its conversations land in one split. Each user is stratified by its most frequent
country (corpora.prepare.KeptUsers.home_countries). Users are grouped by that country; countries are visited in sorted order, and within a
country the users (sorted, then shuffled with a generator seeded by "seed:country") are cut into
validation, test and train. How many go to validation and test is decided by running totals over
the countries, so that each country gets its share to within one user and the global counts
match the fractions to within one user. Users in `forced_test` (e.g. the authors of WildBench
sessions) go to test regardless and are not counted in the stratified shares.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Iterable, Mapping

SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.89, 0.05, 0.06)
DEFAULT_SEED = 42


def check_fractions(fractions: tuple[float, float, float]) -> None:
    """ValueError unless there are three non-negative fractions summing to 1."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"split fractions {fractions} must be three non-negative numbers "
                         f"(train, validation, test) summing to 1, e.g. 0.89 0.05 0.06")


def assign_users(users: Mapping[str, str | None],
                 fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
                 seed: int = DEFAULT_SEED,
                 forced_test: Iterable[str] = ()) -> dict[str, str]:
    """Map each user key to "train", "validation" or "test".

    users:       user key -> country (None or "" for unknown; they form one stratum)
    fractions:   (train, validation, test) shares of the users not forced into test
    forced_test: user keys that must be in test
    """
    check_fractions(fractions)
    forced = set(forced_test) & set(users)
    by_country: dict[str, list[str]] = defaultdict(list)
    for key, country in users.items():
        if key not in forced:
            by_country[country or ""].append(key)
    split_of = {key: "test" for key in forced}
    expected_val = expected_test = 0.0
    given_val = given_test = 0
    for country in sorted(by_country):
        keys = sorted(by_country[country])
        random.Random(f"{seed}:{country}").shuffle(keys)
        expected_val += len(keys) * fractions[1]
        expected_test += len(keys) * fractions[2]
        n_val = min(len(keys), max(0, round(expected_val) - given_val))
        n_test = min(len(keys) - n_val, max(0, round(expected_test) - given_test))
        given_val += n_val
        given_test += n_test
        for position, key in enumerate(keys):
            split_of[key] = ("validation" if position < n_val else
                             "test" if position < n_val + n_test else "train")
    return split_of


def split_counts(split_of: Mapping[str, str]) -> dict[str, int]:
    """How many keys each split holds (all three splits listed)."""
    counts = {name: 0 for name in SPLITS}
    for name in split_of.values():
        counts[name] += 1
    return counts
