"""Train an assistant with GRPO in multi-turn conversations against a user simulator.

Run (any of):
    accelerate launch --config_file configs/accelerate/cpu.yaml trainers/train_rl.py \\
        --config configs/experiments/demo_cpu.yaml [--grpo.steps 4 --rollout.max_turns 2 …]
    wildsim train rl --config configs/experiments/demo_cpu.yaml
    python trainers/train_rl.py --config configs/experiments/demo_cpu.yaml
Every field of TrainRLConfig is a `--section.field value` flag (`--help` lists them with help).

What it does: loads tasks (data), the simulator from the zoo, the reward, and the policy from a
saved model folder (the builtin model is materialised to one), then runs TRL's GRPOTrainer with
the lockstep multi-turn rollout (trainers/grpo.py). The output directory receives config.yaml,
metrics.jsonl, transcripts.jsonl, transcripts.html, reward_curve.png, checkpoints/ and final/
(the trained LoRA adapter or full model, with its tokenizer). See docs/training.md.
`--resume auto` continues the run in `out` from its latest checkpoint (trainers/checkpoint.py).

`run_training(config) -> RunResult` is the same thing as a function (the demo calls it).
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
from dataclasses import dataclass, field  # noqa: E402
from typing import Any, Literal, Sequence  # noqa: E402

from corpora.types import Task  # noqa: E402
from trainers.grpo import (EpisodeRollout, GRPOSettings, batch_layout, episode_metrics,  # noqa: E402
                           episode_reward_func, resumable_trainer_class, task_dataset, validate)
from trainers.checkpoint import (CONFIG_FILE, FINISHED_FILE, check_same_config,  # noqa: E402
                                 checkpoint_dir, checkpoint_update, complete_checkpoints,
                                 find_checkpoint, finished_steps, mark_finished,
                                 restore_position, save_position_callback)
from trainers.rollout import RolloutConfig  # noqa: E402
from trainers.runlog import RunLog, episode_record, rename_trl_metrics  # noqa: E402
from foundation.config import ConfigError, option, parse_config, save_config, to_dict  # noqa: E402

DEFAULT_REWARD = {"kind": "rule", "rule": "length_band", "lo": 8, "hi": 25}


@dataclass
class LoraSection:
    enabled: bool = option(True, help="train a LoRA adapter (false = full fine-tuning)")
    r: int = option(16, help="LoRA rank")
    alpha: int = option(32, help="LoRA alpha (scale = alpha / r)")
    dropout: float = option(0.0, help="LoRA dropout")
    targets: list[str] = option(["q_proj", "k_proj", "v_proj", "o_proj"],
                                help="module names that get adapters ('all-linear' as the only "
                                "item adapts every linear layer but the output head)")

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1 or not 0 <= self.dropout < 1 or not self.targets:
            raise ValueError("policy.lora: r and alpha must be >= 1, dropout in [0, 1), and "
                             "targets must name at least one module")


@dataclass
class PolicySection:
    model: str = option("builtin:smollm2-135m-instruct",
                        help="the policy to train: builtin:<name>, hf:<folder or hub id>, "
                        "vllm:<folder or hub id> (same model; generation via vLLM needs "
                        "grpo.use_vllm) or a plain folder")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = option(
        "float32", help="dtype the policy is loaded in (float32 on CPU; bfloat16 on GPU)")
    lora: LoraSection = option(default_factory=LoraSection, help="LoRA adapter settings")


@dataclass
class SimulatorSection:
    name: str = option("roleplay2-cpu", help="simulator name in the zoo (configs/simulators.yaml)")
    zoo: str | None = option(None, help="zoo YAML file (default configs/simulators.yaml)")
    engine: str | None = option(None, help="engine spec replacing the zoo entry's own, e.g. "
                                "builtin:smollm2-135m-instruct or openai:http://host:8000/v1#model")
    dtype: str | None = option(None, help="dtype for local (builtin:/hf:) simulator engines, e.g. "
                               "float32 on CPU, where bfloat16 ran ~4x slower; None = the zoo's")
    max_tokens: int | None = option(None, help="cap on the simulator's tokens per user turn, "
                                    "replacing the zoo entry's (None = the zoo's)")
    quantize: str | None = option(None, help="int8: run a local (builtin:/hf:) simulator engine "
                                  "with torch's dynamic int8 quantization on CPU (frozen model; "
                                  "decoding ~2x faster here); None = full precision")


@dataclass
class DataSection:
    source: str = option("sample", help="tasks: 'sample' (bundled WildChat sample), a prepared "
                         "split folder, a Task JSONL or a WildChat-schema file")
    split: str | None = option(None, help="split to train on, e.g. train for a prepared folder "
                               "(None = every record; the bundled sample has no splits)")
    limit: int = option(0, help="use at most this many training tasks (0 = all)")
    val_split: str | None = option(None, help="split used for validation rollouts, e.g. "
                                   "validation (None = the first val_limit training tasks)")
    val_limit: int = option(16, help="validation tasks per validation (0 = all)")

    def __post_init__(self) -> None:
        if self.limit < 0 or self.val_limit < 0:
            raise ValueError("data.limit and data.val_limit must be >= 0 (0 = all)")


@dataclass
class TrainRLConfig:
    """GRPO training of an assistant against a user simulator."""

    policy: PolicySection = option(default_factory=PolicySection, help="the policy model")
    simulator: SimulatorSection = option(default_factory=SimulatorSection, help="who plays the user")
    reward: dict[str, Any] = option(dict(DEFAULT_REWARD), help="reward config for "
                                    "rewards.build_reward: {kind: judge|rule|weighted, ...}")
    data: DataSection = option(default_factory=DataSection, help="where tasks come from")
    rollout: RolloutConfig = option(default_factory=RolloutConfig, help="how episodes are played")
    grpo: GRPOSettings = option(default_factory=GRPOSettings, help="GRPO optimisation")
    out: str = option("runs/train_rl", help="output directory of the run")
    seed: int = option(42, help="seed for data order, sampling and the simulator")
    save_every: int = option(0, help="save a checkpoint every N GRPO steps (0 = final model only); "
                             "a checkpoint holds all a resume needs (docs/training.md, Resuming)")
    save_total_limit: int = option(2, help="checkpoints kept (the oldest are deleted); 0 = all")
    resume: str | None = option(None, help="resume from a checkpoint: auto = the latest in "
                                "<out>/checkpoints (a fresh start when there is none; 0 steps "
                                "when the run finished), or a checkpoint folder")
    val_every: int = option(0, help="validation rollouts every N GRPO steps (0 = never)")
    report_to: str = option("none", help="extra TRL/transformers loggers: none, tensorboard, wandb")
    cpu: bool | None = option(None, help="train on CPU (None = when no GPU is visible)")
    html_max_episodes: int = option(400, help="episodes shown in transcripts.html (the latest)")
    threads: int = option(0, help="torch CPU threads of this process (torch.set_num_threads); "
                          "0 = torch's default, one per core")

    def __post_init__(self) -> None:
        if min(self.save_every, self.val_every, self.threads, self.save_total_limit) < 0:
            raise ValueError("save_every, save_total_limit, val_every and threads must be >= 0 "
                             "(0 = off/default)")
        if not isinstance(self.reward, dict) or "kind" not in self.reward:
            raise ValueError("reward must be a mapping with a kind, e.g. "
                             "{kind: rule, rule: length_band, lo: 8, hi: 25}")


@dataclass
class RunResult:
    """Where a run's outputs are and what it measured."""

    out_dir: Path
    final_dir: Path
    steps: int                                           # GRPO steps trained by this call
    rewards: list[float] = field(default_factory=list)  # reward/mean of each GRPO step of the run
    resumed_at: int | None = None                        # GRPO step the run resumed from
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def reward_start(self) -> float | None:
        """Mean reward of the first quarter of the steps (at least one)."""
        k = max(1, len(self.rewards) // 4)
        return sum(self.rewards[:k]) / k if self.rewards else None

    @property
    def reward_end(self) -> float | None:
        """Mean reward of the last quarter of the steps (at least one)."""
        k = max(1, len(self.rewards) // 4)
        return sum(self.rewards[-k:]) / k if self.rewards else None


def policy_model_dir(spec: str) -> str:
    """A saved model folder (or hub id) for the policy spec; builtin models are materialised."""
    if ":" not in spec or Path(spec).exists():
        return spec
    from engines.spec import parse_spec

    parsed = parse_spec(spec)
    if parsed.backend == "openai":
        raise ConfigError(f"policy.model {spec!r}: a served model cannot be trained; name its "
                          "weights with hf:<folder or hub id>")
    if parsed.adapter:
        raise ConfigError(f"policy.model {spec!r}: continuing an adapter is not supported; merge "
                          "it into the base model first and name the merged folder")
    if parsed.backend == "builtin":
        from engines.builtin import builtin_model_dir

        return str(builtin_model_dir(parsed.model))
    return parsed.model


def load_tasks(data: DataSection, split: str | None, limit: int) -> list[Task]:
    from corpora.tasks import read_tasks

    tasks = read_tasks(data.source, split=split)
    return tasks[:limit] if limit else tasks


class StepLog:
    """Collects one GRPO step's metrics (rollout, rewards, validation) until TRL logs the update,
    then writes one metrics.jsonl row; transcripts are written as soon as episodes are scored."""

    def __init__(self, runlog: RunLog, rollout: EpisodeRollout, updates_per_step: int,
                 rewards: Sequence[float] = ()):
        self.runlog, self.rollout, self.updates_per_step = runlog, rollout, updates_per_step
        self.pending: dict[str, float] = {}
        self.rewards: list[float] = list(rewards)  # reward/mean per step (earlier ones on resume)

    def on_scored(self, episodes: list, reward_s: float) -> None:
        from accelerate.utils import gather_object

        last = self.rollout.last
        step = last.step if last else 0
        records = gather_object([{**episode_record(ep, step), "phase": "train"} for ep in episodes])
        metrics = last.stats.metrics() if last else {}
        metrics.update(episode_metrics(records))
        metrics["timing/reward_s"] = reward_s
        self.pending.update(metrics)
        if "reward/mean" in metrics:
            self.rewards.append(metrics["reward/mean"])
        self.runlog.records(records)

    def write(self, global_step: int, trl_logs: dict[str, Any]) -> None:
        step = max(0, global_step - 1) // self.updates_per_step
        row = {**self.pending, **rename_trl_metrics(trl_logs), "update": global_step}
        self.pending = {}
        self.runlog.metrics(step, row)


def _callback(steplog: StepLog, val: dict[str, Any] | None):
    from transformers import TrainerCallback

    class RunLogCallback(TrainerCallback):
        """Writes metrics rows on TRL's logs, runs validation on cadence, finishes the run log."""

        trainer = None

        def on_step_end(self, args, state, control, **kwargs):
            ups = steplog.updates_per_step
            if val and state.global_step % ups == 0 and (state.global_step // ups) % val["every"] == 0:
                metrics, records = validate(self.trainer, state.global_step // ups, **val["kwargs"])
                steplog.pending.update(metrics)
                steplog.runlog.records(records)

        def on_log(self, args, state, control, logs=None, **kwargs):
            steplog.write(state.global_step, logs or {})

        def on_train_end(self, args, state, control, **kwargs):
            steplog.runlog.finish()

    return RunLogCallback()


def grpo_args(cfg: TrainRLConfig, layout, out: Path, use_cpu: bool):
    """TRL GRPOConfig for the run (batch layout from trainers.grpo.batch_layout)."""
    from trl import GRPOConfig

    g, ups = cfg.grpo, layout.updates_per_step
    return GRPOConfig(
        output_dir=str(out / "checkpoints"), max_steps=g.steps * ups, seed=cfg.seed,
        per_device_train_batch_size=layout.per_device_batch_size,
        gradient_accumulation_steps=layout.gradient_accumulation,
        generation_batch_size=layout.generation_batch_size, num_generations=g.num_generations,
        learning_rate=g.learning_rate, lr_scheduler_type=g.lr_scheduler,
        warmup_steps=g.warmup_ratio, weight_decay=g.weight_decay, beta=g.beta, epsilon=g.epsilon,
        epsilon_high=g.epsilon_high, max_grad_norm=g.max_grad_norm, loss_type=g.loss_type,
        scale_rewards=g.scale_rewards, num_iterations=g.num_iterations,
        gradient_checkpointing=g.gradient_checkpointing, bf16=g.bf16, use_cpu=use_cpu,
        temperature=max(cfg.rollout.temperature, 1e-6), top_p=cfg.rollout.top_p,
        max_completion_length=cfg.rollout.max_tokens, mask_truncated_completions=g.mask_truncated_completions,
        use_vllm=g.use_vllm, vllm_mode=g.vllm_mode, vllm_server_base_url=g.vllm_server_base_url,
        vllm_gpu_memory_utilization=g.vllm_gpu_memory_utilization,
        ds3_gather_for_generation=g.ds3_gather_for_generation,
        model_init_kwargs={"dtype": cfg.policy.dtype}, logging_steps=1,
        save_strategy="steps" if cfg.save_every else "no", save_steps=max(1, cfg.save_every * ups),
        save_only_model=False, save_total_limit=cfg.save_total_limit or None,
        report_to=cfg.report_to, log_completions=False, remove_unused_columns=False,
        dataloader_num_workers=0)


def _peft_config(lora: LoraSection):
    if not lora.enabled:
        return None
    from peft import LoraConfig

    targets: Any = "all-linear" if lora.targets == ["all-linear"] else list(lora.targets)
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=targets, task_type="CAUSAL_LM")


def choose_threads(requested: int) -> int:
    """Set torch's CPU thread count to `requested` when > 0 (it is process-wide); 0 leaves torch's
    default (one thread per core). Returns the count now in effect."""
    import torch

    if requested > 0:
        torch.set_num_threads(requested)
    return torch.get_num_threads()


def _engine_loader(dtype: str | None, quantize: str | None = None):
    """Chat-engine loader for the simulator that applies `dtype` and `quantize` to local engines."""
    from engines.spec import load_chat_engine, parse_spec

    def load(spec: str, **options: Any):
        if parse_spec(spec).backend in ("builtin", "hf"):
            local = {"dtype": dtype, "quantize": quantize}
            options = {**{k: v for k, v in local.items() if v}, **options}
        return load_chat_engine(spec, **options)

    return load


def _cap_simulator_tokens(simulator: Any, max_tokens: int | None) -> None:
    """Apply simulator.max_tokens to a simulator (and a mixture's members) holding `sampling`."""
    from simulators.zoo import ZooError, cap_max_tokens

    try:
        cap_max_tokens(simulator, max_tokens)
    except ZooError as err:
        raise ConfigError(str(err)) from None


def _check_tasks(cfg: TrainRLConfig, tasks: Sequence[Task]) -> None:
    if len(tasks) < cfg.grpo.prompts_per_step:
        raise ConfigError(f"data: {len(tasks)} training tasks from {cfg.data.source!r} "
                          f"(split {cfg.data.split!r}) but grpo.prompts_per_step is "
                          f"{cfg.grpo.prompts_per_step}; use more data or fewer prompts per step"
                          + (" (do the records carry that split? --data.split null uses all)"
                             if cfg.data.split else ""))


def run_training(cfg: TrainRLConfig, *, tasks: Sequence[Task] | None = None, simulator: Any = None,
                 reward: Any = None, val_tasks: Sequence[Task] | None = None) -> RunResult:
    """Train (see the module docstring). `tasks`, `simulator` and `reward` replace the ones the
    config names (tests, the demo)."""
    import torch
    from transformers import AutoTokenizer

    start = time.perf_counter()
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    out = Path(cfg.out)
    done = _finished_run(cfg, out)
    if done is not None:
        return done
    resume_from = _resume_checkpoint(cfg, out)
    use_cpu = cfg.cpu if cfg.cpu is not None else not torch.cuda.is_available()
    if use_cpu:
        choose_threads(cfg.threads)
    tasks = list(tasks) if tasks is not None else load_tasks(cfg.data, cfg.data.split, cfg.data.limit)
    _check_tasks(cfg, tasks)
    simulator, reward, reward_label = _simulator_and_reward(cfg, simulator, reward)
    model_dir = policy_model_dir(cfg.policy.model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    from accelerate import PartialState

    layout = batch_layout(cfg.grpo, PartialState(cpu=use_cpu).num_processes)
    args = grpo_args(cfg, layout, out, use_cpu)
    is_main = args.process_index == 0
    runlog = RunLog(out, is_main=is_main, html_max_episodes=cfg.html_max_episodes,
                    reward_label=reward_label)
    earlier = _start_run_log(runlog, resume_from, is_main)
    rollout = EpisodeRollout(tasks, simulator, cfg.rollout, updates_per_step=layout.updates_per_step,
                             seed=cfg.seed)
    steplog = StepLog(runlog, rollout, layout.updates_per_step,
                      rewards=[r["reward/mean"] for r in earlier if "reward/mean" in r])
    val = _validation(cfg, val_tasks, simulator, reward)
    callback = _callback(steplog, val)
    saver = save_position_callback(to_dict(cfg), runlog.metrics_path, runlog.transcripts_path, is_main)
    trainer_class = resumable_trainer_class(
        (len(tasks) // cfg.grpo.prompts_per_step) * layout.updates_per_step)
    trainer = trainer_class(model=model_dir, reward_funcs=[episode_reward_func(reward, steplog.on_scored)],
                            args=args, train_dataset=task_dataset(tasks), processing_class=tokenizer,
                            peft_config=_peft_config(cfg.policy.lora), rollout_func=rollout,
                            callbacks=[callback, saver])
    callback.trainer = trainer
    if is_main:
        save_config(cfg, out / "config.yaml")
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    final = out / "final"
    trainer.save_model(str(final))
    if is_main:
        tokenizer.save_pretrained(str(final))
        mark_finished(out, cfg.grpo.steps)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    resumed_at = checkpoint_update(resume_from) // layout.updates_per_step if resume_from else None
    return RunResult(out_dir=out, final_dir=final, steps=cfg.grpo.steps - (resumed_at or 0),
                     rewards=steplog.rewards, wall_s=time.perf_counter() - start, peak_rss_mb=peak,
                     resumed_at=resumed_at)


def _simulator_and_reward(cfg: TrainRLConfig, simulator: Any, reward: Any) -> tuple[Any, Any, str]:
    """The simulator and reward the config names (unless given), and the reward's label. Loaded
    before the trainer's DeepSpeed config exists, so a local simulator is never ZeRO-3 sharded."""
    if simulator is None:
        from simulators.zoo import load_simulator

        simulator = load_simulator(cfg.simulator.name, cfg.simulator.zoo,
                                   engine_override=cfg.simulator.engine, seed=cfg.seed,
                                   engine_loader=_engine_loader(cfg.simulator.dtype,
                                                                cfg.simulator.quantize))
        _cap_simulator_tokens(simulator, cfg.simulator.max_tokens)
    if reward is None:
        from rewards import build_reward, describe_reward

        return simulator, build_reward(cfg.reward), describe_reward(cfg.reward)
    return simulator, reward, type(reward).__name__


def _finished_run(cfg: TrainRLConfig, out: Path) -> RunResult | None:
    """With `--resume auto` on a run that already trained all its steps (same config): a result
    with 0 steps trained, and a message saying so. None otherwise."""
    steps = finished_steps(out) if cfg.resume == "auto" else None
    if steps is None:
        return None
    check_same_config(out / "config.yaml", to_dict(cfg), f"the finished run in {out}")
    _say(f"the run in {out} already finished its {steps} GRPO steps: nothing to train (0 steps)")
    rows = _read_rows(out / "metrics.jsonl")
    return RunResult(out_dir=out, final_dir=out / "final", steps=0, resumed_at=steps,
                     rewards=[r["reward/mean"] for r in rows if "reward/mean" in r])


def _resume_checkpoint(cfg: TrainRLConfig, out: Path) -> Path | None:
    """The checkpoint to resume from (None = a fresh start), its config checked against `cfg`."""
    if not cfg.resume:
        if complete_checkpoints(out):
            raise ConfigError(f"{checkpoint_dir(out)} holds checkpoints of an earlier run: pass "
                              "--resume auto to continue it, or choose another --out")
        return None
    path = find_checkpoint(cfg.resume, out)
    if path is None:
        _say(f"--resume auto: no checkpoint in {checkpoint_dir(out)} yet; starting at step 0")
        return None
    check_same_config(path / CONFIG_FILE, to_dict(cfg), f"checkpoint {path}")
    _say(f"resuming from {path} (optimizer update {checkpoint_update(path)})")
    return path


def _start_run_log(runlog: RunLog, resume_from: Path | None, is_main: bool) -> list[dict]:
    """Cut the run log back to the checkpoint's position (resume) or empty it (fresh start);
    return the metrics rows kept (on the main process, the only one that touches the files)."""
    if not is_main:
        return []
    if resume_from is not None:
        return restore_position(resume_from, runlog.metrics_path, runlog.transcripts_path)
    for path in (runlog.metrics_path, runlog.transcripts_path, runlog.out_dir / FINISHED_FILE):
        path.unlink(missing_ok=True)
    return []


def _read_rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def _say(message: str) -> None:
    """Print on the main process only (every process decides the same)."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(message, flush=True)


def _validation(cfg: TrainRLConfig, val_tasks: Sequence[Task] | None, simulator: Any,
                reward: Any) -> dict[str, Any] | None:
    if not cfg.val_every:
        return None
    if val_tasks is None and cfg.data.val_split is None:
        val_tasks = load_tasks(cfg.data, cfg.data.split, cfg.data.val_limit or cfg.data.limit)
    elif val_tasks is None:
        val_tasks = load_tasks(cfg.data, cfg.data.val_split, cfg.data.val_limit)
    if not val_tasks:
        raise ConfigError(f"val_every is {cfg.val_every} but data split {cfg.data.val_split!r} of "
                          f"{cfg.data.source!r} holds no tasks; set data.val_split or val_every 0")
    return {"every": cfg.val_every, "kwargs": dict(tasks=list(val_tasks), simulator=simulator,
                                                   reward=reward, rollout=cfg.rollout,
                                                   seed=cfg.seed)}


def _summary(result: RunResult) -> str:
    fmt = (lambda x: "n/a" if x is None else f"{x:.3f}")
    resumed = f"resumed at GRPO step {result.resumed_at}; " if result.resumed_at is not None else ""
    return (f"{resumed}trained {result.steps} GRPO steps in {result.wall_s:.0f} s (peak RSS "
            f"{result.peak_rss_mb:.0f} MB); reward {fmt(result.reward_start)} (first quarter) -> "
            f"{fmt(result.reward_end)} (last quarter); outputs in {result.out_dir}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `wildsim train rl` and of this script."""
    from corpora.records import DataError
    from engines.spec import SpecError
    from trainers.rollout import TemplateError
    from foundation.registry import UnknownNameError

    cfg = parse_config(TrainRLConfig, argv, prog="wildsim train rl",
                       description=__doc__.split("\n\n")[0])
    user_errors: tuple[type[BaseException], ...] = (ConfigError, DataError, SpecError,
                                                    UnknownNameError, TemplateError)
    try:
        from simulators.zoo import ZooError

        user_errors += (ZooError,)
    except ImportError:  # pragma: no cover - simulators not installed
        pass
    try:
        result = run_training(cfg)
    except user_errors as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(_summary(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
