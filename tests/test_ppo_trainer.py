"""PPO: token-level rewards of a hand-built 3-turn episode, the token batch, and 2-step training
on the tiny model (policy and value head change; every output written; resume from a checkpoint)."""

from __future__ import annotations

import json

import pytest
import torch

from corpora.types import Episode, Message, Task, TokenView
from rewards.base import RewardResult
from simulators.base import UserTurn
from trainers.ppo import PPOSettings, episode_token_rewards, step_tasks, token_batch

torch.set_num_threads(1)


def three_turn_episode() -> Episode:
    """Prompt [1, 2, 3]; completion = turn 1 [10, 11, EOS=2] + glue/user [5, 6, 7, 8]
    + turn 2 [12, 2] + glue/user [5, 6] + turn 3 [13, 14] (cut by max_tokens)."""
    view = TokenView(prompt_ids=[1, 2, 3])
    view.extend([10, 11, 2], generated=True, logprobs=[-1.0, -1.0, -1.0])
    view.extend([5, 6, 7, 8], generated=False)
    view.extend([12, 2], generated=True, logprobs=[-1.0, -1.0])
    view.extend([5, 6], generated=False)
    view.extend([13, 14], generated=True, logprobs=[-1.0, -1.0])
    msgs = [Message("user", "u0"), Message("assistant", "a1"), Message("user", "u1"),
            Message("assistant", "a2"), Message("user", "u2"), Message("assistant", "a3")]
    return Episode(task=Task(task_id="t", intent="i"), simulator="s", messages=msgs, tokens=view,
                   end_reason="turn_cap")


def test_three_turn_episode_rewards_at_every_position():
    ep = three_turn_episode()
    short = Episode(task=Task(task_id="u", intent="i"), simulator="s",
                    tokens=TokenView(prompt_ids=[1, 2, 3, 4, 5]))
    short.tokens.extend([20, 2], generated=True, logprobs=[-1.0, -1.0])
    batch = token_batch([ep, short], pad_id=0)
    #            t1: 10 11 EOS  glue/user     t2: 12 EOS  glue   t3: 13 14
    mask_row0 = [1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1]
    assert batch.mask[0].tolist() == mask_row0
    assert batch.mask[1].tolist() == [1, 1] + [0] * 11  # padding is mask 0
    # completion token i is predicted from absolute position P + i − 1
    assert batch.positions[0, :3].tolist() == [2, 3, 4] and batch.positions[1, :2].tolist() == [4, 5]
    assert batch.input_ids[1].tolist() == [1, 2, 3, 4, 5, 20, 2] + [0] * 9
    kl = torch.full((2, 13), 0.5) * batch.mask
    rewards = episode_token_rewards([ep, short], batch, torch.tensor([1.0, 3.0]),
                                    [[0.2, 0.4, 0.6], [0.7]], kl, kl_coef=0.1)
    k = -0.05  # −kl_coef · 0.5 on every generated token
    expected0 = [k, k, k + 0.2, 0, 0, 0, 0, k, k + 0.4, 0, 0, k, k + 0.6 + 1.0]
    assert torch.allclose(rewards[0], torch.tensor(expected0))
    assert torch.allclose(rewards[1], torch.tensor([k, k + 0.7 + 3.0] + [0.0] * 11))
    # an excluded episode's row gets nothing at all
    masked = token_batch([ep, short], pad_id=0, excluded=[True, False])
    none = episode_token_rewards([ep, short], masked, torch.tensor([0.0, 3.0]),
                                 [[0.2, 0.4, 0.6], [0.7]], kl * masked.mask, 0.1)
    assert none[0].abs().sum() == 0 and torch.allclose(none[1], rewards[1])


