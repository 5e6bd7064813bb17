"""The role-play simulator's "project" protocol with a scripted chat engine: openings, flipped view,
parsing, ending (the default "paper" protocol: tests/test_roleplay_paper.py)."""

from __future__ import annotations

import pytest

from corpora.types import Episode, Message, Task
from simulators.base import SIMULATOR_KINDS
from simulators.roleplay import (OPENING_CUE, REPLY_SCHEMA, STOCK_REPLY, RolePlaySimulator,
                                 flip_roles)

def project_sim(engine, **options):
    return RolePlaySimulator(engine, protocol="project", **options)


INTENT = "You are a user chatting with an assistant language model to get a haiku about autumn rain."


class ScriptedChat:
    """Answers every conversation with script(conversation); records each call."""

    def __init__(self, script):
        self.script = script
        self.calls = []  # (conversations, sampling)

    def chat(self, conversations, sampling):
        self.calls.append(([list(c) for c in conversations], sampling))
        return [self.script(c) for c in conversations]


def json_reply(text):
    return lambda conv: '{"thought": "keep going", "response": "%s"}' % text


def episode(group="g0", sample=0, opening="haiku pls", messages=()):
    return Episode(task=Task("t1", INTENT, opening=opening), simulator="rp", group_id=group,
                   sample=sample, messages=list(messages))


def test_registered_as_roleplay():
    assert SIMULATOR_KINDS.get("roleplay") is RolePlaySimulator


def test_self_opening_is_written_in_one_batched_call():
    engine = ScriptedChat(json_reply("can you write me a short poem?"))
    sim = project_sim(engine, opening="self")
    eps = [episode(sample=0), episode(sample=1)]
    assert sim.open(eps) == ["can you write me a short poem?"] * 2
    assert len(engine.calls) == 1 and len(engine.calls[0][0]) == 2
    conv = engine.calls[0][0][0]
    assert [m.role for m in conv] == ["system", "user"]
    assert INTENT in conv[0].content and conv[1].content == OPENING_CUE
    assert all(ep.sim_details["opening"] == "written" for ep in eps)
    assert "json_fallbacks" not in eps[0].sim_details


def test_real_opening_uses_the_task_and_writes_only_missing_ones():
    engine = ScriptedChat(json_reply("written opening"))
    sim = project_sim(engine, opening="real")
    eps = [episode(opening="the real one"), episode(group="g1", opening=None)]
    assert sim.open(eps) == ["the real one", "written opening"]
    assert len(engine.calls[0][0]) == 1  # only the task without an opening went to the engine
    assert [ep.sim_details["opening"] for ep in eps] == ["real", "written"]


def test_reply_sees_flipped_roles_with_the_intent_only_in_the_system_prompt():
    engine = ScriptedChat(json_reply("make it sadder"))
    sim = project_sim(engine, opening="real")
    ep = episode(messages=[Message("user", "haiku pls"), Message("assistant", "Rain on red leaves")])
    turn = sim.reply([ep])[0]
    assert (turn.text, turn.ends, turn.details["parse"]) == ("make it sadder", False, "json")
    conv = engine.calls[0][0][0]
    assert [(m.role, m.content) for m in conv[1:]] == [
        ("user", OPENING_CUE), ("assistant", "haiku pls"), ("user", "Rain on red leaves")]
    assert INTENT in conv[0].content
    assert all(INTENT not in m.content for m in conv[1:])


def test_flip_roles_drops_system_and_marks_empty_assistant_turns():
    flipped = flip_roles([Message("system", "policy prompt"), Message("user", "a"), Message("assistant", " ")])
    assert [m.role for m in flipped] == ["assistant", "user"]
    assert flipped[1].content.startswith("(the assistant sent")


def test_intent_never_reaches_the_conversation_in_a_small_rollout():
    engine = ScriptedChat(json_reply("ok, and another one?"))
    sim = project_sim(engine, opening="self")
    ep = episode()
    ep.messages.append(Message("user", sim.open([ep])[0]))
    for _ in range(3):
        ep.messages.append(Message("assistant", "Here is a haiku."))
        ep.messages.append(Message("user", sim.reply([ep])[0].text))
    assert len(ep.messages) == 7
    assert all(INTENT not in m.content and "haiku about autumn" not in m.content for m in ep.messages)


