"""Simulator quality metrics against hand-computed values, and an untuned-vs-tuned comparison on a
tiny model."""

from __future__ import annotations

import math

import pytest
import torch

from corpora.types import Message, Task
from eval.simulator_quality import (compare_simulators, decision_points, f1_score, perplexity,
                                    score_example, turn_starts)
from simulators.flipped import IGNORE, FlippedExample

torch.set_num_threads(1)
X = IGNORE


def test_perplexity_by_hand():
    assert perplexity(3 * math.log(4), 3) == pytest.approx(4.0)
    assert perplexity(0.0, 5) == 1.0
    with pytest.raises(ValueError, match="zero tokens"):
        perplexity(1.0, 0)


def test_f1_by_hand():
    r = f1_score([True, False, True, False, True], [True, True, False, False, True])
    assert (r.tp, r.fp, r.fn) == (2, 1, 1)
    assert (r.precision, r.recall, r.f1) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    none = f1_score([False, False], [True, False])
    assert (none.precision, none.recall, none.f1) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        f1_score([True], [True, False])


def test_decision_points_by_hand():
    end = 9
    labels = [X, X, 5, 6, X, X, 7, 2, X, X, end, 2, X]
    assert turn_starts(labels) == [2, 6, 10]
    assert decision_points(labels, end) == ([6, 10], [False, True])


def test_score_example_by_hand():
    # vocabulary of 3, end token id 2; tokens 0 | 1 | 0 | 2 | 0 with labels X, 1, X, 2, X:
    # a user turn [1], masked glue, then the end turn [2] (a decision point at position 3)
    probs = torch.tensor([[0.2, 0.5, 0.3],   # predicts token 1 (p=0.5)
                          [0.6, 0.2, 0.2],   # predicts token 2 position (masked)
                          [0.1, 0.1, 0.8],   # predicts token 3 = end (p=0.8): decision point
                          [0.3, 0.3, 0.4],   # predicts token 4 (masked)
                          [1 / 3, 1 / 3, 1 / 3]])
    ex = FlippedExample(input_ids=[0, 1, 0, 2, 0], labels=[X, 1, X, 2, X])
    nll, n, p_end, gold = score_example(probs.log(), ex, end_id=2)
    assert n == 2
    assert nll == pytest.approx(-math.log(0.5) - math.log(0.8))
    assert p_end == pytest.approx([0.8]) and gold == [True]


def test_fine_tuning_lowers_perplexity_of_real_user_turns(tiny_model_dir, tmp_path):
    from trainers.sft import LoraOptions, SimulatorTrainConfig, train_simulator

    intent = "You are a user chatting with an assistant language model to get a poem."
    conv = (Message("user", "please help me write a poem"), Message("assistant", "sure here"),
            Message("user", "make it shorter"), Message("assistant", "ok"))
    tasks = [Task(f"t{i}", intent, conv[0].content, conv) for i in range(8)]
    cfg = SimulatorTrainConfig(model=f"hf:{tiny_model_dir}", out=str(tmp_path / "sim"), max_steps=12,
                               learning_rate=1e-2, min_learning_rate=0.0, warmup_ratio=0.0,
                               global_batch_size=4, per_device_batch_size=4, cpu=True,
                               lora=LoraOptions(enabled=True))
    train_simulator(cfg, tasks)
    scores = compare_simulators(f"hf:{tiny_model_dir}", str(tmp_path / "sim"), tasks[:2])
    untuned, tuned = scores["untuned"], scores["tuned"]
    assert untuned.tokens == tuned.tokens > 0 and untuned.conversations == 2
    assert tuned.perplexity < untuned.perplexity
    assert tuned.termination.tp + tuned.termination.fn == 2  # one real ending per conversation
    assert tuned.mean_p_end_at_end > untuned.mean_p_end_at_end
