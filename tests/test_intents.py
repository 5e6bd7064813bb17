"""`wildsim data intents`: reply normalisation, the project protocol's fallbacks counted and kept,
resumable runs (the paper protocol: tests/test_intents_paper.py)."""

from __future__ import annotations

import json

import pytest

from simulators.intents import FALLBACK, PREFIX, PROMPT_VERSION, main, normalise_intent, run


def record(i: int, turns=("please write a poem about cats", "Here is a poem.")) -> dict:
    conv = [{"role": "user" if k % 2 == 0 else "assistant", "content": t, "turn_identifier": k}
            for k, t in enumerate(turns)]
    return {"conversation_hash": f"h{i}", "country": "France", "conversation": conv, "turn": 1}


class CountingChat:
    """A chat engine that answers from the conversation text and counts what it is asked."""

    def __init__(self, fail_after_calls: int | None = None):
        self.calls = 0
        self.seen: list[str] = []
        self.fail_after_calls = fail_after_calls

    def chat(self, conversations, sampling):
        if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        out = []
        for conv in conversations:
            text = conv[-1].content
            self.seen.append(text)
            out.append("Intent: to get a short poem." if "cats" in text else "ok")
        return out


@pytest.mark.parametrize("reply, expected, how", [
    (f"{PREFIX} get a poem.", f"{PREFIX} get a poem.", "ok"),
    (f'"{PREFIX} get a poem"', f"{PREFIX} get a poem.", "ok"),
    (f"Sure! {PREFIX} get a poem.", f"{PREFIX} get a poem.", "normalised"),
    ("Intent: to get help writing a poem.", f"{PREFIX} get help writing a poem.", "normalised"),
    ("The user wants to Fix a bug in their code", f"{PREFIX} fix a bug in their code.", "normalised"),
    (f"{PREFIX.lower()} plan a trip.", f"{PREFIX} plan a trip.", "normalised"),
    ("", None, "fallback"),
    ("ok", None, "fallback"),
    (PREFIX + " x" * 400, None, "fallback"),
])
def test_normalise_intent(reply, expected, how):
    assert normalise_intent(reply) == (expected, how)


def test_run_adds_intents_and_counts_fallbacks(tmp_path):
    src = tmp_path / "in.jsonl"
    records = [record(0), record(1, ("hello there", "hi")), record(2, ("", "orphan reply"))]
    src.write_text("\n".join(json.dumps(r) for r in records) + "\n{not json\n")
    stats = run(src, tmp_path / "out", CountingChat(), batch_size=2, protocol="project")
    assert stats.unreadable == 1
    written = [json.loads(line) for line in (tmp_path / "out" / "in.jsonl").read_text().splitlines()]
    assert [r["intent"] for r in written] == [f"{PREFIX} get a short poem.", FALLBACK, FALLBACK]
    for before, after in zip(records, written):  # the records are otherwise unchanged
        assert {k: v for k, v in after.items() if k != "intent"} == before
    assert (stats.records, stats.normalised, stats.fallback, stats.no_user_turn) == (3, 1, 1, 1)
    summary = json.loads((tmp_path / "out" / "intents_summary.json").read_text())
    assert summary["fallback"] == 1


def test_bad_record_is_named(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps({"conversation": "nope"}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl record 0: field 'conversation'"):
        run(src, tmp_path / "out", CountingChat())


def test_killed_run_resumes_without_repeating_calls(tmp_path):
    from engines.cache import CachedChatEngine

    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(record(i, (f"poem about cats number {i}", "ok")))
                             for i in range(6)) + "\n")
    cache = tmp_path / "cache"
    first = CountingChat(fail_after_calls=2)  # dies on its third batch
    with pytest.raises(KeyboardInterrupt):
        run(src, tmp_path / "out", CachedChatEngine(first, cache, PROMPT_VERSION), batch_size=2)
    second = CountingChat()
    stats = run(src, tmp_path / "out", CachedChatEngine(second, cache, PROMPT_VERSION), batch_size=2)
    assert len(first.seen) == 4 and len(second.seen) == 2  # every conversation asked exactly once
    assert sorted(first.seen + second.seen) == sorted(set(first.seen + second.seen))
    assert stats.records == 6 and stats.fallback == 0


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    assert main(["--in", str(tmp_path / "missing"), "--engine", "hf:/nowhere",
                 "--out", str(tmp_path / "o")]) == 2
    assert "wildsim data intents:" in capsys.readouterr().err
