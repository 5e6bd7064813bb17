"""Thread count of training and the demo: torch's default unless --threads sets it; never a guess
from an instantaneous load reading."""

import torch

from trainers.train_rl import TrainRLConfig, choose_threads
from foundation.config import parse_config
from wildsim.demo import DemoConfig


def test_zero_keeps_torch_default_and_n_sets_it():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert choose_threads(0) == 2  # 0 leaves whatever torch has
        assert choose_threads(1) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_threads_flag_reaches_both_configs():
    assert parse_config(TrainRLConfig, ["--threads", "3"]).threads == 3
    assert parse_config(DemoConfig, ["--threads", "2"]).threads == 2
    assert parse_config(TrainRLConfig, []).threads == 0