def test_settings_layout_and_task_dealing():
    s = PPOSettings(prompts_per_step=4, samples_per_prompt=2, minibatch_size=2)
    assert s.episodes_per_process(2) == 4
    with pytest.raises(ValueError, match="minibatch_size"):
        PPOSettings(prompts_per_step=3, samples_per_prompt=1, minibatch_size=2).episodes_per_process(1)
    with pytest.raises(ValueError, match="multiple of the 3 processes"):
        s.episodes_per_process(3)
    with pytest.raises(ValueError, match="target_kl"):
        PPOSettings(target_kl=0.1, kl_coef=0.0)
    tasks = [Task(task_id=f"t{i}", intent="i") for i in range(3)]
    ranks = [step_tasks(tasks, s, 0, 7, r, 2) for r in range(2)]
    both = [(t.task_id, k) for part in ranks for t, k in part]
    assert len(both) == 8 and [k for _, k in both] == [0, 1] * 4
    ids = [t for t, _ in both[::2]]
    assert len(set(ids[:3])) == 3  # a shuffled pass over the data before any task repeats


class ScriptedSimulator:
    """Real opening; every episode gets two assistant turns (the turn cap ends it)."""

    name = "scripted"

    def open(self, episodes):
        return [ep.task.opening for ep in episodes]

    def reply(self, episodes):
        return [UserTurn("tell me more", ends=False) for _ in episodes]


class ShortReward:
    """1 / (1 + generated tokens); the second episode's result is unmeasurable (excluded)."""

    name = "short"

    def score(self, episodes):
        return [RewardResult(1.0 / (1.0 + sum(ep.tokens.env_mask)), {}, excluded=(i == 1))
                for i, ep in enumerate(episodes)]


def _config(tiny_model_dir, out, **ppo):
    from trainers.train_ppo import TrainPPOConfig
    from foundation.config import from_dict

    settings = {"steps": 2, "prompts_per_step": 2, "samples_per_prompt": 2, "minibatch_size": 2,
                "ppo_epochs": 1, "learning_rate": 5e-3, "kl_coef": 0.05, **ppo}
    return from_dict(TrainPPOConfig, {
        "policy": {"model": str(tiny_model_dir), "lora": {"enabled": True, "r": 4, "alpha": 8}},
        "rollout": {"max_turns": 2, "max_tokens": 5, "max_total_tokens": 256},
        "ppo": settings, "out": str(out), "seed": 3, "cpu": True, "threads": 1, "save_every": 1})


def _lora_and_head(final):
    from safetensors.torch import load_file

    return load_file(str(final / "adapter_model.safetensors")), torch.load(final / "value_head.pt")


def test_two_ppo_steps_change_policy_and_value_head_and_write_outputs(tiny_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from trainers.train_ppo import latest_checkpoint, run_training

    tasks = [Task(task_id=f"t{i}", intent=f"goal {i}", opening=f"hello help with {i}")
             for i in range(3)]
    cfg = _config(tiny_model_dir, tmp_path / "run")
    result = run_training(cfg, tasks=tasks, simulator=ScriptedSimulator(), reward=ShortReward())
    out = result.out_dir
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1]
    for key in ("ppo/value_loss", "ppo/policy_loss", "ppo/clipfrac", "ppo/approx_kl",
                "ppo/explained_variance", "ppo/entropy", "ppo/kl_ref", "reward/mean",
                "timing/rollout_s", "timing/update_s", "timing/values_s"):
        assert key in rows[0], key
    assert all(r["ppo/excluded_episodes"] == 1.0 for r in rows)
    records = [json.loads(x) for x in (out / "transcripts.jsonl").read_text().splitlines()]
    assert len(records) == 8 and all(r["end_reason"] == "turn_cap" for r in records)
    unmeasured = [r for r in records if r["reward"] is None]
    assert len(unmeasured) == 2 and all(r["reward_details"]["excluded"] for r in unmeasured)
    assert (out / "transcripts.html").exists() and (out / "reward_curve.png").exists()
    assert "samples_per_prompt" in (out / "config.yaml").read_text()
    assert latest_checkpoint(out).name == "step-1"
    # the final adapter differs from LoRA's zero init and the value head from its first save
    lora, head = _lora_and_head(out / "final")
    assert any(k.endswith("lora_B.weight") and v.abs().sum() > 0 for k, v in lora.items())
    from safetensors.torch import load_file

    step0 = load_file(str(out / "checkpoints" / "step-0" / "model.safetensors"))
    assert not torch.allclose(step0["value_head.weight"], head["weight"])
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    PeftModel.from_pretrained(base, str(out / "final"))  # the adapter loads

    # resume: a third step continues from step-1 (state restored, rewards kept)
    cfg3 = _config(tiny_model_dir, out, steps=3)
    cfg3.resume = "auto"
    again = run_training(cfg3, tasks=tasks, simulator=ScriptedSimulator(), reward=ShortReward())
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2] and len(again.rewards) == 3
    assert latest_checkpoint(out).name == "step-2"


