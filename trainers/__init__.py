"""trainers: the multi-turn rollout engine, GRPO training (TRL) and simulator fine-tuning.

- rollout.run_rollout(episodes, policy, simulator, RolloutConfig) plays conversations in lockstep
  (one batched policy call and one batched simulator call per turn) and builds each episode's
  token view; make_policy(engine) adapts a TokenEngine (training) or a ChatEngine (evaluation).
- train_rl.run_training(config) -> RunResult: GRPO against a user simulator (also the entry
  script `accelerate launch trainers/train_rl.py --config ...` and `wildsim train rl`).
- train_simulator / sft: fine-tune a user simulator on flipped human conversations.
Depends on every layer below (corpora, engines, simulators, rewards).
"""
