"""Turn-level fidelity, paper protocol: each definition on hand-computed inputs (eval.turn_paper),
and one replay of the bundled WildBench sample with a scripted simulator."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from eval import turn_fidelity as tf
from eval import turn_paper as tp
from simulators.base import UserTurn


def test_squared_js_in_nats_with_scipy_epsilon():
    assert tp.squared_js([1, 2], [2, 4]) == pytest.approx(0.0, abs=1e-12)   # renormalised
    assert tp.squared_js([1, 0], [0, 1]) == pytest.approx(math.log(2), rel=1e-6)
    # p = (1/2, 1/2), q = (1, 0): JS = ½ KL(p‖m) + ½ KL(q‖m), m = (3/4, 1/4)
    by_hand = 0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)) \
        + 0.5 * math.log(1 / 0.75)
    assert tp.squared_js([1, 1], [1, 0]) == pytest.approx(by_hand, rel=1e-6)


def test_punctuation_capitals_words_and_typos_by_hand():
    assert len(tp.ASCII_PUNCT) == 32
    hist = tp.punctuation_hist("don't stop!!")
    assert hist[tp.ASCII_PUNCT.index("'")] == 1 and hist[tp.ASCII_PUNCT.index("!")] == 2
    assert hist.sum() == 3
    assert np.array_equal(tp.punctuation_hist("no marks"), np.ones(32))      # none → uniform
    assert tp.capitalisation_hist("ABc").tolist() == pytest.approx([2 / 3, 1 / 3])
    assert tp.capitalisation_hist("123 ?").tolist() == [0.5, 0.5]
    assert tp.word_count("a  b\nc") == 3 and tp.mean_token_length("ab abcd") == 3.0
    assert tp.typo_tokens("Helo, helo world!! ...") == ["helo", "helo", "world"]
    assert tp.typo_rate("Helo, helo world!! ...") == pytest.approx(1 / 3)    # distinct / tokens
    assert tp.typo_rate("   ") == 0.0


def test_spacy_universal_tags_and_vader():
    [tags] = tp.upos_tags(["Hi!! I can't find my keys :)"])
    assert "PUNCT" in tags and "PRON" in tags and set(tags) <= set(tp.UPOS_TAGS)
    assert len(tp.UPOS_TAGS) == 17 and tp.pos_hist(tags).sum() == len(tags)
    pos, neg = tp.vader_hist("I love this, great job"), tp.vader_hist("awful, I hate it")
    assert pos.sum() == pytest.approx(1.0, abs=0.01) and pos[2] > pos[0] and neg[0] > neg[2]


def test_two_level_mean_and_replay_stop_f1():
    mean, per = tp.two_level_mean([1.0, 3.0, 10.0], ["a", "a", "b"])
    assert per == {"a": 2.0, "b": 10.0} and mean == 6.0                      # pooled would be 4.67
    conv = ["a", "a", "a", "b", "b"]
    real = [False, False, True, False, True]
    sim = [True, False, True, False, True]
    pred = tp.replay_stop_predictions(conv, sim)
    assert pred == [True, False, False, False, True]       # a stops at its first predicted end
    # TP = 1 (b), FP = 1 (a first), FN = 1 (a last) → 2 / 4
    assert tp.f1_terminate(real, pred) == pytest.approx(0.5)


def test_gap_correlations():
    fid = {"s1": 0.1, "s2": 0.2, "s3": 0.3, "s4": 0.5}
    gaps = {"s1": 1.0, "s2": 2.0, "s3": 4.0, "s4": 8.0, "other": 0.0}
    r = tp.gap_correlations(fid, gaps)
    assert r["n"] == 4 and r["spearman"] == pytest.approx(1.0) and 0.9 < r["pearson"] < 1.0
    assert tp.gap_correlations({"s1": 0.1}, gaps)["spearman"] is None


class Echo:
    """Repeats the last user turn in capitals; ends after the second assistant turn."""

    name = "echo"

    def reply(self, episodes):
        out = []
        for ep in episodes:
            ends = ep.assistant_turns >= 2
            last = [m.content for m in ep.messages if m.role == "user"][-1]
            out.append(UserTurn("" if ends else last.upper(), ends=ends))
        return out


def test_paper_protocol_on_the_wildbench_sample(tmp_path):
    gaps = tmp_path / "gaps.json"
    cfg = tf.TurnFidelityConfig(real="wildbench:sample", simulator="echo", protocol="paper",
                                out=str(tmp_path / "out"), max_points=0, wb_gaps=str(gaps),
                                embedder="none")  # the MiniLM path is tested in test_fidelity_turn
    from corpora.wildbench import load_wildbench

    tasks = load_wildbench("sample")
    gaps.write_text(json.dumps({t.session_id: float(i) for i, t in enumerate(tasks)}))
    summary = tf.run(cfg, "cmd", simulator=Echo())
    counts, m = summary["counts"], summary["metrics"]
    # every task ends with the gpt-4 reference: one point per assistant turn, the last a real end
    n_points = sum(len(t.history) // 2 + 1 for t in tasks)
    assert counts["points"] == n_points and counts["tasks_without_reference"] == 0
    multi = [t for t in tasks if t.history]
    assert counts["pairs"] == sum(len(t.history) // 2 for t in multi)
    assert counts["conversations_with_pairs"] == len(multi)
    assert summary["protocol"] == "paper" and "sentiment_vader_js" in m and "pos_js" in m
    assert "embed_distance" not in m
    assert m["caps_js"] > 0.1                               # capitals vs mixed case
    rows = list(csv.DictReader((tmp_path / "out" / "per_session.csv").open()))
    assert len(rows) == len(tasks) and {"session_id", "points", "pairs", "caps_js"} <= set(rows[0])
    means = [float(r["caps_js"]) for r in rows if r["caps_js"]]
    assert m["caps_js"] == pytest.approx(sum(means) / len(means))            # two-level mean
    assert summary["wb_gap_correlations"]["caps_js"]["n"] == len(means)
    assert (tmp_path / "out" / "turn_fidelity.png").stat().st_size > 0


def test_paper_protocol_defaults_to_the_wildbench_conversations():
    cfg = tf.TurnFidelityConfig(simulator="echo", protocol="paper")
    assert cfg.real == "wildbench:allenai/WildBench"
    with pytest.raises(ValueError, match="--real"):
        tf.TurnFidelityConfig(simulator="echo")
    with pytest.raises(ValueError, match="protocol"):
        tf.TurnFidelityConfig(real="x.jsonl", simulator="echo", protocol="official")
