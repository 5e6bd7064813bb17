"""GRPO seam: batch layout and metrics by hand, the rollout_func contract, env_mask reaching TRL's
loss, and a 2-step training run on the tiny model that changes the parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from corpora.types import Episode, Task
from rewards.base import RewardResult
from simulators.base import UserTurn
from trainers.grpo import (EpisodeRollout, GRPOSettings, batch_layout, episode_metrics,
                           episode_reward_func, task_dataset)
from trainers.rollout import RolloutConfig

torch.set_num_threads(1)


class ScriptedSimulator:
    """Real opening; ends after the second assistant turn for even samples, else goes on."""

    name = "scripted"

    def open(self, episodes):
        return [ep.task.opening for ep in episodes]

    def reply(self, episodes):
        return [UserTurn("go on", ends=ep.sample % 2 == 0 and ep.assistant_turns >= 2)
                for ep in episodes]


class WordCountReward:
    """Fewer words in assistant turns = higher reward (varies within groups)."""

    name = "short"

    def score(self, episodes):
        out = []
        for ep in episodes:
            words = sum(len(m.content.split()) for m in ep.messages if m.role == "assistant")
            out.append(RewardResult(1.0 / (1.0 + words), {"words": words}))
        return out


TASKS = [Task(task_id=f"t{i}", intent=f"secret goal {i}", opening=f"hello please help with {i}")
         for i in range(4)]


def test_batch_layout_published_recipe_on_8_processes():
    s = GRPOSettings(prompts_per_step=64, num_generations=5, minibatch_prompts=16,
                     per_device_batch_size=2)
    layout = batch_layout(s, num_processes=8)
    # 16 prompts × 5 = 80 episodes per update; 2 × 8 = 16 per micro-step -> 5 accumulation steps
    assert (layout.gradient_accumulation, layout.generation_batch_size, layout.updates_per_step) == (5, 320, 4)
    twice = GRPOSettings(prompts_per_step=4, num_generations=4, per_device_batch_size=4,
                         num_iterations=2)
    assert batch_layout(twice, 1).updates_per_step == 2  # each rollout is optimised on twice


def test_batch_layout_rejects_uneven_micro_batches():
    with pytest.raises(ValueError, match="per_device_batch_size"):
        batch_layout(GRPOSettings(prompts_per_step=4, num_generations=3, per_device_batch_size=5), 1)
    with pytest.raises(ValueError, match="minibatch_prompts"):
        GRPOSettings(prompts_per_step=6, minibatch_prompts=4)
    with pytest.raises(ValueError, match="num_generations"):
        GRPOSettings(num_generations=1)


def test_partitioned_generation_is_refused_with_vllm():
    with pytest.raises(ValueError, match="ds3_gather_for_generation false needs grpo.use_vllm false"):
        GRPOSettings(use_vllm=True, ds3_gather_for_generation=False)
    from foundation.config import parse_config
    from trainers.train_rl import TrainRLConfig, grpo_args

    cfg = parse_config(TrainRLConfig, ["--grpo.ds3_gather_for_generation", "false", "--cpu", "true"])
    args = grpo_args(cfg, batch_layout(cfg.grpo, 1), Path(cfg.out), True)
    assert args.ds3_gather_for_generation is False  # reaches TRL (and so policy_engine)


def test_episode_metrics_by_hand():
    records = [
        {"reward": 1.0, "end_reason": "user_ended", "sim_details": {"json_fallbacks": 2},
         "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
         "tokens": {"prompt": 10, "completion": 6, "policy": 4}},
        {"reward": 0.0, "end_reason": "turn_cap", "sim_details": {},
         "messages": [{"role": "assistant", "content": "b"}] * 3,
         "tokens": {"prompt": 10, "completion": 20, "policy": 12}},
    ]
    m = episode_metrics(records)
    assert m["reward/mean"] == 0.5 and m["reward/std"] == 0.5
    assert (m["reward/min"], m["reward/max"]) == (0.0, 1.0)
    assert m["sim/turns"] == 2.0 and m["sim/json_fallbacks"] == 1.0
    assert m["episode/end_user_ended"] == 0.5 and m["episode/end_length_cap"] == 0.0
    assert m["tokens/policy_mean"] == 8.0 and m["tokens/episode_mean"] == 23.0


def test_component_metrics_by_hand(tmp_path):
    from trainers.grpo import component_metrics
    from trainers.runlog import component_series, plot_reward_curve

    details = [
        {"components": {"length": {"value": 1.0, "weight": 0.5, "excluded": False},
                        "judge": {"value": 0.6, "weight": 0.5, "excluded": False}}},
        {"components": {"length": {"value": 0.5, "weight": 0.5, "excluded": False},
                        "judge": {"value": 0.0, "weight": 0.5, "excluded": True}}},
        {"judges": []},  # not a weighted reward: no components
    ]
    m = component_metrics(details)
    assert m == {"reward/component/length": 0.75, "reward/component/judge": 0.6}
    rows = [{"step": 1, "reward/mean": 0.5, **m}, {"step": 2, "reward/mean": 0.7,
                                                   "reward/component/length": 0.9}]
    assert component_series(rows) == {"length": ([1, 2], [0.75, 0.9]), "judge": ([1], [0.6])}
    assert plot_reward_curve(rows, tmp_path / "curve.png").stat().st_size > 0


def test_prompts_map_back_to_tasks_with_groups_and_samples():
    rollout = EpisodeRollout(TASKS, ScriptedSimulator(), RolloutConfig())
    eps = rollout.episodes_for(["t1", "t1", "t3", "t3"], step=7)
    assert [(e.task.task_id, e.group_id, e.sample) for e in eps] == [
        ("t1", "7:t1", 0), ("t1", "7:t1", 1), ("t3", "7:t3", 0), ("t3", "7:t3", 1)]
    with pytest.raises(KeyError, match="not a task id"):
        rollout.episodes_for(["nope"], step=0)
    with pytest.raises(ValueError, match="unique"):
        task_dataset([TASKS[0], TASKS[0]])


def test_reward_function_scores_episodes_and_keeps_details():
    seen = []
    fn = episode_reward_func(WordCountReward(), lambda eps, s: seen.append(len(eps)))
    eps = [Episode(task=TASKS[0], simulator="s"), Episode(task=TASKS[1], simulator="s")]
    eps[0].messages = [type("M", (), {"role": "assistant", "content": "one two"})()]
    values = fn(prompts=["t0", "t1"], completions=["", ""], episodes=eps)
    assert values == [1 / 3, 1.0] and eps[0].reward_details == {"words": 2}
    assert fn.__name__ == "short" and seen == [2]


@pytest.fixture(scope="module")
def trainer_parts(tiny_model_dir, tmp_path_factory):
    from transformers import AutoTokenizer

    from trainers.train_rl import TrainRLConfig
    from foundation.config import from_dict

    out = tmp_path_factory.mktemp("grpo")
    cfg = from_dict(TrainRLConfig, {
        "policy": {"model": str(tiny_model_dir), "lora": {"enabled": False}},
        "rollout": {"max_turns": 3, "max_tokens": 6}, "out": str(out), "cpu": True,
        "grpo": {"steps": 2, "prompts_per_step": 2, "num_generations": 2,
                 "per_device_batch_size": 2, "learning_rate": 1e-2}})
    return cfg, AutoTokenizer.from_pretrained(str(tiny_model_dir))


def test_env_mask_reaches_the_loss_mask(trainer_parts):
    from trl import GRPOTrainer

    from trainers.train_rl import grpo_args

    cfg, tok = trainer_parts
    rollout = EpisodeRollout(TASKS, ScriptedSimulator(), cfg.rollout)
    trainer = GRPOTrainer(model=cfg.policy.model, reward_funcs=[episode_reward_func(WordCountReward())],
                          args=grpo_args(cfg, batch_layout(cfg.grpo, 1), Path(cfg.out), True),
                          train_dataset=task_dataset(TASKS), processing_class=tok,
                          rollout_func=rollout)
    inputs = [{"prompt": t, "task_id": t} for t in ("t0", "t0", "t1", "t1")]
    batch = trainer._generate_and_score_completions(inputs)
    episodes = rollout.last.episodes
    assert [e.group_id for e in episodes] == ["0:t0", "0:t0", "0:t1", "0:t1"]
    loss_mask = batch["completion_mask"] * batch["tool_mask"]
    for row, ep in enumerate(episodes):
        n = len(ep.tokens.completion_ids)
        assert batch["completion_ids"][row, :n].tolist() == ep.tokens.completion_ids
        assert loss_mask[row, :n].tolist() == ep.tokens.env_mask  # simulator/glue tokens excluded
        assert loss_mask[row, n:].sum() == 0                     # padding excluded
        assert 0 < sum(ep.tokens.env_mask) < n                    # both kinds of token present
    assert all(e.reward is not None for e in episodes)


def test_two_grpo_steps_change_parameters_and_write_run_files(trainer_parts, tiny_model_dir):
    from safetensors.torch import load_file

    from trainers.train_rl import run_training

    cfg, _ = trainer_parts
    result = run_training(cfg, tasks=TASKS, simulator=ScriptedSimulator(), reward=WordCountReward())
    before = load_file(str(tiny_model_dir / "model.safetensors"))
    after = load_file(str(result.final_dir / "model.safetensors"))
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "no parameter changed after two GRPO steps"
    out = result.out_dir
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "reward/mean" in r]
    assert [r["step"] for r in train_rows] == [0, 1]
    assert {"loss/total", "timing/rollout_s", "sim/turns", "episode/end_turn_cap"} <= set(train_rows[0])
    records = [json.loads(x) for x in (out / "transcripts.jsonl").read_text().splitlines()]
    assert len(records) == 2 * 2 * 2 and all(r["reward"] is not None for r in records)
    assert "secret goal" in (out / "transcripts.html").read_text()
    assert (out / "reward_curve.png").stat().st_size > 0 and (out / "config.yaml").exists()
    assert len(result.rewards) == 2
