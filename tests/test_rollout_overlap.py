"""The overlapped rollout schedule: the same episodes as lockstep under a seed, groups scored as
they end, the same number of policy calls on every rank, and the `auto` choice.

Engines are scripted (replies depend only on the conversation and the sampling seed, never on
batch mates) so both schedules must agree exactly; one test drives the real HFEngine greedily
(batched greedy decoding equals one-by-one decoding, tests/test_engines_hf.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest
import torch

from corpora.types import END_LENGTH_CAP, END_TURN_CAP, END_USER, Episode, Task
from engines.base import TokenOutput
from engines.http import OpenAIChatEngine
from engines.tiny import build_tiny_tokenizer
from rewards.base import RewardResult
from simulators.base import UserTurn
from trainers.rollout import RolloutConfig, TokenPolicy, choose_schedule, run_rollout

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


class SeededTokenEngine:
    """Each reply is a function of the prompt and the sampling seed only; replies of 'long'
    tasks are long, so that they reach the length cap."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.eos_token_ids = {tokenizer.eos_token_id}
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def generate(self, prompt_ids, sampling):
        with self.lock:
            self.calls.append(len(prompt_ids))
        outs = []
        for ids in prompt_ids:
            text = self.tokenizer.decode(ids)
            words = ["sure", "ok", "fine", "yes", "list", "sort"]
            pick = (sum(ids) + (sampling.seed or 0)) % len(words)
            reply = " ".join(words[pick:] + words[:pick]) * (8 if "long" in text else 1)
            gen = self.tokenizer.encode(reply)[:sampling.max_tokens]
            cut = pick == 0  # some turns hit max_tokens without the end-of-turn token
            ids_out = gen if cut else gen + [self.tokenizer.eos_token_id]
            outs.append(TokenOutput(ids_out, [-0.1 * (i + 1) for i in range(len(ids_out))],
                                    "length" if cut else "stop"))
        return outs


@dataclass
class ContentSimulator:
    """Replies from the episode's own content; ends tasks named 'end*' after their second turn.
    Each call sleeps a little so that, overlapped, it really runs beside the policy."""

    name: str = "content"
    delay: float = 0.01
    batches: list[int] = field(default_factory=list)

    def open(self, episodes):
        return [f"{ep.task.opening} number {ep.sample}" for ep in episodes]

    def reply(self, episodes):
        time.sleep(self.delay)
        self.batches.append(len(episodes))
        out = []
        for ep in episodes:
            ends = ep.task.task_id.startswith("end") and ep.assistant_turns >= 2
            out.append(UserTurn(f"thanks bye {ep.sample}" if ends else
                                f"and what about {len(ep.messages[-1].content) % 7}", ends))
        return out


class GroupReward:
    """Records what it was asked to score; the value is a function of the episode only."""

    name = "group_recorder"

    def __init__(self):
        self.calls: list[tuple[list[str], bool, str]] = []  # (group ids, all done, thread name)

    def score(self, episodes):
        self.calls.append(([ep.group_id for ep in episodes], all(ep.done for ep in episodes),
                           threading.current_thread().name))
        return [RewardResult(len(ep.messages) / 10, {"turns": ep.assistant_turns}) for ep in episodes]


def _episodes(n_groups: int = 3, per_group: int = 3):
    names = ["end-a", "long-b", "plain-c", "end-d", "plain-e"]
    return [Episode(task=Task(task_id=names[g % len(names)], intent="an intent",
                              opening=f"hello {names[g % len(names)]} help me"),
                    simulator="content", group_id=f"g{g}", sample=s)
            for g in range(n_groups) for s in range(per_group)]


def _play(tokenizer, schedule, *, waves=2, reward=None, episodes=None, **cfg):
    config = RolloutConfig(max_turns=3, max_tokens=24, max_total_tokens=120, schedule=schedule,
                           waves=waves, **cfg)
    engine = SeededTokenEngine(tokenizer)
    result = run_rollout(episodes if episodes is not None else _episodes(),
                         TokenPolicy(engine), ContentSimulator(), config, seed=7, reward=reward)
    return result, engine


def _fingerprint(episodes):
    return [(ep.group_id, ep.sample, [(m.role, m.content) for m in ep.messages], ep.end_reason,
             ep.tokens.prompt_ids, ep.tokens.completion_ids, ep.tokens.env_mask, ep.tokens.logprobs,
             ep.reward, ep.reward_details) for ep in episodes]


