"""CachedChatEngine: only misses reach the inner engine, killed runs resume without repeats."""

from __future__ import annotations

import json

import pytest

from corpora.types import Message
from engines.base import Sampling
from engines.cache import CachedChatEngine, request_key

SAMPLING = Sampling(temperature=0.0, max_tokens=8)


class ScriptedEngine:
    """Answers "reply to <text> #<n>" (n counts its calls per text); can crash on a given call."""

    name = "scripted"

    def __init__(self, crash_on_call: int | None = None):
        self.calls: list[list[str]] = []
        self.crash_on_call = crash_on_call

    def chat(self, conversations, sampling):
        if self.crash_on_call is not None and len(self.calls) == self.crash_on_call:
            raise KeyboardInterrupt("killed")
        texts = [c[-1].content for c in conversations]
        before = self.asked
        self.calls.append(texts)
        return [f"reply to {t} #{before.count(t) + texts[:i + 1].count(t)}"
                for i, t in enumerate(texts)]

    @property
    def asked(self) -> list[str]:
        return sum(self.calls, [])


def _convs(*texts):
    return [[Message("user", t)] for t in texts]


def test_only_misses_go_to_the_inner_engine(tmp_path):
    inner = ScriptedEngine()
    path = tmp_path / "cache" / "judge.jsonl"
    first = CachedChatEngine(inner, path, "judge-v1").chat(_convs("a", "b", "c"), SAMPLING)
    again = CachedChatEngine(inner, path, "judge-v1")  # a new process would re-open the file
    second = again.chat(_convs("b", "d", "a", "e"), SAMPLING)
    assert first == ["reply to a #1", "reply to b #1", "reply to c #1"]
    assert second == ["reply to b #1", "reply to d #1", "reply to a #1", "reply to e #1"]
    assert inner.calls == [["a", "b", "c"], ["d", "e"]]  # misses batched in one call
    assert (again.hits, again.misses) == (2, 2)
    assert len(path.read_text().splitlines()) == 5


def test_key_covers_prefix_sampling_and_messages(tmp_path):
    inner = ScriptedEngine()
    path = tmp_path / "c.jsonl"
    CachedChatEngine(inner, path, "p1").chat(_convs("a"), SAMPLING)
    CachedChatEngine(inner, path, "p2").chat(_convs("a"), SAMPLING)
    CachedChatEngine(inner, path, "p1").chat(_convs("a"), SAMPLING.with_(temperature=0.5))
    CachedChatEngine(inner, path, "p1").chat([[Message("system", "x"), Message("user", "a")]], SAMPLING)
    assert len(inner.asked) == 4
    assert request_key("p", _convs("a")[0], SAMPLING) == request_key("p", _convs("a")[0], SAMPLING)


def test_duplicates_in_one_call_are_answered_separately(tmp_path):
    inner = ScriptedEngine()
    engine = CachedChatEngine(inner, tmp_path / "c.jsonl", "p")
    assert engine.chat(_convs("a", "a"), SAMPLING) == ["reply to a #1", "reply to a #2"]
    assert engine.chat(_convs("a", "a"), SAMPLING) == ["reply to a #1", "reply to a #2"]
    assert inner.asked == ["a", "a"]


def test_killed_run_resumes_with_zero_repeated_calls(tmp_path):
    path = tmp_path / "c.jsonl"
    texts = [f"q{i}" for i in range(7)]
    crashing = ScriptedEngine(crash_on_call=2)
    with pytest.raises(KeyboardInterrupt):
        CachedChatEngine(crashing, path, "p", batch_size=3).chat(_convs(*texts), SAMPLING)
    assert crashing.asked == texts[:6]  # two batches finished before the kill
    resumed = ScriptedEngine()
    replies = CachedChatEngine(resumed, path, "p", batch_size=3).chat(_convs(*texts), SAMPLING)
    assert resumed.asked == ["q6"]  # nothing finished is asked again
    assert replies == [f"reply to q{i} #1" for i in range(7)]


class StreamingEngine(ScriptedEngine):
    """Hands answers over one by one in reverse order (as requests completing out of order do);
    can be killed after `crash_after` answers of a call."""

    def __init__(self, crash_after: int | None = None):
        super().__init__()
        self.crash_after = crash_after

    def chat_each(self, conversations, sampling):
        replies = self.chat(conversations, sampling)
        for n, i in enumerate(reversed(range(len(replies)))):
            if n == self.crash_after:
                raise KeyboardInterrupt("killed")
            yield i, replies[i]


def test_streamed_answers_are_saved_as_they_arrive(tmp_path):
    path = tmp_path / "c.jsonl"
    texts = [f"q{i}" for i in range(5)]
    with pytest.raises(KeyboardInterrupt):  # killed inside its only batch, after two answers
        CachedChatEngine(StreamingEngine(crash_after=2), path, "p").chat(_convs(*texts), SAMPLING)
    assert len(path.read_text().splitlines()) == 2
    resumed = StreamingEngine()
    replies = CachedChatEngine(resumed, path, "p").chat(_convs(*texts), SAMPLING)
    assert resumed.asked == ["q0", "q1", "q2"]  # q4 and q3 had arrived before the kill
    assert replies == [f"reply to q{i} #1" for i in range(5)]


def test_a_streaming_engine_gets_all_misses_in_one_call(tmp_path):
    inner = StreamingEngine()
    engine = CachedChatEngine(inner, tmp_path / "c.jsonl", "p", batch_size=2)
    replies = engine.chat(_convs("a", "b", "c", "d", "e"), SAMPLING)
    assert replies == [f"reply to {t} #1" for t in "abcde"]
    assert inner.calls == [["a", "b", "c", "d", "e"]]  # no drain at every batch of 2
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 5


def test_truncated_last_line_is_tolerated_and_repaired(tmp_path):
    path = tmp_path / "c.jsonl"
    inner = ScriptedEngine()
    CachedChatEngine(inner, path, "p").chat(_convs("a", "b"), SAMPLING)
    with open(path, "ab") as f:
        f.write(b'{"key": "half-writ')  # a record cut short by a kill
    reopened = CachedChatEngine(inner, path, "p")
    assert reopened.dropped_lines == 1 and len(reopened.answers) == 2
    assert reopened.chat(_convs("a", "c"), SAMPLING) == ["reply to a #1", "reply to c #1"]
    assert inner.asked == ["a", "b", "c"]
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["reply"] for line in lines)


def test_unreadable_middle_line_is_skipped_and_counted(tmp_path):
    path = tmp_path / "c.jsonl"
    CachedChatEngine(ScriptedEngine(), path, "p").chat(_convs("a"), SAMPLING)
    with open(path, "a") as f:
        f.write("garbage\n")
    CachedChatEngine(ScriptedEngine(), path, "p").chat(_convs("b"), SAMPLING)
    reopened = CachedChatEngine(ScriptedEngine(), path, "p")
    assert reopened.dropped_lines == 1 and len(reopened.answers) == 2


def test_wrong_reply_count_from_inner_is_an_error(tmp_path):
    class Short:
        name = "short"

        def chat(self, conversations, sampling):
            return ["only one"]

    with pytest.raises(RuntimeError, match="returned 1 replies for 2 conversations"):
        CachedChatEngine(Short(), tmp_path / "c.jsonl").chat(_convs("a", "b"), SAMPLING)

    class ShortStream(Short):
        def chat_each(self, conversations, sampling):
            yield 0, "only one"

    with pytest.raises(RuntimeError, match="answered 1 of 2 conversations"):
        CachedChatEngine(ShortStream(), tmp_path / "d.jsonl").chat(_convs("a", "b"), SAMPLING)