@pytest.mark.parametrize("raw, said", [
    ("User: could you shorten it?\nAssistant: Sure!", "could you shorten it?"),
    ('{"thought": "hmm", "response": "shorter please', "shorter please"),
    ("```\nshorter please\n```", "shorter please"),
    ('"shorter please"', "shorter please"),
])
def test_broken_json_falls_back_and_is_counted(raw, said):
    sim = project_sim(ScriptedChat(lambda conv: raw))
    ep = episode(messages=[Message("user", "haiku pls"), Message("assistant", "Rain")])
    turn = sim.reply([ep])[0]
    assert turn.text == said and not turn.ends
    assert turn.details["parse"] in ("field", "raw")
    assert ep.sim_details["json_fallbacks"] == 1
    metrics = sim.metrics()
    assert metrics["sim/json_fallbacks"] == 1.0 and metrics["sim/json_fallback_rate"] == 1.0


@pytest.mark.parametrize("raw, said", [
    ('{"thought": "done", "response": "perfect, thanks! <END>"}', "perfect, thanks!"),
    ('{"thought": "done", "response": "<END>"}', ""),
    ("thanks, bye <end>", "thanks, bye"),
])
def test_end_sentinel_ends_and_is_never_said(raw, said):
    sim = project_sim(ScriptedChat(lambda conv: raw))
    turn = sim.reply([episode(messages=[Message("user", "x"), Message("assistant", "y")])])[0]
    assert turn.ends and turn.text == said


def test_an_opening_cannot_end_the_conversation():
    sim = project_sim(ScriptedChat(json_reply("hello there <END>")))
    assert sim.open([episode()]) == ["hello there"]


def test_empty_replies_are_resampled_once_then_replaced_and_counted():
    engine = ScriptedChat(lambda conv: '{"thought": "only a thought"}')
    sim = project_sim(engine)
    ep = episode(messages=[Message("user", "x"), Message("assistant", "y")])
    turn = sim.reply([ep])[0]
    assert len(engine.calls) == 2
    assert engine.calls[0][1].seed != engine.calls[1][1].seed
    assert turn.text == STOCK_REPLY and not turn.ends
    assert ep.sim_details["empty_defaults"] == 1 and ep.sim_details["json_fallbacks"] == 2
    assert sim.stats.empty_retries == 1 and sim.stats.empty_defaults == 1


def test_sampling_defaults_and_seeds_are_reproducible():
    def seeds(seed, turn_msgs):
        engine = ScriptedChat(json_reply("x"))
        project_sim(engine, seed=seed).reply([episode(messages=turn_msgs)])
        return engine.calls[0][1]

    one = [Message("user", "a"), Message("assistant", "b")]
    two = one + [Message("user", "c"), Message("assistant", "d")]
    s = seeds(3, one)
    assert (s.temperature, s.top_p, s.max_tokens, s.json_schema) == (0.7, 0.9, 1024, REPLY_SCHEMA)
    assert seeds(3, one).seed == s.seed
    assert seeds(4, one).seed != s.seed
    assert seeds(3, two).seed != s.seed


def test_persona_goes_into_the_system_prompt_and_onto_the_episode():
    engine = ScriptedChat(json_reply("hi"))
    sim = project_sim(engine, opening="self", persona_bank="default", personas=["typos"])
    ep = episode()
    sim.open([ep])
    assert ep.persona == "typos"
    assert ep.sim_details["persona_text"] in engine.calls[0][0][0][0].content


def test_bad_opening_is_rejected():
    with pytest.raises(ValueError, match="opening must be one of"):
        project_sim(ScriptedChat(json_reply("x")), opening="user")


def test_lines_copying_the_instructions_are_dropped_and_counted():
    sim = project_sim(ScriptedChat(
        lambda conv: "Write like a real person typing into a chat box\nok but make it rhyme"))
    ep = episode(messages=[Message("user", "x"), Message("assistant", "y")])
    assert sim.reply([ep])[0].text == "ok but make it rhyme"
    assert ep.sim_details["echo_lines"] == 1 and sim.metrics()["sim/echo_lines"] == 1.0


def test_a_reply_that_only_echoes_or_narrates_gets_the_stock_turn():
    replies = iter([INTENT, "(I will now greet the assistant.)"])
    sim = project_sim(ScriptedChat(lambda conv: next(replies)))
    turn = sim.reply([episode(messages=[Message("user", "x"), Message("assistant", "y")])])[0]
    assert turn.text == STOCK_REPLY and sim.stats.empty_defaults == 1
