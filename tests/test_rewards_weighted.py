"""Weighted sums of rewards and build_reward from config mappings."""

from __future__ import annotations

import math

import pytest

from corpora.types import Episode, Message, Task
from rewards.base import RewardResult
from rewards.rules import RuleReward
from rewards.weighted import WeightedReward, build_reward, weighted_sum
from wildsim.registry import UnknownNameError


class Constant:
    def __init__(self, name, value):
        self.name, self.value = name, value
        self.calls = 0

    def score(self, episodes):
        self.calls += 1
        return [RewardResult(self.value, {"why": self.name}) for _ in episodes]


def episode(*turns):
    roles = ["user", "assistant"]
    return Episode(task=Task("t", "i"), simulator="s",
                   messages=[Message(roles[i % 2], t) for i, t in enumerate(turns)])


def test_weighted_sum_by_hand():
    assert weighted_sum([(0.8, 0.5), (0.2, 1.0)]) == pytest.approx(0.6)
    assert weighted_sum([]) == 0.0


def test_weighted_reward_keeps_every_component():
    a, b = Constant("a", 0.5), Constant("b", 1.0)
    reward = WeightedReward([("a", a, 0.8), ("b", b, 0.2)])
    results = reward.score([episode("x"), episode("y")])
    assert [r.value for r in results] == pytest.approx([0.6, 0.6])
    assert a.calls == 1 and b.calls == 1  # each component scores the batch once
    assert results[0].details["components"]["a"] == {"value": 0.5, "weight": 0.8, "details": {"why": "a"}}


def test_duplicate_component_names_are_refused():
    with pytest.raises(ValueError, match="names must differ"):
        WeightedReward([("a", Constant("a", 0), 1.0), ("a", Constant("a", 1), 1.0)])


def test_build_reward_from_config_by_hand():
    config = {"kind": "weighted", "components": [
        {"weight": 0.5, "kind": "rule", "rule": "asks_question"},
        {"weight": 2.0, "kind": "rule", "rule": "length_band", "lo": 1, "hi": 3, "width": 2.0, "name": "len"},
    ]}
    reward = build_reward(config)
    assert [name for name, _, _ in reward.components] == ["asks_question", "len"]
    ep = episode("hi", "Is this ok?", "sure", "a b c d e")
    (result,) = reward.score([ep])
    band = (1.0 + math.exp(-((5 - 3) / 2.0) ** 2)) / 2  # turns of 3 and 5 words
    assert result.value == pytest.approx(0.5 * 0.5 + 2.0 * band)
    assert isinstance(reward.components[1][1], RuleReward)


def test_build_reward_errors():
    with pytest.raises(UnknownNameError, match="Did you mean 'judge'.*Known: judge, multiturn, rule, weighted"):
        build_reward({"kind": "jduge"})
    with pytest.raises(ValueError, match="mapping with a kind"):
        build_reward({"rule": "asks_question"})
    with pytest.raises(ValueError, match=r"components\[0\] needs a weight"):
        build_reward({"kind": "weighted", "components": [{"kind": "rule", "rule": "asks_question"}]})


def test_describe_reward_names_kind_and_settings():
    from rewards import describe_reward

    assert describe_reward({"kind": "rule", "rule": "length_band", "lo": 3, "hi": 12}) == \
        "length_band rule (lo=3, hi=12)"
    assert describe_reward({"kind": "rule", "rule": "user_thanks"}) == "user_thanks rule"
    assert describe_reward({"kind": "judge", "judges": ["a", "b"], "max_tokens": 96}) == \
        "LLM judge (2 judges)"
    weighted = {"kind": "weighted", "components": [
        {"weight": 0.8, "kind": "judge", "judges": ["openai:http://h:8000/v1#j"]},
        {"weight": 0.2, "kind": "rule", "rule": "length_band", "lo": 20, "hi": 150, "name": "len"}]}
    assert describe_reward(weighted) == \
        "0.8 × LLM judge (1 judge) + 0.2 × length_band rule (lo=20, hi=150)"
