"""Train an assistant with multi-turn PPO (a critic, optional turn-level rewards) against a simulator.

Run (any of):
    accelerate launch --config_file configs/accelerate/cpu.yaml trainers/train_ppo.py \\
        --config configs/experiments/ppo_demo_cpu.yaml [--ppo.steps 4 …]
    accelerate launch --use_deepspeed --zero_stage 2 --num_processes 2 --mixed_precision no \\
        trainers/train_ppo.py --config …
    wildsim train ppo --config configs/experiments/ppo_demo_cpu.yaml
Every field of TrainPPOConfig is a `--section.field value` flag (`--help` lists them with help).

What it does: loads tasks, the simulator and the reward exactly as `wildsim train rl` does
(trainers/train_rl.py), builds the policy (LoRA or full fine-tuning) with its critic
(trainers/ppo.PolicyValueModel), and runs PPO steps (trainers/ppo.PPOTrainer). The output
directory receives config.yaml, metrics.jsonl, transcripts.jsonl, transcripts.html,
reward_curve.png, checkpoints/step-N/ (every save_every steps: accelerate state = weights or
adapter, value head, optimizer, RNG; trainer_state.json = step and KL coefficient) and final/
(the LoRA adapter or full model with its tokenizer, and value_head.pt). `--resume auto` continues
from the newest complete checkpoint in the output directory; `--resume PATH` from that one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, Sequence  # noqa: E402

from corpora.types import Task  # noqa: E402
from trainers.ppo import PolicyValueModel, PPOSettings, PPOTrainer  # noqa: E402
from trainers.rollout import RolloutConfig  # noqa: E402
from trainers.runlog import RunLog  # noqa: E402
from trainers.train_rl import (DEFAULT_REWARD, DataSection, PolicySection, RunResult,  # noqa: E402
                               SimulatorSection, _cap_simulator_tokens, _engine_loader,
                               _peft_config, choose_threads, load_tasks, policy_model_dir)
from foundation.config import ConfigError, option, parse_config, save_config  # noqa: E402

STATE_FILE = "trainer_state.json"


@dataclass
class TrainPPOConfig:
    """Multi-turn PPO training of an assistant against a user simulator."""

    policy: PolicySection = option(default_factory=PolicySection, help="the policy model")
    simulator: SimulatorSection = option(default_factory=SimulatorSection, help="who plays the user")
    reward: dict[str, Any] = option(dict(DEFAULT_REWARD), help="reward config for "
                                    "rewards.build_reward: {kind: judge|rule|weighted|multiturn, ...}")
    data: DataSection = option(default_factory=DataSection, help="where tasks come from")
    rollout: RolloutConfig = option(default_factory=RolloutConfig, help="how episodes are played")
    ppo: PPOSettings = option(default_factory=PPOSettings, help="PPO optimisation")
    out: str = option("runs/train_ppo", help="output directory of the run")
    seed: int = option(42, help="seed for data order, sampling and the simulator")
    save_every: int = option(0, help="save a checkpoint every N PPO steps (0 = final model only)")
    resume: str | None = option(None, help="continue a run: 'auto' = the newest complete "
                                "checkpoint under out/checkpoints (none: start fresh), or a "
                                "checkpoint folder")
    cpu: bool | None = option(None, help="train on CPU (None = when no GPU is visible)")
    html_max_episodes: int = option(400, help="episodes shown in transcripts.html (the latest)")
    threads: int = option(0, help="torch CPU threads of this process; 0 = auto (see train rl)")

    def __post_init__(self) -> None:
        if self.save_every < 0 or self.threads < 0:
            raise ValueError("save_every and threads must be >= 0 (0 = off/default)")
        if not isinstance(self.reward, dict) or "kind" not in self.reward:
            raise ValueError("reward must be a mapping with a kind, e.g. "
                             "{kind: rule, rule: length_band, lo: 8, hi: 25}")


def latest_checkpoint(out: Path) -> Path | None:
    """The checkpoint with the highest step under out/checkpoints that has its state file (a
    checkpoint is complete once trainer_state.json is written, last)."""
    done = [p for p in (out / "checkpoints").glob("step-*") if (p / STATE_FILE).is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def resume_dir(cfg: TrainPPOConfig) -> Path | None:
    if cfg.resume is None:
        return None
    if cfg.resume == "auto":
        return latest_checkpoint(Path(cfg.out))
    path = Path(cfg.resume)
    if not (path / STATE_FILE).is_file():
        raise ConfigError(f"resume: {path} is not a complete checkpoint (no {STATE_FILE}); pass a "
                          "checkpoints/step-N folder or 'auto'")
    return path


def save_checkpoint(acc: Any, trainer: PPOTrainer, out: Path, step: int) -> Path:
    """accelerate state (weights/adapter, value head, optimizer, RNG) + trainer_state.json."""
    path = out / "checkpoints" / f"step-{step}"
    acc.save_state(str(path))
    acc.wait_for_everyone()
    if acc.is_main_process:
        (path / STATE_FILE).write_text(json.dumps({"step": step, "kl_coef": trainer.kl_coef,
                                                   "rewards": trainer.rewards}))
    acc.wait_for_everyone()
    return path


def save_final(acc: Any, model: Any, tokenizer: Any, out: Path) -> Path:
    """final/: the policy (LoRA adapter or full model) with its tokenizer, and value_head.pt."""
    import torch

    final = out / "final"
    state = acc.get_state_dict(model)
    if acc.is_main_process:
        unwrapped = acc.unwrap_model(model)
        policy_sd = {k[len("policy."):]: v for k, v in state.items() if k.startswith("policy.")}
        unwrapped.policy.save_pretrained(str(final), state_dict=policy_sd)
        tokenizer.save_pretrained(str(final))
        torch.save({k[len("value_head."):]: v for k, v in state.items()
                    if k.startswith("value_head.")}, final / "value_head.pt")
    acc.wait_for_everyone()
    return final


def build_model(cfg: TrainPPOConfig, model_dir: str):
    """(PolicyValueModel, reference model or None) for the config."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    dtype = getattr(torch, cfg.policy.dtype) if cfg.policy.dtype != "auto" else "auto"
    policy = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    ref = None
    if cfg.policy.lora.enabled:
        from peft import get_peft_model

        policy = get_peft_model(policy, _peft_config(cfg.policy.lora))
    elif cfg.ppo.kl_coef > 0:
        ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
        ref.requires_grad_(False)
    if cfg.ppo.gradient_checkpointing:
        policy.gradient_checkpointing_enable()
        if cfg.policy.lora.enabled:
            policy.enable_input_require_grads()
    critic = None
    if cfg.ppo.critic_model:
        critic = AutoModel.from_pretrained(policy_model_dir(cfg.ppo.critic_model), dtype=dtype)
    return PolicyValueModel(policy, critic, head_init=cfg.ppo.value_head_init), ref


