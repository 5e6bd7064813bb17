"""The paper's role-play protocol (the default of roleplay1/2/3) with a scripted chat engine: one
message with task, guidelines, goal and history; JSON {current_answer, thought, response} asked
for through Sampling.json_schema; the exact end signal; retries, then the conversation ends."""

from __future__ import annotations

import json

import pytest

from corpora.types import Episode, Message, Task
from simulators.paperprompt import END_SIGNAL, REPLY_SCHEMA, read_reply
from simulators.persona import load_personas
from simulators.roleplay import STOCK_OPENING, RolePlaySimulator

INTENT = "You are a user chatting with an assistant language model to plan a cheap weekend trip."
DEFAULT = load_personas(None, ["default"])[0].description


class ScriptedChat:
    """Answers call k, conversation i with script(k, i); records every call."""

    def __init__(self, script):
        self.script, self.calls = script, []

    def chat(self, conversations, sampling):
        k = len(self.calls)
        self.calls.append(([list(c) for c in conversations], sampling))
        return [self.script(k, i) for i in range(len(conversations))]


def reply(response, answer="", thought="go on"):
    return json.dumps({"current_answer": answer, "thought": thought, "response": response})


def episode(group="g0", opening="trip ideas?", messages=()):
    return Episode(task=Task("t1", INTENT, opening=opening), simulator="rp", group_id=group,
                   messages=list(messages))


HISTORY = [Message("user", "trip ideas?"), Message("assistant", "Try the coast.")]


def test_one_message_with_task_guidelines_goal_and_whole_history():
    engine = ScriptedChat(lambda k, i: reply("somewhere cheaper?", answer="the coast"))
    sim = RolePlaySimulator(engine, opening="real")
    (turn,) = sim.reply([episode(messages=HISTORY)])
    (conv,), sampling = engine.calls[0]
    assert len(conv) == 1 and conv[0].role == "user"
    text = conv[0].content
    assert INTENT in text and DEFAULT in text  # role-play 2 carries the default guidelines
    assert "User: trip ideas?\n\nAssistant: Try the coast." in text
    assert END_SIGNAL in text and all(key in text for key in REPLY_SCHEMA["required"])
    assert sampling.json_schema == REPLY_SCHEMA
    assert REPLY_SCHEMA["required"] == ["current_answer", "thought", "response"]
    assert (sampling.temperature, sampling.top_p, sampling.max_tokens) == (0.7, 0.9, 1024)
    assert (turn.text, turn.ends) == ("somewhere cheaper?", False)
    assert turn.details["current_answer"] == "the coast" and turn.details["tries"] == 1


def test_roleplay1_writes_its_opening_from_an_empty_history():
    engine = ScriptedChat(lambda k, i: reply("need a cheap trip"))
    sim = RolePlaySimulator(engine, opening="self")
    assert sim.open([episode()]) == ["need a cheap trip"]
    text = engine.calls[0][0][0][0].content
    assert "has not started" in text and "trip ideas?" not in text and DEFAULT in text


def test_persona_guidelines_replace_the_default_in_roleplay3():
    engine = ScriptedChat(lambda k, i: reply("hi"))
    sim = RolePlaySimulator(engine, opening="real", persona_bank="default", personas=["typos"])
    sim.reply([episode(messages=HISTORY)])
    text = engine.calls[0][0][0][0].content
    typos = load_personas(None, ["typos"])[0].description
    assert typos in text and DEFAULT not in text and "one word in five" in typos


@pytest.mark.parametrize("raw,said,ends", [
    (reply(END_SIGNAL), "", True),
    (reply(f"  {END_SIGNAL}\n"), "", True),
    (reply(f"thanks {END_SIGNAL}"), f"thanks {END_SIGNAL}", False),  # not exact: said as written
    ("```json\n" + reply("ok then") + "\n```", "ok then", False),
])
def test_ending_is_a_response_that_is_exactly_the_signal(raw, said, ends):
    parsed = read_reply(raw)
    assert (parsed.response, parsed.ends) == (said, ends)


@pytest.mark.parametrize("raw", ["sure, cheaper please", '{"thought": "x"}', reply(""),
                                 '{"response": 3}', ""])
def test_protocol_failures(raw):
    assert read_reply(raw) is None


def test_failures_are_retried_in_batched_rounds():
    # episode 0 fails twice then answers; episode 1 answers at once
    engine = ScriptedChat(lambda k, i: "not json" if (k < 2 and i == 0) else reply("cheaper?"))
    sim = RolePlaySimulator(engine, opening="real")
    eps = [episode("a", messages=HISTORY), episode("b", messages=HISTORY)]
    turns = sim.reply(eps)
    assert [t.text for t in turns] == ["cheaper?", "cheaper?"]
    assert [len(c[0]) for c in engine.calls] == [2, 1, 1]
    assert len({c[1].seed for c in engine.calls}) == 3  # a fresh seed each try
    assert eps[0].sim_details["json_retries"] == 2 and "json_retries" not in eps[1].sim_details
    assert turns[0].details["tries"] == 3


def test_after_eight_failed_tries_the_conversation_ends_without_a_canned_turn():
    engine = ScriptedChat(lambda k, i: "I am not JSON")
    sim = RolePlaySimulator(engine, opening="real")
    ep = episode(messages=HISTORY)
    (turn,) = sim.reply([ep])
    assert len(engine.calls) == 8
    assert (turn.text, turn.ends) == ("", True) and turn.details["parse"] == "failed"
    assert ep.sim_details["ended_on_json_failure"] and ep.sim_details["json_retries"] == 7
    metrics = sim.metrics()
    assert metrics["sim/ended_on_failure"] == 1 and metrics["sim/failed_tries"] == 8


def test_a_failed_or_ending_opening_falls_back_to_the_real_one_and_is_counted():
    engine = ScriptedChat(lambda k, i: reply(END_SIGNAL))  # an opening cannot end
    sim = RolePlaySimulator(engine, opening="self", max_tries=3)
    eps = [episode("a"), episode("b", opening=None)]
    assert sim.open(eps) == ["trip ideas?", STOCK_OPENING]
    assert len(engine.calls) == 3 and sim.metrics()["sim/opening_fallbacks"] == 2


def test_zoo_roleplay_entries_default_to_the_paper_protocol():
    from simulators.zoo import load_simulator

    def loader(spec, **_):
        return ScriptedChat(lambda k, i: reply("x"))

    for name in ("roleplay1", "roleplay2", "roleplay3"):
        assert load_simulator(name, engine_loader=loader).protocol == "paper"
    assert load_simulator("roleplay3", engine_loader=loader).default_guidelines == ""
    assert load_simulator("roleplay2", engine_loader=loader).default_guidelines == DEFAULT
    assert load_simulator("roleplay2-cpu", engine_loader=loader).protocol == "project"