@pytest.mark.parametrize("waves", [2, 3, 20])
def test_overlapped_gives_the_lockstep_episodes(tokenizer, waves):
    lock, _ = _play(tokenizer, "lockstep")
    over, _ = _play(tokenizer, "overlapped", waves=waves)
    assert {ep.end_reason for ep in lock.episodes} == {END_USER, END_TURN_CAP, END_LENGTH_CAP}
    assert _fingerprint(over.episodes) == _fingerprint(lock.episodes)
    assert over.stats.end_reasons == lock.stats.end_reasons
    assert over.stats.schedule == "overlapped" and lock.stats.schedule == "lockstep"
    assert over.stats.turns > lock.stats.turns  # one policy call per wave and turn


def test_groups_are_scored_whole_as_they_end_and_match_lockstep(tokenizer):
    lock_reward, over_reward = GroupReward(), GroupReward()
    lock, _ = _play(tokenizer, "lockstep", reward=lock_reward)
    over, _ = _play(tokenizer, "overlapped", waves=3, reward=over_reward)
    assert _fingerprint(over.episodes) == _fingerprint(lock.episodes)
    assert [r.value for r in over.rewards] == [r.value for r in lock.rewards]
    assert len(lock_reward.calls) == 1  # lockstep: everything at the end, in one call
    # overlapped: one call per group, each holding the whole group, all of it ended, in a worker
    assert sorted(tuple(ids) for ids, _, _ in over_reward.calls) == \
        [tuple([f"g{g}"] * 3) for g in range(3)]
    assert all(done and thread.startswith("wildsim-reward") for _, done, thread in over_reward.calls)
    assert over.stats.reward_s > 0


class _AllReduce:
    """any_live across rank threads: a barrier, then OR of every rank's flag."""

    def __init__(self, ranks: int):
        self.barrier = threading.Barrier(ranks, timeout=20)
        self.flags: list[bool] = []
        self.lock = threading.Lock()

    def __call__(self, local: bool) -> bool:
        with self.lock:
            self.flags.append(local)
        self.barrier.wait()
        result = any(self.flags)
        self.barrier.wait()
        with self.lock:
            self.flags.clear()
        self.barrier.wait()
        return result


@pytest.mark.parametrize("pad", [False, True])
def test_every_rank_makes_the_same_number_of_policy_calls(tokenizer, pad):
    sync = None if pad else _AllReduce(2)
    rank_episodes = [_episodes(3, 2), _episodes(1, 1)[:1]]  # rank 1: one episode, an empty wave
    calls: list[int] = [0, 0]
    errors: list[BaseException] = []

    def rank(r: int) -> None:
        try:
            config = RolloutConfig(max_turns=3, max_tokens=24, max_total_tokens=120,
                                   schedule="overlapped", waves=2, pad_to_turns=pad)
            engine = SeededTokenEngine(tokenizer)
            run_rollout(rank_episodes[r], TokenPolicy(engine), ContentSimulator(), config, seed=1,
                        any_live=sync)
            calls[r] = len(engine.calls)
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert calls[0] == calls[1] > 0
    if pad:
        assert calls == [3 * 2, 3 * 2]  # max_turns x waves


def test_auto_overlaps_only_a_served_simulator():
    config = RolloutConfig(schedule="auto")
    local = ContentSimulator()
    served = ContentSimulator()
    served.engine = OpenAIChatEngine("http://127.0.0.1:9/v1", "m")
    assert choose_schedule(config, local) == "lockstep"
    assert choose_schedule(config, served) == "overlapped"
    assert choose_schedule(RolloutConfig(schedule="lockstep"), served) == "lockstep"
    with pytest.raises(ValueError, match="schedule must be"):
        RolloutConfig(schedule="async")
    with pytest.raises(ValueError, match="waves must be"):
        RolloutConfig(waves=0)


def test_real_engine_greedy_gives_identical_token_views(tiny_model_dir):
    from engines.hf import HFEngine, load_hf

    model, tok = load_hf(str(tiny_model_dir), dtype="float32", device="cpu")
    engine = HFEngine(model, tok)
    views = []
    for schedule in ("lockstep", "overlapped"):
        config = RolloutConfig(max_turns=2, max_tokens=10, max_total_tokens=200, temperature=0.0,
                               schedule=schedule, waves=2)
        result = run_rollout(_episodes(2, 2), TokenPolicy(engine), ContentSimulator(delay=0), config,
                             seed=3)
        views.append([(ep.tokens.completion_ids, ep.tokens.env_mask, ep.end_reason)
                      for ep in result.episodes])
        logprobs = [ep.tokens.logprobs for ep in result.episodes]
        views[-1].append(logprobs)
    assert views[0][:-1] == views[1][:-1]
    for a, b in zip(views[0][-1], views[1][-1]):
        assert a == pytest.approx(b, abs=1e-4)
