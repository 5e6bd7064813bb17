"""The lockstep rollout: exact token views and masks, batching, end reasons, caps, distributed padding.

Policies and simulators here are scripted (their replies are fixed texts), so the token views can
be checked token by token against the chat template of the final conversation; one test drives
the real HFEngine on the tiny random model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch

from corpora.types import END_LENGTH_CAP, END_TURN_CAP, END_USER, Episode, Message, Task
from engines.base import Sampling, TokenOutput
from engines.tiny import build_tiny_tokenizer
from simulators.base import UserTurn
from trainers.rollout import (ChatPolicy, RolloutConfig, TemplateGlue, TokenPolicy, make_policy,
                              run_rollout)

torch.set_num_threads(1)

INTENT = "SECRET-INTENT you want a sorted list"


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


class ScriptedTokenEngine:
    """Replies with fixed texts, tokenised canonically, one per assistant turn so far.

    `replies[k]` is the reply to a prompt holding k earlier assistant turns; texts listed in
    `cut` come back without the end-of-turn token, as if max_tokens had been reached."""

    def __init__(self, tokenizer, replies, cut=()):
        self.tokenizer = tokenizer
        self.eos_token_ids = {tokenizer.eos_token_id}
        self.replies, self.cut = list(replies), set(cut)
        self.calls: list[int] = []      # batch size of each call
        self.seen: list[str] = []       # every prompt it was given, decoded

    def generate(self, prompt_ids, sampling: Sampling):
        self.calls.append(len(prompt_ids))
        outs = []
        for ids in prompt_ids:
            text = self.tokenizer.decode(ids)
            self.seen.append(text)
            reply = self.replies[min(text.count("<|im_start|>assistant") - 1, len(self.replies) - 1)]
            gen = self.tokenizer.encode(reply)
            if reply in self.cut:
                outs.append(TokenOutput(gen, [-0.5] * len(gen), "length"))
            else:
                outs.append(TokenOutput(gen + [self.tokenizer.eos_token_id],
                                        [-0.5] * (len(gen) + 1), "stop"))
        return outs


@dataclass
class ScriptedSimulator:
    """Opens with the task's opening; then says script[task_id][k] after assistant turn k+1."""

    script: dict[str, list[UserTurn]]
    name: str = "scripted"
    reply_batches: list[int] = field(default_factory=list)

    def open(self, episodes):
        return [ep.task.opening for ep in episodes]

    def reply(self, episodes):
        self.reply_batches.append(len(episodes))
        return [self.script[ep.task.task_id][ep.assistant_turns - 1] for ep in episodes]


def _episodes(*task_ids, opening="hello can you help me sort a list"):
    return [Episode(task=Task(task_id=t, intent=INTENT, opening=opening), simulator="scripted",
                    group_id=f"0:{t}") for t in task_ids]


def _render(tokenizer, messages, **kw):
    return tokenizer.apply_chat_template([m.as_dict() for m in messages], tokenize=True,
                                         return_dict=True, **kw)


def test_token_view_equals_template_of_final_conversation_token_by_token(tokenizer):
    engine = ScriptedTokenEngine(tokenizer, ["sure, here is the code: sort(data)", "ok",
                                             "great, bye"])
    sim = ScriptedSimulator({"a": [UserTurn("make it shorter please"), UserTurn("why?"),
                                   UserTurn("thanks bye", ends=True)]})
    [ep] = run_rollout(_episodes("a"), TokenPolicy(engine), sim, RolloutConfig(max_turns=5)).episodes
    assert ep.end_reason == END_USER and ep.assistant_turns == 3
    assert ep.messages[-1].content == "thanks bye"
    view = ep.tokens
    ours = view.prompt_ids + view.completion_ids
    # the final user turn came after the last policy turn: it is in messages, not in the view
    expected = _render(tokenizer, ep.messages[:-1], return_assistant_tokens_mask=True)
    newline = tokenizer.encode("\n")
    assert ours + newline == expected["input_ids"]  # the template adds "\n" after the last turn
    template_mask = expected["assistant_masks"][len(view.prompt_ids):len(ours)]
    assert view.env_mask == template_mask  # 1 exactly on assistant content + its <|im_end|>
    assert len(view.env_mask) == len(view.completion_ids) == len(view.logprobs)
    assert [lp for lp, m in zip(view.logprobs, view.env_mask) if not m] == [0.0] * view.env_mask.count(0)
    assert all(lp == -0.5 for lp, m in zip(view.logprobs, view.env_mask) if m)
    assert view.completion_ids[-1] == tokenizer.eos_token_id


