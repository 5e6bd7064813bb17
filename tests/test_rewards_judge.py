"""The LLM-judge reward: verdict parsing on broken replies, aggregation by hand, batching."""

from __future__ import annotations

import math

import pytest

from corpora.types import Episode, Message, Task
from engines.constrained import fit_schema
from rewards.base import REWARD_KINDS
from rewards.judge import (VERDICT_SCHEMA, JudgeReward, Verdict, aggregate, coerce_score,
                           judge_prompt, parse_verdict)
from rewards.weighted import build_reward

INTENT = "You are a user chatting with an assistant language model to plan a 3-day trip to Lisbon."
MESSAGES = [Message("user", "help me plan lisbon"), Message("assistant", "Day 1: Alfama. Day 2: Belém."),
            Message("user", "and day 3?"), Message("assistant", "Sintra.")]


class ScriptedJudge:
    def __init__(self, replies, name=None):
        self.replies = replies  # one reply per conversation, cycled
        self.calls = []
        if name:
            self.name = name

    def chat(self, conversations, sampling):
        self.calls.append((list(conversations), sampling))
        return [self.replies[i % len(self.replies)] for i in range(len(conversations))]


@pytest.mark.parametrize("text, score, method", [
    ('{"rationale": "good", "score": 8}', 8.0, "json"),
    ('{"rationale": "good", "score": 8} I hope this verdict helps.', 8.0, "json"),
    ('Here is my verdict:\n```json\n{"rationale": "good", "score": 8}\n```', 8.0, "json"),
    ("{'rationale': 'good', 'score': 8}", 8.0, "json"),
    ('{"rationale": "good", "score": "7/10"}', 7.0, "json"),
    ('{"rationale": "good", "score": "7.5"}', 7.5, "json"),
    ('{"rationale": "good", "score": "3/5"}', 6.0, "json"),
    ('{"rationale": "good", "score": 8,}', 8.0, "json"),
    ("Rationale: good\nScore: 9 out of 10", 9.0, "field"),
    ('{"rationale": "the answer was thorough and correct", "score": 6', 6.0, "field"),
])
def test_parse_verdict_reads_broken_json(text, score, method):
    verdict = parse_verdict(text)
    assert (verdict.score, verdict.method, verdict.error) == (score, method, None)
    assert verdict.rationale.startswith(("good", "the answer"))


@pytest.mark.parametrize("text, error", [
    ('{"rationale": "great", "score": 11}', "outside 0-10"),
    ('{"rationale": "awful", "score": -1}', "outside 0-10"),
    ('{"rationale": "no number given"}', "no score"),
    ('{"rationale": "x", "score": "excellent"}', "not a number"),
    ('{"rationale": "x", "score": true}', "not a number"),
    ('{"rationale": "x", "score": null}', "not a number"),
    ("", "no score"),
    ("I cannot judge this.", "no score"),
])
def test_parse_verdict_failures_have_no_score_and_say_why(text, error):
    verdict = parse_verdict(text)
    assert verdict.score is None and error in verdict.error


def test_a_failed_verdict_keeps_its_rationale():
    assert parse_verdict('{"rationale": "no number given"}').rationale == "no number given"


def test_coerce_score():
    assert coerce_score(0) == (0.0, None) and coerce_score(10) == (10.0, None)
    assert coerce_score("8 / 10") == (8.0, None)
    assert coerce_score(10.5)[0] is None


def test_aggregate_by_hand():
    assert aggregate([Verdict(6.0), Verdict(9.0)]) == (0.75, 7.5, 2)
    assert aggregate([Verdict(6.0), Verdict(None, error="x")]) == (0.6, 6.0, 1)
    assert aggregate([Verdict(None), Verdict(None)]) == (0.0, None, 0)
    assert aggregate([Verdict(None)], fallback=0.5) == (0.5, None, 0)


def test_prompt_holds_intent_and_the_whole_conversation():
    system, user = judge_prompt(INTENT, MESSAGES)
    assert system.role == "system" and "0 to 10" in system.content and '"score"' in system.content
    assert INTENT in user.content
    positions = [user.content.index(m.content) for m in MESSAGES]
    assert positions == sorted(positions)
    assert "[USER]" in user.content and "[ASSISTANT]" in user.content
    long = judge_prompt(INTENT, [Message("user", "w " * 50)], max_words=10)[1].content
    assert "[…]" in long


def test_two_judges_one_call_each_and_the_mean():
    a = ScriptedJudge(['{"rationale": "fine", "score": 6}'], name="judge-a")
    b = ScriptedJudge(['{"rationale": "great", "score": 9}', "garbage"])
    reward = JudgeReward([a, b])
    eps = [Episode(task=Task(f"t{i}", INTENT), simulator="s", messages=list(MESSAGES)) for i in range(2)]
    first, second = reward.score(eps)
    assert len(a.calls) == 1 and len(b.calls) == 1 and len(a.calls[0][0]) == 2
    sampling = a.calls[0][1]
    assert sampling.temperature == 0.0 and sampling.json_schema == fit_schema(VERDICT_SCHEMA, sampling.max_tokens)
    assert math.isclose(first.value, 0.75)
    assert first.details["valid_judges"] == 2 and first.details["parse_failures"] == 0
    assert [j["judge"] for j in first.details["judges"]] == ["judge-a", "judge1"]
    assert [j["rationale"] for j in first.details["judges"]] == ["fine", "great"]
    assert math.isclose(second.value, 0.6)  # the second judge's verdict did not parse
    assert second.details["parse_failures"] == 1 and second.details["judges"][1]["raw"] == "garbage"
    assert reward.metrics()["judge/parse_failures"] == 1.0


