"""Turn-level fidelity: the metric functions on hand-computed values, and the replay of real
prefixes through a scripted simulator (eval.turn_fidelity.run)."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

from corpora.types import Message
from eval import turn_fidelity as tf
from simulators.base import UserTurn


def test_pooled_word_length_and_typo_rate():
    assert tf.pooled_mean_word_length(["ab abcd", "abc"]) == pytest.approx(3.0)  # (2+4+3)/3
    vocab = frozenset({"the", "cat", "sat"})
    # judged: the cat sat tha caat | on ( 2 letters, unknown ) -> 3 unknown of 6
    assert tf.pooled_typo_rate(["the cat sat", "tha caat on"], vocab) == pytest.approx(3 / 6)
    assert tf.pooled_typo_rate(["123 !!"], vocab) == 0.0


def test_squared_js_distance_by_hand():
    classes = ("a", "b")
    assert tf.squared_js_distance(Counter(a=1), Counter(b=3), classes) == pytest.approx(math.log(2))
    assert tf.squared_js_distance(Counter(a=2, b=2), Counter(a=1, b=1), classes) == pytest.approx(0.0)
    # P = (.75, .25), Q = (.25, .75), M = (.5, .5): JS = .75 ln 1.5 + .25 ln .5
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert tf.squared_js_distance(Counter(a=3, b=1), Counter(a=1, b=3), classes) == pytest.approx(expected)
    assert tf.squared_js_distance(Counter(), Counter(), classes) == 0.0


def test_termination_f1_by_hand():
    real = [True, True, False, False, True]
    sim = [True, False, True, False, True]
    # TP = 2, FP = 1, FN = 1 -> 4 / 6
    assert tf.termination_f1(real, sim) == pytest.approx(4 / 6)
    assert tf.termination_f1([False, False], [False, False]) is None
    assert tf.termination_f1([True], [False]) == 0.0


def test_cosine_distances():
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    b = np.array([[0.0, 2.0], [2.0, 2.0]])
    assert np.allclose(tf.cosine_distances(a, b), [1.0, 0.0])


def test_identical_turns_score_perfectly():
    texts = ["Hello there, can you fix THIS code?", "thanks!! that works"]
    m = tf.turn_metrics(texts, texts, [False, True], [False, True], np.zeros(2))
    assert m.wordlen_l1 == 0 and m.typo_l1 == 0 and m.pos_js == 0 and m.length_js == 0
    assert m.sentiment_js == 0 and m.caps_js == 0 and m.punct_js == 0
    assert m.embed_distance == 0 and m.termination_f1 == 1.0


def test_different_styles_score_apart():
    real = ["Could you please rewrite the introduction more formally?"]
    sim = ["REWRITE IT NOW!!!"]
    m = tf.turn_metrics(real, sim, [False], [False], None)
    assert m.caps_js > 0.3 and m.punct_js > 0.3 and m.length_js == pytest.approx(math.log(2))
    assert m.embed_distance is None and m.termination_f1 is None


def test_replay_points_from_a_conversation():
    conv = (Message("system", "s"), Message("user", "u1"), Message("assistant", "a1"),
            Message("user", "u2"), Message("assistant", "a2"))
    points, skipped = tf.replay_points([conv], ["c"], ["goal"])
    assert skipped == 0 and [p.index for p in points] == [2, 4]
    assert points[0].real_next == "u2" and points[1].real_next is None
    assert points[0].prefix == conv[1:3] and points[1].intent == "goal"


class ScriptedSimulator:
    """Echoes the last user turn in capitals; ends after the second assistant turn."""

    name = "scripted"

    def __init__(self):
        self.seen = []

    def open(self, episodes):
        return [ep.task.opening for ep in episodes]

    def reply(self, episodes):
        self.seen.extend(episodes)
        out = []
        for ep in episodes:
            last_user = [m.content for m in ep.messages if m.role == "user"][-1]
            ends = ep.assistant_turns >= 2
            out.append(UserTurn("" if ends else last_user.upper() + "!!!", ends=ends))
        return out


def _write_real(path):
    records = []
    for i in range(6):
        conv = [{"role": "user", "content": f"please help me with task {i}"},
                {"role": "assistant", "content": "Sure."},
                {"role": "user", "content": "thanks, now make it shorter"},
                {"role": "assistant", "content": "Done."}]
        if i % 2:  # odd conversations go on for one more round
            conv += [{"role": "user", "content": "great, bye"}, {"role": "assistant", "content": "Bye!"}]
        records.append({"conversation_hash": f"h{i}", "intent": "get help", "conversation": conv})
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")


def test_replay_with_a_scripted_simulator(tmp_path):
    _write_real(tmp_path / "real.jsonl")
    cfg = tf.TurnFidelityConfig(real=str(tmp_path / "real.jsonl"), simulator="scripted",
                                out=str(tmp_path / "out"), batch_size=4)
    sim = ScriptedSimulator()
    summary = tf.run(cfg, "cmd", simulator=sim)
    counts, m = summary["counts"], summary["metrics"]
    # points: 6 after a1, 6 after a2, 3 after a3 = 15; real ends at a2 (even) and a3 (odd) = 6
    assert counts["points"] == 15 and counts["real_ended"] == 6
    # scripted ends at a2 and a3 (9 points); TP = 6 (3 even a2 + 3 odd a3), FP = 3 (odd a2)
    assert counts["sim_ended"] == 9
    assert m["termination_f1"] == pytest.approx(2 * 6 / (2 * 6 + 3 + 0))
    assert counts["pairs"] == 6 and 0 < m["embed_distance"] < 1 and m["caps_js"] > 0.3
    # the simulator saw only the prefix, never the real next turn
    assert all(ep.messages[-1].role == "assistant" for ep in sim.seen)
    assert all(ep.task.conversation == tuple(ep.messages) for ep in sim.seen)
    lines = (tmp_path / "out" / "replays.jsonl").read_text().splitlines()
    assert len(lines) == 15 and json.loads(lines[0])["sim"] == "PLEASE HELP ME WITH TASK 0!!!"
    assert json.loads((tmp_path / "out" / "turn_fidelity.json").read_text())["metrics"] == m