def _load_simulator(cfg: TrainPPOConfig) -> Any:
    from simulators.zoo import load_simulator

    simulator = load_simulator(cfg.simulator.name, cfg.simulator.zoo,
                               engine_override=cfg.simulator.engine, seed=cfg.seed,
                               engine_loader=_engine_loader(cfg.simulator.dtype))
    _cap_simulator_tokens(simulator, cfg.simulator.max_tokens)
    return simulator


def make_accelerator(cfg: TrainPPOConfig) -> Any:
    """The run's Accelerator. Under `accelerate launch --use_deepspeed` the device comes from the
    launcher (forcing cpu there breaks DeepSpeed's state; on a machine without GPUs it is the CPU)."""
    import torch
    from accelerate import Accelerator

    use_cpu = cfg.cpu if cfg.cpu is not None else not torch.cuda.is_available()
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    acc = Accelerator(cpu=use_cpu and not deepspeed)
    _fix_deepspeed_world_on_cpu(acc)
    return acc


def _fix_deepspeed_world_on_cpu(acc: Any) -> None:
    """On a machine without GPUs, accelerate 1.15 lets DeepSpeed start the process group (gloo)
    but then reports ONE process (no accelerator backend): every rank would think it is the main
    process and DeepSpeed's batch check fails. Take rank and world size from the process group."""
    import torch.distributed as dist
    from accelerate.state import AcceleratorState, PartialState

    if not (dist.is_available() and dist.is_initialized()) or acc.num_processes == dist.get_world_size():
        return
    fix = {"num_processes": dist.get_world_size(), "process_index": dist.get_rank(),
           "local_process_index": int(os.environ.get("LOCAL_RANK", 0))}
    PartialState._shared_state.update(fix)
    AcceleratorState._shared_state.update(fix)


def _prepare(cfg: TrainPPOConfig, acc: Any, model: Any):
    """Prepared model and optimizer (DeepSpeed gets its micro-batch size here: with no
    dataloader, accelerate cannot fill the config's 'auto')."""
    import torch

    plugin = acc.state.deepspeed_plugin
    if plugin is not None:
        ds = plugin.deepspeed_config
        ds["train_micro_batch_size_per_gpu"] = cfg.ppo.minibatch_size
        ds["gradient_accumulation_steps"] = 1
        ds["train_batch_size"] = cfg.ppo.minibatch_size * acc.num_processes
        ds.setdefault("gradient_clipping", cfg.ppo.max_grad_norm)
        if ds.get("gradient_clipping") == "auto":
            ds["gradient_clipping"] = cfg.ppo.max_grad_norm
        zero = ds.setdefault("zero_optimization", {})
        if int(zero.get("stage", 0)) == 3:  # final/ needs the gathered weights (save_final)
            zero["stage3_gather_16bit_weights_on_model_save"] = True
    critic = [p for n, p in model.named_parameters() if p.requires_grad
              and n.startswith(("value_head.", "critic_backbone."))]
    policy = [p for n, p in model.named_parameters() if p.requires_grad
              and not n.startswith(("value_head.", "critic_backbone."))]
    value_lr = cfg.ppo.value_learning_rate if cfg.ppo.value_learning_rate is not None else cfg.ppo.learning_rate
    optimizer = torch.optim.AdamW([{"params": policy}, {"params": critic, "lr": value_lr}],
                                  lr=cfg.ppo.learning_rate, weight_decay=cfg.ppo.weight_decay)
    model, optimizer = acc.prepare(model, optimizer)
    return model, optimizer


