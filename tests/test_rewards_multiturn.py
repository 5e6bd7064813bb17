"""The multiturn-aware reward with a scripted simulator, assistant and judge: values by hand,
batching (one simulator and one assistant call per future turn), the prefix cache, exclusion, and
the config path (build_reward) with real tiny engines."""

from __future__ import annotations

import pytest

from corpora.types import Episode, Message, Task
from rewards.base import RewardResult
from rewards.multiturn import MultiturnReward
from simulators.base import UserTurn


class ScriptedSimulator:
    """Says "more" while the conversation has fewer than 2 user turns, then leaves silently."""

    name = "scripted"

    def __init__(self):
        self.batches: list[int] = []

    def reply(self, episodes):
        self.batches.append(len(episodes))
        return [UserTurn("", ends=True) if sum(m.role == "user" for m in ep.messages) >= 2
                else UserTurn("more") for ep in episodes]


class ScriptedAssistant:
    """Replies "ans <n>" (2 words), n = messages in the conversation; records seeds."""

    def __init__(self):
        self.batches: list[int] = []
        self.seeds: list[int | None] = []

    def chat(self, conversations, sampling):
        self.batches.append(len(conversations))
        self.seeds.append(sampling.seed)
        return [f"ans {len(c)}" for c in conversations]


class TurnsJudge:
    """Task reward: assistant turns / 10; unmeasurable (excluded) when the intent says so."""

    name = "turns"

    def __init__(self):
        self.calls = 0

    def score(self, episodes):
        self.calls += 1
        return [RewardResult(sum(m.role == "assistant" for m in ep.messages) / 10,
                             excluded="unmeasurable" in ep.task.intent) for ep in episodes]


def episode(intent="goal", end="turn_cap", final_user=None) -> Episode:
    msgs = [Message("user", "u0"), Message("assistant", "one two three"), Message("user", "u1"),
            Message("assistant", "x y")]
    if final_user is not None:
        msgs = msgs[:3] if final_user else msgs[:2]
    return Episode(task=Task(task_id=intent, intent=intent), simulator="scripted", messages=msgs,
                   end_reason=end)


def make(**kw):
    sim, asst, judge = ScriptedSimulator(), ScriptedAssistant(), TurnsJudge()
    settings = {"num_futures": 2, "window": 2, "token_cost": 0.01, "seed": 5, **kw}
    reward = MultiturnReward(judge, sim, assistant=asst, **settings)
    return reward, sim, asst, judge


def test_turn_scores_by_hand_batched_and_cached():
    reward, sim, asst, judge = make()
    scores = reward.turn_scores([episode()])
    # turn 1, prefix [u0, a1]: the simulator says "more", the assistant answers "ans 3", then the
    #   user leaves: 2 assistant turns -> 0.2; tokens from a1 on = 3 + 2 = 5 -> 0.2 − 0.05 = 0.15
    # turn 2, prefix [u0, a1, u1, a2]: the user leaves at once -> 0.2 − 0.01·2 = 0.18
    assert scores == [[pytest.approx(0.15), pytest.approx(0.18)]]
    # 4 futures advance together: 2 simulator calls (4 then 2 futures), 1 assistant call (2)
    assert sim.batches == [4, 2] and asst.batches == [2] and asst.seeds == [5] and judge.calls == 1
    assert reward.last_stats.as_dict() == {"prefixes": 2, "cache_hits": 0, "futures": 4,
                                           "simulator_calls": 2, "assistant_calls": 1,
                                           "task_reward_calls": 1, "assistant_tokens": 14}
    # terminal use on the same episode: its final state is turn 2's prefix, cached -> no calls
    (res,) = reward.score([episode()])
    assert res.value == pytest.approx(0.18) and not res.excluded
    assert sim.batches == [4, 2] and judge.calls == 1 and res.details["batch"]["cache_hits"] == 1
    assert [f["value"] for f in res.details["futures"]] == [pytest.approx(0.18)] * 2


def test_ended_conversation_and_window_zero_score_the_conversation_itself():
    reward, sim, asst, _ = make()
    # the user ended after a1 with a last message: one future, itself: 0.1 − 0.01·3 = 0.07
    (res,) = reward.score([episode(end="user_ended", final_user=True)])
    assert res.value == pytest.approx(0.07) and len(res.details["futures"]) == 1
    assert sim.batches == [] and asst.batches == []
    flat, _, _, _ = make(window=0)
    assert flat.turn_scores([episode()]) == [[pytest.approx(0.1 - 0.03), pytest.approx(0.18)]]


def test_excluded_futures_give_an_excluded_result_and_a_zero_turn_score():
    reward, _, _, _ = make()
    (res,) = reward.score([episode(intent="unmeasurable")])
    assert res.excluded and res.value == 0.0
    assert reward.turn_scores([episode(intent="unmeasurable")]) == [[0.0, 0.0]]


def test_length_capped_episode_resamples_its_trailing_user_turn():
    reward, sim, asst, _ = make()
    ep = episode(end="length_cap", final_user=True)  # [u0, a1, u1]: u1 did not fit
    (res,) = reward.score([ep])
    assert res.value == pytest.approx(0.15)  # the same futures as turn 1 above
    assert sim.batches == [2, 2]


def test_needs_an_assistant_until_one_is_bound():
    reward = MultiturnReward(TurnsJudge(), ScriptedSimulator(), num_futures=1, window=1)
    with pytest.raises(RuntimeError, match="bind_assistant"):
        reward.score([episode()])
    with pytest.raises(ValueError, match="num_futures"):
        MultiturnReward(TurnsJudge(), ScriptedSimulator(), num_futures=0)


def test_built_from_config_with_real_tiny_engines(tiny_model_dir, tmp_path):
    from rewards import build_reward

    (tmp_path / "zoo.yaml").write_text(
        "simulators:\n  tiny:\n    kind: roleplay\n"
        f"    engine: hf:{tiny_model_dir}\n"
        "    sampling: {temperature: 0.7, max_tokens: 5}\n")
    reward = build_reward({"kind": "multiturn", "simulator": "tiny", "zoo": str(tmp_path / "zoo.yaml"),
                           "assistant": f"hf:{tiny_model_dir}", "num_futures": 2, "window": 1,
                           "max_tokens": 4, "token_cost": 0.0,
                           "task_reward": {"kind": "rule", "rule": "length_band", "lo": 1, "hi": 50}})
    results = reward.score([episode(), episode(intent="other")])
    assert len(results) == 2 and all(0.0 <= r.value <= 1.0 for r in results)
    assert reward.last_stats.futures == 4 and reward.last_stats.simulator_calls >= 1
    with pytest.raises(ValueError, match="unknown keys"):
        build_reward({"kind": "multiturn", "simulator": "tiny", "task_reward": {}, "futures": 2})
