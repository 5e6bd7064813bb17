"""The user-disjoint, country-stratified split: fractions per country, determinism, forcing."""

import pytest

from corpora.splits import SPLITS, assign_users, split_counts


def users(per_country):
    return {f"ip{c}{i}|{c}": c for c, n in per_country.items() for i in range(n)}


def test_every_user_gets_exactly_one_split():
    pool = users({"US": 300, "IN": 120, "DE": 7})
    split_of = assign_users(pool)
    assert set(split_of) == set(pool) and set(split_of.values()) <= set(SPLITS)


def test_each_country_is_split_by_the_fractions():
    pool = users({"US": 1000, "IN": 400, "BR": 200})
    split_of = assign_users(pool, (0.89, 0.05, 0.06), seed=42)
    for country, n in (("US", 1000), ("IN", 400), ("BR", 200)):
        counts = split_counts({k: v for k, v in split_of.items() if k.endswith("|" + country)})
        assert abs(counts["validation"] - 0.05 * n) <= 1
        assert abs(counts["test"] - 0.06 * n) <= 1
        assert counts["train"] + counts["validation"] + counts["test"] == n


def test_small_countries_share_validation_and_test_through_running_totals():
    pool = users({f"C{i:02d}": 3 for i in range(40)})  # 120 users, 3 per country
    counts = split_counts(assign_users(pool))
    assert counts == {"train": 107, "validation": 6, "test": 7}  # 0.05*120=6, 0.06*120=7.2


def test_same_seed_same_split_and_other_seed_differs():
    pool = users({"US": 200, "IN": 100})
    assert assign_users(pool, seed=42) == assign_users(dict(reversed(list(pool.items()))), seed=42)
    assert assign_users(pool, seed=42) != assign_users(pool, seed=7)


def test_forced_users_go_to_test_and_others_keep_their_shares():
    pool = users({"US": 100})
    forced = {"ipUS0|US", "ipUS1|US", "unknown-user"}
    split_of = assign_users(pool, forced_test=forced)
    assert split_of["ipUS0|US"] == split_of["ipUS1|US"] == "test"
    assert "unknown-user" not in split_of
    assert split_counts(split_of)["test"] == 2 + round(0.06 * 98)


def test_bad_fractions_are_rejected_with_a_fix():
    with pytest.raises(ValueError, match="summing to 1"):
        assign_users(users({"US": 3}), (0.9, 0.2, 0.1))