def run_training(cfg: TrainPPOConfig, *, tasks: Sequence[Task] | None = None, simulator: Any = None,
                 reward: Any = None) -> RunResult:
    """Train (see the module docstring). `tasks`, `simulator` and `reward` replace the ones the
    config names (tests, the demo, the benchmark)."""
    import torch
    from accelerate.utils import set_seed
    from transformers import AutoTokenizer

    start = time.perf_counter()
    out = Path(cfg.out)
    torch.set_num_threads(choose_threads(cfg.threads))
    tasks = list(tasks) if tasks is not None else load_tasks(cfg.data, cfg.data.split, cfg.data.limit)
    if len(tasks) < 1:
        raise ConfigError(f"data: no training tasks in {cfg.data.source!r} (split {cfg.data.split!r})")
    simulator = simulator if simulator is not None else _load_simulator(cfg)
    reward_label = type(reward).__name__
    if reward is None:
        from rewards import build_reward, describe_reward

        reward, reward_label = build_reward(cfg.reward), describe_reward(cfg.reward)
    acc = make_accelerator(cfg)
    cfg.ppo.episodes_per_process(acc.num_processes)  # fails early on a bad layout
    set_seed(cfg.seed)
    model_dir = policy_model_dir(cfg.policy.model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model, ref = build_model(cfg, model_dir)
    model, optimizer = _prepare(cfg, acc, model)
    if hasattr(reward, "bind_assistant"):
        reward.bind_assistant(acc.unwrap_model(model).policy, tokenizer)
    runlog = RunLog(out, is_main=acc.is_main_process, html_max_episodes=cfg.html_max_episodes,
                    reward_label=reward_label)
    trainer = PPOTrainer(accelerator=acc, model=model, optimizer=optimizer, tokenizer=tokenizer,
                         settings=cfg.ppo, rollout=cfg.rollout, simulator=simulator, reward=reward,
                         tasks=tasks, runlog=runlog, ref_model=ref, seed=cfg.seed)
    first = _resume(cfg, acc, trainer)
    if acc.is_main_process:
        save_config(cfg, out / "config.yaml")
    _loop(cfg, acc, trainer, first, out)
    runlog.finish()
    final = save_final(acc, model, tokenizer, out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return RunResult(out_dir=out, final_dir=final, steps=cfg.ppo.steps, rewards=trainer.rewards,
                     wall_s=time.perf_counter() - start, peak_rss_mb=peak)


def _resume(cfg: TrainPPOConfig, acc: Any, trainer: PPOTrainer) -> int:
    """Load a checkpoint when asked; return the first step to run."""
    path = resume_dir(cfg)
    if path is None:
        return 0
    acc.load_state(str(path))
    state = json.loads((path / STATE_FILE).read_text())
    trainer.kl_coef = float(state["kl_coef"])
    trainer.rewards = list(state.get("rewards", []))
    if acc.is_main_process:
        print(f"resumed from {path} (step {state['step']})")
    return int(state["step"]) + 1


def _loop(cfg: TrainPPOConfig, acc: Any, trainer: PPOTrainer, first: int, out: Path) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(range(first, cfg.ppo.steps), desc="PPO steps", disable=not acc.is_main_process)
    for step in bar:
        row = trainer.step(step)
        if "reward/mean" in row:
            bar.set_postfix(reward=f"{row['reward/mean']:.3f}")
        if cfg.save_every and (step + 1) % cfg.save_every == 0:
            save_checkpoint(acc, trainer, out, step)


def _summary(result: RunResult) -> str:
    fmt = (lambda x: "n/a" if x is None else f"{x:.3f}")
    return (f"trained {result.steps} PPO steps in {result.wall_s:.0f} s (peak RSS "
            f"{result.peak_rss_mb:.0f} MB); reward {fmt(result.reward_start)} (first quarter) -> "
            f"{fmt(result.reward_end)} (last quarter); outputs in {result.out_dir}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `wildsim train ppo` and of this script."""
    from corpora.records import DataError
    from engines.spec import SpecError
    from simulators.zoo import ZooError
    from trainers.rollout import TemplateError
    from foundation.registry import UnknownNameError

    cfg = parse_config(TrainPPOConfig, argv, prog="wildsim train ppo",
                       description=__doc__.split("\n\n")[0])
    try:
        result = run_training(cfg)
    except (ConfigError, DataError, SpecError, UnknownNameError, TemplateError, ZooError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(_summary(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    raise SystemExit(main())
