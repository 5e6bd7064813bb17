"""Weighted sums of rewards and build_reward from config mappings."""

from __future__ import annotations

import math

import pytest

from corpora.types import Episode, Message, Task
from rewards.base import RewardResult
from rewards.rules import RuleReward
from rewards.weighted import WeightedReward, build_reward, weighted_sum
from foundation.registry import UnknownNameError


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
    assert results[0].details["components"]["a"] == {"value": 0.5, "weight": 0.8, "details": {"why": "a"},
                                                     "excluded": False}
    assert not any(r.excluded for r in results)


class SometimesUnmeasured:
    """Scores 0.4, except the episodes whose first user turn is "fail", which it cannot measure."""

    name = "judge"

    def score(self, episodes):
        return [RewardResult(0.0, {"fallback_used": True}, excluded=True) if e.messages[0].content == "fail"
                else RewardResult(0.4) for e in episodes]


def test_an_unmeasured_component_excludes_the_episode():
    reward = WeightedReward([("judge", SometimesUnmeasured(), 0.5), ("c", Constant("c", 1.0), 0.5)])
    ok, failed = reward.score([episode("fine"), episode("fail")])
    assert not ok.excluded and ok.value == pytest.approx(0.7)
    assert failed.excluded and failed.details["components"]["judge"]["excluded"] is True


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


def test_attach_result_leaves_excluded_episodes_unscored():
    from rewards.base import attach_result

    kept, dropped, zero = episode("a"), episode("b"), episode("c")
    assert attach_result(kept, RewardResult(0.7, {"k": 1})) == 0.7 and kept.reward == 0.7
    assert attach_result(dropped, RewardResult(0.25, {"k": 2}, excluded=True)) is None
    assert dropped.reward is None and dropped.reward_details == {"k": 2, "excluded": True}
    # the `zero` failure policy: every judge failed, scored 0.0, still a reward
    assert attach_result(zero, RewardResult(0.0, {"fallback_used": True})) == 0.0