class TurnReward:
    """Terminal 0.9; turn k of an episode scores 0.1·(k + 1)."""

    name = "turns"

    def score(self, episodes):
        return [RewardResult(0.9) for _ in episodes]

    def turn_scores(self, episodes):
        return [[0.1 * (k + 1) for k, m in enumerate(m for m in ep.messages if m.role == "assistant")]
                for ep in episodes]


def test_turn_rewards_replace_the_terminal_reward():
    from types import SimpleNamespace

    from trainers.ppo import PPOTrainer

    tok = SimpleNamespace(pad_token_id=0)

    def trainer(reward, **settings):
        return PPOTrainer(accelerator=None, model=None, optimizer=None, tokenizer=tok,
                          settings=PPOSettings(**settings), rollout=None, simulator=None,
                          reward=reward, tasks=[], runlog=None)

    ep = three_turn_episode()
    terminal, excluded, turns = trainer(TurnReward(), turn_rewards=True).score([ep])
    assert terminal.tolist() == [0.0] and turns == [[0.1, 0.2, pytest.approx(0.3)]]
    assert ep.reward == 0.9 and excluded == [False]  # still logged
    terminal, _, turns = trainer(TurnReward()).score([ep])
    assert terminal.tolist() == [pytest.approx(0.9)] and turns is None
    with pytest.raises(ValueError, match="turn_scores"):
        trainer(ShortReward(), turn_rewards=True)


def test_demo_ppo_stage_is_optional():
    from wildsim.demo import DemoConfig

    assert "ppo" not in DemoConfig().stages
    assert DemoConfig(stages=["rl", "ppo"]).stages == ["rl", "ppo"]
    with pytest.raises(ValueError, match="unknown stage"):
        DemoConfig(stages=["pp"])