def test_prompt_is_template_of_opening_and_intent_never_reaches_policy(tokenizer):
    engine = ScriptedTokenEngine(tokenizer, ["sure"])
    sim = ScriptedSimulator({"a": [UserTurn("more please")] * 3})
    cfg = RolloutConfig(max_turns=3, system_prompt="Be brief.")
    [ep] = run_rollout(_episodes("a"), TokenPolicy(engine, "Be brief."), sim, cfg).episodes
    opening = _render(tokenizer, [Message("system", "Be brief."), ep.messages[0]],
                      add_generation_prompt=True)["input_ids"]
    assert ep.tokens.prompt_ids == opening
    assert all("SECRET-INTENT" not in text for text in engine.seen)


def test_turn_cut_by_max_tokens_gets_closing_as_environment_tokens(tokenizer):
    engine = ScriptedTokenEngine(tokenizer, ["a long answer that was cut", "ok"],
                                 cut={"a long answer that was cut"})
    sim = ScriptedSimulator({"a": [UserTurn("go on"), UserTurn("bye", ends=True)]})
    [ep] = run_rollout(_episodes("a"), TokenPolicy(engine), sim, RolloutConfig()).episodes
    view = ep.tokens
    expected = _render(tokenizer, ep.messages[:-1])["input_ids"]
    assert view.prompt_ids + view.completion_ids + tokenizer.encode("\n") == expected
    cut_ids = tokenizer.encode("a long answer that was cut")
    eos_at = len(cut_ids)  # the <|im_end|> right after the cut turn was appended, not generated
    assert view.completion_ids[eos_at] == tokenizer.eos_token_id
    assert view.env_mask[:eos_at] == [1] * eos_at and view.env_mask[eos_at] == 0


def test_last_turn_cut_by_max_tokens_is_left_truncated(tokenizer):
    engine = ScriptedTokenEngine(tokenizer, ["cut short"], cut={"cut short"})
    sim = ScriptedSimulator({"a": []})
    [ep] = run_rollout(_episodes("a"), TokenPolicy(engine), sim, RolloutConfig(max_turns=1)).episodes
    assert ep.end_reason == END_TURN_CAP
    assert ep.tokens.completion_ids == tokenizer.encode("cut short")  # no EOS: TRL sees truncation
    assert ep.tokens.env_mask == [1] * len(ep.tokens.completion_ids)


def test_lockstep_batches_shrink_and_end_reasons(tokenizer):
    engine = ScriptedTokenEngine(tokenizer, ["one", "two", "three"])
    go, stop = UserTurn("go on"), UserTurn("", ends=True)
    sim = ScriptedSimulator({"a": [stop], "b": [go, stop], "c": [go, go, go], "d": [go, go, go]})
    result = run_rollout(_episodes("a", "b", "c", "d"), TokenPolicy(engine), sim,
                         RolloutConfig(max_turns=3))
    reasons = {ep.task.task_id: ep.end_reason for ep in result.episodes}
    assert reasons == {"a": END_USER, "b": END_USER, "c": END_TURN_CAP, "d": END_TURN_CAP}
    assert engine.calls == [4, 3, 2]           # one batched policy call per turn, live batch shrinks
    assert sim.reply_batches == [4, 3]          # no simulator call after the turn cap
    assert result.stats.turns == 3 == max(ep.assistant_turns for ep in result.episodes)
    assert result.stats.live_per_turn == [4, 3, 2]
    assert result.stats.end_reasons == {END_USER: 2, END_TURN_CAP: 2}
    assert [ep.assistant_turns for ep in result.episodes] == [1, 2, 3, 3]
    metrics = result.stats.metrics()
    assert metrics["episode/end_user_ended"] == 0.5 and metrics["sim/turns"] == 9 / 4


