"""Rule rewards on hand-built episodes, against hand-computed values."""

from __future__ import annotations

import math

import pytest

from corpora.types import Episode, Message, Task
from rewards.base import REWARD_KINDS
from rewards.rules import RuleReward, asks_question, band_score, length_band, user_thanks
from foundation.registry import UnknownNameError


def episode(*turns: str) -> Episode:
    """Alternating user / assistant turns, starting with the user."""
    roles = ["user", "assistant"]
    msgs = [Message(roles[i % 2], t) for i, t in enumerate(turns)]
    return Episode(task=Task("t", "intent"), simulator="s", messages=msgs)


def words(n: int) -> str:
    return " ".join(["w"] * n)


def test_band_score_by_hand():
    assert band_score(25, 20, 30, 5) == 1.0
    assert band_score(20, 20, 30, 5) == 1.0 and band_score(30, 20, 30, 5) == 1.0
    assert band_score(10, 20, 30, 5) == pytest.approx(math.exp(-4))
    assert band_score(35, 20, 30, 5) == pytest.approx(math.exp(-1))
    # smooth: a near miss keeps almost all of the reward
    assert band_score(31, 20, 30, 5) == pytest.approx(math.exp(-0.04))


def test_length_band_averages_over_assistant_turns():
    ep = episode("hi", words(25), "more", words(10))
    assert length_band(ep, lo=20, hi=30, width=5) == pytest.approx((1 + math.exp(-4)) / 2)
    assert length_band(ep, lo=20, hi=30) == pytest.approx((1 + math.exp(-4)) / 2)  # width (30-20)/2
    assert length_band(episode("only the user")) == 0.0
    with pytest.raises(ValueError, match="lo <= hi"):
        length_band(ep, lo=30, hi=20)


def test_asks_question_is_the_fraction_of_assistant_turns():
    ep = episode("hi", "What do you need?", "a poem", "Here it is.", "thanks", "Anything else?")
    assert asks_question(ep) == pytest.approx(2 / 3)
    assert asks_question(episode("hi")) == 0.0


def test_user_thanks_ignores_the_opening():
    assert user_thanks(episode("thanks in advance!", "ok")) == 0.0
    assert user_thanks(episode("hi", "ok", "Thank you, that works")) == 1.0
    assert user_thanks(episode("hi", "ok", "thx")) == 1.0
    assert user_thanks(episode("hi", "ok", "that is wrong")) == 0.0


def test_rule_reward_wraps_a_rule_with_its_parameters():
    assert REWARD_KINDS.get("rule") is RuleReward
    reward = RuleReward("length_band", lo=20, hi=30, width=5.0)
    (result,) = reward.score([episode("hi", words(10))])
    assert result.value == pytest.approx(math.exp(-4))
    assert result.details == {"rule": "length_band", "lo": 20, "hi": 30, "width": 5.0}
    assert reward.name == "length_band"


def test_rule_reward_errors_name_the_fix():
    with pytest.raises(ValueError, match="unknown parameter.*'high'.*accepted: lo, hi, width"):
        RuleReward("length_band", high=3)
    with pytest.raises(UnknownNameError, match="Did you mean 'asks_question'"):
        RuleReward("ask_question")
