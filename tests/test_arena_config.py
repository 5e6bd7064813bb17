"""The study config (help on every field, errors that say how to fix) and the seeded draws
(balanced pair assignment, per-turn sides)."""

from __future__ import annotations

from collections import Counter

import pytest

from arena.assignment import model_a_on_left, pair_for
from arena.config import StudyConfig
from foundation.config import ConfigError, iter_fields, parse_config

TWO = {"a": "openai:http://127.0.0.1:1/v1#a", "b": "openai:http://127.0.0.1:1/v1#b"}


def test_every_field_has_help_and_the_example_parses():
    assert all(f.metadata.get("help") for _, f, _ in iter_fields(StudyConfig))
    cfg = parse_config(StudyConfig, ["--config", "configs/arena/example.yaml"])
    assert cfg.pairs == [["finetuned-sim", "initial-sim"]]
    assert parse_config(StudyConfig, ["--config", "configs/arena/demo.yaml"]).pairs == [["base", "rl"]]


@pytest.mark.parametrize("changes, message", [
    ({"assistants": {"a": "x"}}, "name at least two"),
    ({"pairs": [["a", "c"]]}, "'c' is not an assistant; known: a, b"),
    ({"pairs": [["a", "a"]]}, "two different assistants"),
    ({"min_exchanges": 5, "max_exchanges": 3}, "min_exchanges"),
    ({"task_source": "/no/such/tasks.jsonl"}, "does not exist"),
    ({"rate_limit_per_minute": 0}, "must be positive"),
])
def test_bad_studies_are_refused_with_the_fix(changes, message):
    with pytest.raises(ConfigError, match=message):
        StudyConfig(**{"assistants": TWO, **changes})


def test_all_pairs_by_default_and_the_version_tracks_the_config():
    cfg = StudyConfig(assistants={**TWO, "c": "builtin:smollm2-135m-instruct"})
    assert cfg.pairs == [["a", "b"], ["a", "c"], ["b", "c"]]
    assert cfg.version != StudyConfig(assistants=TWO).version


def test_assignment_is_balanced_in_every_block_and_seeded():
    for n_pairs in (1, 2, 3, 5):
        picks = [pair_for(k, n_pairs, seed=3) for k in range(n_pairs * 7)]
        assert Counter(picks) == {i: 7 for i in range(n_pairs)}
        for block in range(7):  # each block is a permutation of the pairs
            assert sorted(picks[block * n_pairs:(block + 1) * n_pairs]) == list(range(n_pairs))
    assert [pair_for(k, 4, 1) for k in range(8)] != [pair_for(k, 4, 2) for k in range(8)]


def test_sides_are_drawn_per_turn_and_reproducible():
    sides = [model_a_on_left(0, "tok", "study", i) for i in range(200)]
    assert 70 < sum(sides) < 130  # a fair coin, not a fixed side
    assert sides == [model_a_on_left(0, "tok", "study", i) for i in range(200)]