def test_length_cap_ends_episode_before_overflow(tokenizer):
    engine = ScriptedTokenEngine(tokenizer, ["sure thing here it is"])
    sim = ScriptedSimulator({"a": [UserTurn("more more more please")] * 5})
    prompt_len = len(TemplateGlue(tokenizer, [tokenizer.eos_token_id]).prompt_ids(
        "hello can you help me sort a list", None))
    turn = len(tokenizer.encode("sure thing here it is")) + 1
    cap = prompt_len + 2 * turn + 16 + 8  # room for two turns and one user turn, not three
    cfg = RolloutConfig(max_turns=5, max_tokens=8, max_total_tokens=cap)
    [ep] = run_rollout(_episodes("a"), TokenPolicy(engine), sim, cfg).episodes
    assert ep.end_reason == END_LENGTH_CAP
    assert ep.assistant_turns == 2 and len(ep.tokens) <= cap
    assert ep.messages[-1].role == "user"  # the user's turn is recorded; no room to answer it


def test_pad_to_turns_makes_dummy_calls(tokenizer):
    engine = ScriptedTokenEngine(tokenizer, ["one"])
    sim = ScriptedSimulator({"a": [UserTurn("", ends=True)]})
    result = run_rollout(_episodes("a"), TokenPolicy(engine), sim,
                         RolloutConfig(max_turns=4, pad_to_turns=True))
    assert len(engine.calls) == 4 and result.stats.dummy_calls == 3
    assert result.episodes[0].assistant_turns == 1


def test_any_live_keeps_rank_in_step(tokenizer):
    engine = ScriptedTokenEngine(tokenizer, ["one"])
    sim = ScriptedSimulator({"a": [UserTurn("", ends=True)]})
    asked = []

    def any_live(local: bool) -> bool:  # another rank stays live for three turns
        asked.append(local)
        return local or len(asked) <= 3

    result = run_rollout(_episodes("a"), TokenPolicy(engine), sim, RolloutConfig(max_turns=5),
                         any_live=any_live)
    assert asked == [True, False, False, False]
    assert len(engine.calls) == 3 and result.stats.dummy_calls == 2


class ScriptedChatEngine:
    def __init__(self):
        self.seen = []

    def chat(self, conversations, sampling):
        self.seen += conversations
        return [f"answer {sum(m.role == 'assistant' for m in c) + 1}" for c in conversations]


def test_chat_policy_plays_without_token_view():
    engine = ScriptedChatEngine()
    sim = ScriptedSimulator({"a": [UserTurn("again")] * 5})
    policy = make_policy(engine, system_prompt="Be kind.")
    assert isinstance(policy, ChatPolicy)
    [ep] = run_rollout(_episodes("a"), policy, sim, RolloutConfig(max_turns=2)).episodes
    assert ep.tokens is None and ep.end_reason == END_TURN_CAP
    assert [m.content for m in ep.messages] == ["hello can you help me sort a list", "answer 1",
                                                "again", "answer 2"]
    assert engine.seen[0][0].role == "system"
    assert not any(INTENT in m.content for conv in engine.seen for m in conv)


def test_real_engine_masks_cover_exactly_generated_ids(tiny_model_dir):
    from engines.hf import HFEngine, load_hf

    model, tok = load_hf(str(tiny_model_dir), dtype="float32", device="cpu")
    engine = HFEngine(model, tok)
    go = UserTurn("go on please")
    sim = ScriptedSimulator({t: [go, go] for t in "abc"})
    cfg = RolloutConfig(max_turns=3, max_tokens=6, temperature=1.0)
    result = run_rollout(_episodes("a", "b", "c"), make_policy(engine), sim, cfg, seed=3)
    glue = TemplateGlue(tok, engine.eos_token_ids)
    for ep in result.episodes:
        view = ep.tokens
        assert ep.end_reason == END_TURN_CAP and len(view.env_mask) == len(view.completion_ids)
        # walk the completion: generated run, then glue ending in the rendered user turn
        runs, current = [], []
        for tok_id, m in zip(view.completion_ids, view.env_mask):
            if m:
                current.append(tok_id)
            elif current:
                runs.append(current)
                current = []
        runs.append(current)
        assert len(runs) == 3 and all(0 < len(r) <= 6 for r in runs)
        assert all(lp < 0 for lp, m in zip(view.logprobs, view.env_mask) if m)
        assert result.stats.generated_tokens >= sum(len(r) for r in runs)
        tail = glue.user_turn_ids("go on please")
        joined = view.completion_ids
        assert sum(1 for i in range(len(joined)) if joined[i:i + len(tail)] == tail) == 2