def test_positioned_pass_matches_the_full_pass_with_and_without_the_adapter(tiny_model_dir):
    """PolicyValueModel.forward with positions (logits only where completion tokens are
    predicted) gives the full pass's logits and values at those positions; the reference pass
    (adapter disabled) likewise; a minibatch cut to its own length changes nothing."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from trainers.ppo import PolicyValueModel, causal_logits, completion_terms, pick, reference_policy

    torch.manual_seed(0)
    policy = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    policy = get_peft_model(policy, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                               init_lora_weights=False))
    model = PolicyValueModel(policy, head_init="normal").eval()  # values that are not all 0
    ep, short = three_turn_episode(), Episode(task=Task(task_id="u", intent="i"), simulator="s",
                                              tokens=TokenView(prompt_ids=[1, 2, 3, 4, 5]))
    short.tokens.extend([20, 2], generated=True, logprobs=[-1.0, -1.0])
    batch = token_batch([short, ep], pad_id=0)
    with torch.no_grad():
        full_logits, full_values = model(batch.input_ids, batch.attention_mask)
        logits, values = model(batch.input_ids, batch.attention_mask, batch.positions)
        assert logits.shape[:2] == batch.positions.shape and values.shape == batch.positions.shape
        torch.testing.assert_close(logits, pick(full_logits, batch.positions), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(values, full_values.gather(1, batch.positions), rtol=1e-4, atol=1e-4)
        logp, vals, _ = completion_terms(logits, values, batch)
        logp_full, vals_full, _ = completion_terms(full_logits, full_values, batch)
        torch.testing.assert_close(logp, logp_full, rtol=1e-4, atol=1e-4)
        with reference_policy(model, None) as ref:
            ref_full = pick(ref(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits,
                            batch.positions)
            ref_pos = causal_logits(ref, batch.input_ids, batch.attention_mask, batch.positions)
        torch.testing.assert_close(ref_pos, ref_full, rtol=1e-4, atol=1e-4)
        assert not torch.allclose(ref_pos, logits, atol=1e-3)  # the adapter was really off
        sub = batch.rows(torch.tensor([0]))  # the short episode alone: 7 tokens, not 17
        assert sub.input_ids.shape[1] == 7
        sub_logits, sub_values = model(sub.input_ids, sub.attention_mask, sub.positions)
        torch.testing.assert_close(completion_terms(sub_logits, sub_values, sub)[0][0, :2],
                                   logp[0, :2], rtol=1e-4, atol=1e-4)


def test_single_whole_batch_update_reuses_the_values_pass(tiny_model_dir, tmp_path):
    """ppo_epochs 1 with the whole batch as one minibatch: the values pass is the update's forward
    (PPOTrainer.single_update), so the ratio is exactly 1 (no clipping, zero approx KL) and the
    one update still moves the adapter and the value head."""
    from trainers.train_ppo import run_training

    tasks = [Task(task_id=f"t{i}", intent=f"goal {i}", opening=f"hello help with {i}")
             for i in range(3)]
    cfg = _config(tiny_model_dir, tmp_path / "run", steps=1, minibatch_size=4, ppo_epochs=1)
    cfg.save_every = 0
    result = run_training(cfg, tasks=tasks, simulator=ScriptedSimulator(), reward=ShortReward())
    row = json.loads((result.out_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert row["ppo/clipfrac"] == 0.0 and abs(row["ppo/approx_kl"]) < 1e-6
    assert row["ppo/grad_norm"] > 0
    lora, head = _lora_and_head(result.out_dir / "final")
    assert any(k.endswith("lora_B.weight") and v.abs().sum() > 0 for k, v in lora.items())
    assert head["bias"].abs().sum() > 0  # the head's bias starts at zero


def test_value_head_init_and_the_critics_own_learning_rate(tiny_model_dir, tmp_path):
    """A zero-initialised head values every state 0 (the first advantages are then the returns);
    the normal init does not; the value head (and only it) sits in the optimizer's param group
    with ppo.value_learning_rate, the adapters in the policy's group with ppo.learning_rate."""
    from accelerate import Accelerator

    from trainers.ppo import PolicyValueModel
    from trainers.train_ppo import _prepare, build_model

    torch.manual_seed(0)
    batch = token_batch([three_turn_episode()], pad_id=0)
    cfg = _config(tiny_model_dir, tmp_path / "run", learning_rate=1e-3, value_learning_rate=3e-5)
    model, ref = build_model(cfg, str(tiny_model_dir))
    assert ref is None and cfg.ppo.value_head_init == "zero"
    with torch.no_grad():
        _, values = model(batch.input_ids, batch.attention_mask, batch.positions)
        assert values.abs().max() == 0
        cfg.ppo.value_head_init = "normal"
        _, noisy = build_model(cfg, str(tiny_model_dir))[0](batch.input_ids, batch.attention_mask,
                                                            batch.positions)
        assert noisy.abs().max() > 0
    with pytest.raises(ValueError, match="zero' or 'normal"):
        PolicyValueModel(model.policy, head_init="uniform")
    with pytest.raises(ValueError, match="value_learning_rate"):
        PPOSettings(value_learning_rate=0.0)
    prepared, optimizer = _prepare(cfg, Accelerator(cpu=True), model)
    head = {id(p) for p in prepared.value_head.parameters()}
    groups = [(g["lr"], {id(p) for p in g["params"]}) for g in optimizer.param_groups]
    assert [lr for lr, _ in groups] == [1e-3, 3e-5]
    assert groups[1][1] == head and not groups[0][1] & head
    trainable = {id(p) for p in prepared.parameters() if p.requires_grad}
    assert groups[0][1] | groups[1][1] == trainable  # every LoRA weight in the policy's group
    cfg.ppo.value_learning_rate = None  # None: the critic takes the policy's rate
    assert [g["lr"] for g in _prepare(cfg, Accelerator(cpu=True), build_model(
        cfg, str(tiny_model_dir))[0])[1].param_groups] == [1e-3, 1e-3]
