"""Benchmark one PPO step against one GRPO step: same tiny model, batch and episodes.

A tiny random chat model (engines.tiny, LoRA) is the policy; a scripted simulator that answers
instantly plays the user for `--turns` assistant turns; a rule reward (length_band) scores. Each
trainer runs `--steps` steps (the first includes warm-up) in its own subprocess, so each peak RSS
is that trainer's alone, with 2 tasks × 4 episodes per step and one optimisation pass:
- GRPO: trainers/train_rl.run_training (TRL's GRPOTrainer, num_generations 4);
- PPO:  trainers/train_ppo.run_training (value head, reference pass through the disabled adapter).
It prints, per trainer, the wall time of each phase of the LAST step (PPO: rollout, score, values,
advantages, update, log; GRPO: rollout, reward and TRL's whole step, which holds the rollout and
the update), the total wall time, and the peak RSS.

Run:
    python benchmarks/ppo.py [--steps 2 --turns 2 --max-tokens 16 --hidden 64 --threads 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpora.types import Task  # noqa: E402
from simulators.base import UserTurn  # noqa: E402

REWARD = {"kind": "rule", "rule": "length_band", "lo": 3, "hi": 12}


class InstantSimulator:
    """Opens with the task's opening and always asks for more, at no cost."""

    name = "instant"

    def open(self, episodes):
        return [ep.task.opening for ep in episodes]

    def reply(self, episodes):
        return [UserTurn("please go on", ends=False) for _ in episodes]


def _common(args: argparse.Namespace, model: str, out: str) -> dict:
    return {"policy": {"model": model, "lora": {"enabled": True, "r": 8, "alpha": 16}},
            "rollout": {"max_turns": args.turns, "max_tokens": args.max_tokens,
                        "max_total_tokens": 1024},
            "reward": REWARD, "out": out, "seed": 0, "cpu": True, "threads": args.threads}


def run_one(which: str, args: argparse.Namespace, model: str, out: str) -> dict:
    """Train `which` for args.steps steps in this process; return its last step's phases."""
    import resource

    from rewards import build_reward
    from foundation.config import from_dict

    tasks = [Task(task_id=f"t{i}", intent="help", opening=f"hello, help me with thing {i}")
             for i in range(4)]
    cfg_dict = _common(args, model, out)
    if which == "ppo":
        from trainers.train_ppo import TrainPPOConfig, run_training

        cfg = from_dict(TrainPPOConfig, {**cfg_dict, "ppo": {
            "steps": args.steps, "prompts_per_step": 2, "samples_per_prompt": 4,
            "minibatch_size": 4, "ppo_epochs": 1, "learning_rate": 1e-3, "kl_coef": 0.01}})
    else:
        from trainers.train_rl import TrainRLConfig, run_training

        cfg = from_dict(TrainRLConfig, {**cfg_dict, "grpo": {
            "steps": args.steps, "prompts_per_step": 2, "num_generations": 4,
            "per_device_batch_size": 4, "learning_rate": 1e-3}})
    result = run_training(cfg, tasks=tasks, simulator=InstantSimulator(), reward=build_reward(REWARD))
    rows = [json.loads(x) for x in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if r["step"] == args.steps - 1]
    phases = {k: v for r in last for k, v in r.items() if k.startswith("timing/")
              or k == "trl/step_time"}
    return {"trainer": which, "wall_s": round(result.wall_s, 2), "phases_last_step_s":
            {k: round(v, 3) for k, v in phases.items()},
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2, help="steps per trainer (last is reported)")
    parser.add_argument("--turns", type=int, default=2, help="assistant turns per episode")
    parser.add_argument("--max-tokens", type=int, default=16, help="policy tokens per turn")
    parser.add_argument("--hidden", type=int, default=64, help="hidden size of the tiny model")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per trainer")
    parser.add_argument("--model", default=None, help="a model folder instead of the tiny model")
    parser.add_argument("--only", choices=["ppo", "grpo"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:  # the child process: one trainer
        print(json.dumps(run_one(args.only, args, args.model, args.out)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from engines.tiny import build_tiny_model

            model = str(build_tiny_model(Path(tmp) / "tiny", hidden=args.hidden))
        for which in ("grpo", "ppo"):
            cmd = [sys.executable, __file__, "--only", which, "--model", model, "--out",
                   str(Path(tmp) / which), "--steps", str(args.steps), "--turns", str(args.turns),
                   "--max-tokens", str(args.max_tokens), "--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode:
                raise SystemExit(f"{which} failed:\n{proc.stderr[-3000:]}")
            print(proc.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
