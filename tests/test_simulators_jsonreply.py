"""Tolerant JSON reading (engines.jsonparse) and the simulator reply parser on broken replies."""

from __future__ import annotations

import pytest

from engines.jsonparse import extract_field, extract_json_object, strip_code_fences
from simulators.jsonreply import (ReplyStats, drop_echoes, parse_user_reply, split_sentinel,
                                  strip_wrappers)


@pytest.mark.parametrize("text, expected", [
    ('{"a": 1}', {"a": 1}),
    ('Sure! {"a": 1} Hope this helps {"b": 2}', {"a": 1}),
    ('```json\n{"a": "x}"}\n```', {"a": "x}"}),
    ("{'a': 'it is', 'b': true}", {"a": "it is", "b": True}),
    ('{"a": [1, 2,], }', {"a": [1, 2]}),
    ('{"outer": {"inner": 1}}', {"outer": {"inner": 1}}),
    ('{"a": "don\'t stop"}', {"a": "don't stop"}),
])
def test_extract_json_object(text, expected):
    assert extract_json_object(text) == expected


@pytest.mark.parametrize("text", ["", "no json here", '{"a": 1', "{not: json at all}", "[1, 2]"])
def test_extract_json_object_gives_none(text):
    assert extract_json_object(text) is None


@pytest.mark.parametrize("text, value", [
    ('{"response": "cut off mid', "cut off mid"),
    ("{'response': 'single', 'x': 1", "single"),
    ('Response: plain line\nnext line', "plain line"),
    ('"response": "with \\"escaped\\" quotes"', 'with "escaped" quotes'),
    ("response = value,", "value"),
])
def test_extract_field(text, value):
    assert extract_field(text, "response") == value


def test_extract_field_absent_and_word_boundary():
    assert extract_field("no field", "response") is None
    assert extract_field("correspondence: x", "response") is None


def test_strip_code_fences_and_wrappers():
    assert strip_code_fences("```python\nprint(1)\n```") == "print(1)"
    assert strip_code_fences("plain") == "plain"
    assert strip_wrappers("**User:** hello\nAI: hi there") == "hello"
    assert strip_wrappers("'quoted'") == "quoted"


def test_split_sentinel():
    assert split_sentinel("thanks  <END>") == ("thanks", True)
    assert split_sentinel("a <end> b") == ("a b", True)
    assert split_sentinel("no end") == ("no end", False)


def test_parse_user_reply_reads_json_fields():
    parsed = parse_user_reply('{"current_answer": "ok", "thought": "t", "response": "next"}')
    assert (parsed.response, parsed.thought, parsed.current_answer, parsed.method) == ("next", "t", "ok", "json")
    assert not parsed.fallback


def test_parse_user_reply_json_without_response_is_not_said():
    parsed = parse_user_reply('{"thought": "I should ask for more"}')
    assert parsed.response == "" and parsed.method == "raw" and parsed.fallback


def test_reply_stats_metrics():
    stats = ReplyStats()
    for text in ['{"response": "a"}', "plain", '{"response": "b <END>"}']:
        stats.add(parse_user_reply(text))
    metrics = stats.as_metrics("sim")
    assert metrics["sim/replies"] == 3 and metrics["sim/json_fallbacks"] == 1
    assert metrics["sim/json_fallback_rate"] == pytest.approx(1 / 3)
    assert stats.ends == 1 and metrics["sim/parsed_raw"] == 1


def test_drop_echoes():
    source = "You are playing a human user. Write like a real person typing into a chat box."
    assert drop_echoes("write like a real person, typing into a chat box!\nhi", source) == ("hi", 1)
    assert drop_echoes("hello there", source) == ("hello there", 0)
    assert drop_echoes("human user", source) == ("human user", 0)  # too short to call an echo
    assert drop_echoes("ing a human user", source) == ("ing a human user", 0)  # whole words only


def test_raw_control_characters_inside_strings_still_parse():
    from engines.jsonparse import extract_json_object

    assert extract_json_object('{"thought": "a\x1db", "response": "tab\there"}') == \
        {"thought": "a\x1db", "response": "tab\there"}