def test_all_judges_failing_is_excluded_by_default_and_reported():
    reward = JudgeReward([ScriptedJudge(["nope"]), ScriptedJudge(['{"score": 12}'])], fallback=0.25)
    result = reward.score_conversation(INTENT, MESSAGES)
    assert result.excluded is True and result.value == 0.25          # a placeholder only
    assert result.details["valid_judges"] == 0 and result.details["parse_failures"] == 2
    assert result.details["excluded"] is True and result.details["mean_score"] is None
    assert "placeholder" in result.details["note"]
    assert reward.stats.all_failed == 1 and reward.metrics()["judge/parse_failure_rate"] == 1.0
    assert reward.metrics()["judge/excluded"] == 1.0


def test_zero_policy_scores_a_failed_judge_zero_and_averages_it_in():
    judges = [ScriptedJudge(['{"score": 8}']), ScriptedJudge(["nope"])]
    result = JudgeReward(judges, failure_policy="zero").score_conversation(INTENT, MESSAGES)
    assert result.excluded is False and math.isclose(result.value, 0.4)   # (8 + 0) / 2 / 10
    assert aggregate([Verdict(8.0), Verdict(None)], failure_policy="zero") == (0.4, 4.0, 1)
    reward = JudgeReward([ScriptedJudge(["nope"])], failure_policy="zero")
    result = reward.score_conversation(INTENT, MESSAGES)
    assert (result.value, result.excluded) == (0.0, False)
    assert result.details["fallback_used"] is True and result.details["excluded"] is False
    assert reward.metrics()["judge/all_failed"] == 1.0 and reward.metrics()["judge/excluded"] == 0.0
    with pytest.raises(ValueError, match="failure_policy"):
        JudgeReward(judges, failure_policy="skip")


class FlakyJudge(ScriptedJudge):
    """Fails with structured output; answers in free text when no schema is asked."""

    def chat(self, conversations, sampling):
        self.calls.append((list(conversations), sampling))
        reply = "Thought: fine.\nScore: 7" if sampling.json_schema is None else "..."
        return [reply] * len(conversations)


def test_paper_protocol_prompt_retries_and_end_utterance():
    from corpora.types import END_USER

    judge = FlakyJudge([])
    reward = JudgeReward([judge], protocol="paper")
    ended = Episode(task=Task("t", INTENT), simulator="s", end_reason=END_USER,
                    messages=[*MESSAGES, Message("user", "thanks, bye <|endconversation|>")])
    [result] = reward.score([ended])
    [prompt] = judge.calls[0][0][0]                      # one user message, no system prompt
    assert prompt.role == "user" and INTENT in prompt.content
    assert "USER: help me plan lisbon" in prompt.content and "ASSISTANT: Sintra." in prompt.content
    assert "endconversation" not in prompt.content       # the end-signal utterance is dropped
    for word in ("Alignment", "Usefulness", "Clarity", '"thought"'):
        assert word in prompt.content
    assert judge.calls[0][1].json_schema["required"] == ["thought", "score"]
    assert len(judge.calls) == 2 and judge.calls[1][1].json_schema is None   # then free text
    assert math.isclose(result.value, 0.7) and result.details["judges"][0]["tries"] == 2
    assert reward.metrics()["judge/retries"] == 1.0
    dead = JudgeReward([ScriptedJudge(["no"])], protocol="paper")
    assert dead.score_conversation(INTENT, MESSAGES).value == 0.0     # zero policy, 8 tries
    assert dead.stats.retries == 7 and dead.tries == 8


def test_registered_and_built_from_config():
    assert REWARD_KINDS.get("judge") is JudgeReward
    built = []

    def loader(spec, **options):
        built.append((spec, options))
        return ScriptedJudge(['{"rationale": "ok", "score": 5}'])

    reward = build_reward({"kind": "judge", "judges": ["openai:http://a/v1#m1", "openai:http://b/v1#m2"],
                           "fallback": 0.1, "max_tokens": 64, "engine_options": {"timeout": 5}},
                          engine_loader=loader)
    assert [s for s, _ in built] == ["openai:http://a/v1#m1", "openai:http://b/v1#m2"]
    assert built[0][1] == {"timeout": 5}
    assert reward.fallback == 0.1 and reward.sampling.max_tokens == 64
    assert reward.judge_names == ["openai:http://a/v1#m1", "openai:http://b/v1#m2"]
    assert reward.score_conversation(INTENT, MESSAGES).value == 0.5
    with pytest.raises(ValueError, match="judges:"):
        build_reward({"kind": "judge"})
