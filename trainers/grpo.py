"""GRPO against a user simulator with TRL's GRPOTrainer and a multi-turn `rollout_func`.

One GRPO step, in order (DESIGN.md, "the data flow of one training step"):
1. TRL samples `prompts_per_step` tasks and hands `rollout_func` each task's prompt repeated
   `num_generations` times back to back. The prompt is the task id (`task_dataset`).
2. `EpisodeRollout` maps each prompt back to its Task, opens one Episode per prompt (group
   `"{step}:{task_id}"`, sample index within the group), and plays them in lockstep
   (trainers/rollout.py) with an HFEngine around the LIVE policy (unwrapped for generation;
   peft models work), or TRL's own vLLM generation when `use_vllm` is on.
3. It returns one completion per prompt, in order: prompt_ids, completion_ids, logprobs, env_mask
   (TRL's tool mask: the loss and the length metrics use only mask-1 tokens) and `episodes`,
   an extra field TRL forwards to reward functions.
4. `episode_reward_func(reward)` scores the episodes with the project's Reward (the same objects
   evaluation uses), stores value and details on each episode, and hands them to the run log.
   An episode whose reward could not be measured (`RewardResult.excluded`: every judge failed) gets
   reward None and the function returns None for it.
5. TRL computes group-normalised advantages and the clipped policy loss (+ k3 KL when beta > 0).
   A None reward is NaN in TRL 1.16 (`_calculate_rewards`): it is left out of its group's mean and
   std (nanmean/nanstd) and its advantage is set to 0, so the episode is not trained on.

Batch layout (`batch_layout`): a step rolls out prompts_per_step × num_generations episodes and
makes num_iterations × prompts_per_step / minibatch_prompts optimizer updates, each over
minibatch_prompts × num_generations episodes split into micro-batches of per_device_batch_size
per process.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Sequence

from corpora.types import Episode, Task
from engines.base import TokenOutput
from rewards.base import attach_result
from trainers.rollout import RolloutConfig, RolloutStats, make_policy, run_rollout
from foundation.config import option


@dataclass
class GRPOSettings:
    """GRPO optimisation settings (the `grpo:` section of a training config)."""

    steps: int = option(20, help="GRPO steps (rollout batches) to train for")
    prompts_per_step: int = option(4, help="tasks rolled out per step (published: 64)")
    num_generations: int = option(4, help="episodes per task, the GRPO group size (published: 5)")
    minibatch_prompts: int | None = option(None, help="tasks per optimizer update; a step makes "
                                           "prompts_per_step / minibatch_prompts updates "
                                           "(published: 16); None = one update per step")
    per_device_batch_size: int = option(4, help="episodes per forward/backward micro-batch on "
                                        "each process; lower it when memory runs out")
    learning_rate: float = option(1e-5, help="peak learning rate (published: 8e-7, full model)")
    lr_scheduler: str = option("constant", help="transformers scheduler name: constant, linear, "
                               "cosine, constant_with_warmup …")
    warmup_ratio: float = option(0.0, help="fraction of updates spent warming up the lr")
    weight_decay: float = option(0.0, help="AdamW weight decay")
    beta: float = option(0.0, help="KL coefficient against the initial policy (k3 estimator); "
                         "0 skips the reference model entirely (published: 0.001)")
    epsilon: float = option(0.2, help="PPO clip range of the importance ratio (published: 0.2)")
    epsilon_high: float | None = option(None, help="upper clip range (None = epsilon; DAPO uses "
                                        "0.28)")
    max_grad_norm: float = option(1.0, help="gradient-norm clip (published: 1.0)")
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] = option(
        "dapo", help="loss aggregation: dapo = token mean over the batch (verl's token-mean), "
        "grpo = per-sequence mean, dr_grpo = constant normaliser, bnpo = token mean per micro-batch")
    scale_rewards: Literal["group", "batch", "none"] = option(
        "group", help="divide advantages by the group's reward std (group), the batch's, or not")
    num_iterations: int = option(1, help="optimisation passes over each rollout batch (μ)")
    gradient_checkpointing: bool = option(False, help="recompute activations in backward: less "
                                          "memory, ~30% slower (turn on for billion-size models)")
    bf16: bool = option(False, help="bfloat16 mixed precision (GPU); keep false on CPU")
    use_vllm: bool = option(False, help="generate policy turns with TRL's vLLM integration (GPU)")
    vllm_mode: Literal["colocate", "server"] = option(
        "colocate", help="vLLM inside each training process (colocate) or a `trl vllm-serve` server")
    vllm_server_base_url: str | None = option(None, help="base URL of the trl vllm-serve server "
                                              "(server mode)")
    vllm_gpu_memory_utilization: float = option(0.3, help="GPU memory share of colocated vLLM")
    ds3_gather_for_generation: bool = option(
        True, help="under DeepSpeed ZeRO-3, gather the policy's weights on every process for the "
        "rollout (fast, needs the whole model in one process's memory); false decodes with the "
        "partitioned weights, every forward pass a collective (slow; for models too big to gather)")
    mask_truncated_completions: bool = option(False, help="drop episodes whose last policy turn "
                                              "hit max_tokens from the loss")

    def __post_init__(self) -> None:
        for name in ("steps", "prompts_per_step", "per_device_batch_size", "num_iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"grpo.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_generations < 2:
            raise ValueError(f"grpo.num_generations must be >= 2 (advantages compare episodes "
                             f"within a group), got {self.num_generations}")
        mb = self.minibatch_prompts
        if mb is not None and (mb < 1 or self.prompts_per_step % mb):
            raise ValueError(f"grpo.minibatch_prompts ({mb}) must divide grpo.prompts_per_step "
                             f"({self.prompts_per_step})")
        if self.use_vllm and not self.ds3_gather_for_generation:
            raise ValueError("grpo.ds3_gather_for_generation false needs grpo.use_vllm false: TRL's "
                             "vLLM generation gathers the weights itself to sync them to vLLM")
        if self.learning_rate <= 0 or self.beta < 0 or self.epsilon <= 0:
            raise ValueError("grpo.learning_rate and grpo.epsilon must be > 0 and grpo.beta >= 0")


@dataclass(frozen=True)
class BatchLayout:
    """How one GRPO step maps onto TRL's batch settings."""

    per_device_batch_size: int   # episodes per micro-batch per process
    gradient_accumulation: int   # micro-batches per optimizer update
    generation_batch_size: int   # episodes per rollout, all processes (prompts × group)
    updates_per_step: int        # optimizer updates per GRPO step (num_iterations passes included)


def batch_layout(s: GRPOSettings, num_processes: int) -> BatchLayout:
    """Derive TRL's batch sizes from the GRPO settings; errors say which numbers to change."""
    minibatch = (s.minibatch_prompts or s.prompts_per_step) * s.num_generations
    micro = s.per_device_batch_size * num_processes
    if minibatch % micro:
        raise ValueError(f"an update covers {minibatch} episodes (minibatch_prompts × "
                         f"num_generations), which is not a multiple of per_device_batch_size × "
                         f"processes = {micro}; pick grpo.per_device_batch_size dividing "
                         f"{minibatch // num_processes if minibatch % num_processes == 0 else minibatch}")
    return BatchLayout(per_device_batch_size=s.per_device_batch_size,
                       gradient_accumulation=minibatch // micro,
                       generation_batch_size=s.prompts_per_step * s.num_generations,
                       updates_per_step=s.num_iterations * s.prompts_per_step
                       // (s.minibatch_prompts or s.prompts_per_step))


def task_dataset(tasks: Sequence[Task]):
    """A datasets.Dataset with one row per task; the prompt is the task id (the rollout maps it
    back to the Task and renders the real conversation itself)."""
    from datasets import Dataset

    ids = [t.task_id for t in tasks]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"task ids must be unique; repeated: {dup}")
    return Dataset.from_dict({"prompt": ids, "task_id": ids})


class TRLVLLMEngine:
    """TokenEngine over TRL's vLLM generation (`use_vllm`; `generation` is the trainer's
    `vllm_generation`). Each call honours its Sampling: temperature, top_p, max_tokens (the
    rollout's 1-token dummy calls generate one token), stop strings and the seed.

    - colocate: the process's own `vllm.LLM` generates exactly the prompts given, one
      SamplingParams per prompt (seed + i, as engines/vllm_engine.py does), no padding.
    - server: TRL's client sends every rank's prompts to the `trl vllm-serve` server in one
      request and hands each rank its slice, so every rank sends `slots` prompts (the live ones,
      then copies of the shortest) and all ranks use the largest max_tokens any of them asked
      for; that server takes one set of sampling settings per request (its own seed, no stops).
    """

    def __init__(self, generation: Any, eos_token_ids: set[int], tokenizer: Any, slots: int):
        if generation.mode == "colocate" and (generation.tensor_parallel_size != 1
                                              or generation.enable_sleep_mode):
            raise ValueError("TRLVLLMEngine in colocate mode needs vllm_tensor_parallel_size 1 and "
                             "vllm_enable_sleep_mode false")
        self.generation = generation
        self.tokenizer = tokenizer
        self.eos_token_ids = set(eos_token_ids)
        self.slots = slots

    @classmethod
    def for_trainer(cls, trainer: Any, slots: int) -> "TRLVLLMEngine":
        """The engine for a GRPOTrainer, its vLLM weights synced to the live policy first (TRL
        syncs only inside its own generation step, so validation would score stale weights)."""
        if trainer.state.global_step != getattr(trainer, "_last_loaded_step", None):
            trainer.vllm_generation.sync_weights()
            trainer._last_loaded_step = trainer.state.global_step
        return cls(trainer.vllm_generation, set(trainer.eos_token_ids), trainer.processing_class,
                   slots)

    def generate(self, prompt_ids: Sequence[Sequence[int]], sampling: Any) -> list[TokenOutput]:
        if self.generation.mode == "colocate":
            outs = self._colocate(prompt_ids, sampling)
        else:
            outs = self._server(prompt_ids, sampling)
        return [self._output(ids, lps, sampling) for ids, lps in outs]

    def _colocate(self, prompt_ids: Sequence[Sequence[int]], sampling: Any) -> list[tuple]:
        from engines.vllm_engine import sampling_params

        if not prompt_ids:
            return []
        params = [sampling_params(sampling, i, logprobs=True) for i in range(len(prompt_ids))]
        requests = self.generation.llm.generate(
            [{"prompt_token_ids": list(p)} for p in prompt_ids], params, use_tqdm=False)
        return [(list(r.outputs[0].token_ids),
                 [step[tok].logprob for step, tok in zip(r.outputs[0].logprobs or [],
                                                         r.outputs[0].token_ids)])
                for r in requests]

    def _server(self, prompt_ids: Sequence[Sequence[int]], sampling: Any) -> list[tuple]:
        from accelerate.utils import gather_object

        gen = self.generation
        filler = min(prompt_ids, key=len) if prompt_ids else [min(self.eos_token_ids)]
        padded = [list(p) for p in prompt_ids] + [list(filler)] * max(0, self.slots - len(prompt_ids))
        max_tokens = max(gather_object([sampling.max_tokens]))  # the main process's value is used
        saved = (gen.max_completion_length, gen.temperature, gen.top_p)
        gen.max_completion_length, gen.temperature, gen.top_p = (
            max_tokens, sampling.temperature, sampling.top_p)
        try:
            _, completions, logprobs, _ = gen.generate(prompts=padded, images=None, num_generations=1)
        finally:
            gen.max_completion_length, gen.temperature, gen.top_p = saved
        return [(list(completions[i])[:sampling.max_tokens],
                 None if logprobs is None else [lp[0] for lp in logprobs[i]][:sampling.max_tokens])
                for i in range(len(prompt_ids))]

    def _output(self, ids: list[int], lps: list[float] | None, sampling: Any) -> TokenOutput:
        finish = "stop" if ids and ids[-1] in self.eos_token_ids else "length"
        if sampling.stop:
            from engines.hf import cut_at_stop

            ids, hit = cut_at_stop(ids, sampling.stop, self.tokenizer)
            lps = None if lps is None else lps[:len(ids)]
            finish = "stop" if hit else finish
        return TokenOutput(ids, lps, finish)


def epoch_seeded(sampler: Any, epoch_of: Callable[[], int]) -> Any:
    """Wrap TRL's RepeatSampler so each epoch's order depends only on (seed, epoch).

    TRL's sampler draws every epoch's permutation from one generator seeded once, so the order of
    epoch e depends on the e earlier draws; a resumed run starts with a fresh sampler and would
    replay epoch 0's order. Here the generator is re-seeded with (seed, epoch_of()) at the start of
    each epoch: an uninterrupted run and a resumed one see the same order."""
    from torch.utils.data import Sampler

    class EpochSeededSampler(Sampler):
        def __init__(self, inner: Any):
            self.inner = inner

        def __iter__(self):
            if getattr(self.inner, "shuffle", False):
                self.inner.generator.manual_seed(int(self.inner.seed or 0) * 1_000_003 + epoch_of())
            return iter(self.inner)

        def __len__(self) -> int:
            return len(self.inner)

    return EpochSeededSampler(sampler)


def resumable_trainer_class(updates_per_epoch: int) -> type:
    """TRL's GRPOTrainer with an epoch-seeded data order (`epoch_seeded`), so that resuming from a
    checkpoint continues the uninterrupted run's data order. `updates_per_epoch`: optimizer
    updates per pass over the tasks, (tasks // prompts_per_step) × updates_per_step."""
    from trl import GRPOTrainer

    class ResumableGRPOTrainer(GRPOTrainer):
        def _get_train_sampler(self, dataset: Any = None) -> Any:
            return epoch_seeded(super()._get_train_sampler(dataset),
                                lambda: self.state.global_step // max(1, updates_per_epoch))

    return ResumableGRPOTrainer


@dataclass
class RolloutRecord:
    """What the last rollout did, for the run log."""

    step: int
    episodes: list[Episode]
    stats: RolloutStats


class EpisodeRollout:
    """TRL `rollout_func`: prompts (task ids, repeated per group) -> multi-turn episodes."""

    def __init__(self, tasks: Sequence[Task], simulator: Any, rollout: RolloutConfig, *,
                 updates_per_step: int = 1, seed: int = 0):
        self.tasks = {t.task_id: t for t in tasks}
        self.simulator = simulator
        self.rollout = rollout
        self.updates_per_step = updates_per_step
        self.seed = seed
        self.last: RolloutRecord | None = None

    def episodes_for(self, prompts: Sequence[Any], step: int) -> list[Episode]:
        """One fresh Episode per prompt, in order; sample = index within its group."""
        seen: dict[str, int] = {}
        episodes = []
        for i, prompt in enumerate(prompts):
            task_id = prompt if isinstance(prompt, str) else None
            if task_id not in self.tasks:
                raise KeyError(f"rollout prompt {i} ({str(prompt)[:60]!r}) is not a task id of this "
                               "run's data; build the dataset with trainers.grpo.task_dataset")
            sample = seen.get(task_id, 0)
            seen[task_id] = sample + 1
            episodes.append(Episode(task=self.tasks[task_id], simulator=self.simulator.name,
                                    group_id=f"{step}:{task_id}", sample=sample))
        return episodes

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, list]:
        step = trainer.state.global_step // self.updates_per_step
        episodes = self.episodes_for(prompts, step)
        acc = trainer.accelerator
        seed = self.seed * 1_000_003 + step * 1009 + acc.process_index
        with policy_engine(trainer, len(episodes)) as engine:
            result = run_rollout(episodes, make_policy(engine, self.rollout.system_prompt),
                                 self.simulator, self.rollout, seed=seed,
                                 any_live=_any_live(acc))
        self.last = RolloutRecord(step, result.episodes, result.stats)
        views = [ep.tokens for ep in result.episodes]
        return {"prompt_ids": [v.prompt_ids for v in views],
                "completion_ids": [v.completion_ids for v in views],
                "logprobs": [v.logprobs for v in views],
                "env_mask": [v.env_mask for v in views],
                "episodes": result.episodes}


@contextmanager
def policy_engine(trainer: Any, slots: int) -> Iterator[Any]:
    """A TokenEngine over the trainer's live policy: TRL's vLLM generation when use_vllm, else an
    HFEngine around the model unwrapped for generation (ZeRO-3 weights gathered, gradient
    checkpointing off for the duration)."""
    if trainer.use_vllm:
        yield TRLVLLMEngine.for_trainer(trainer, slots)
        return
    from engines.hf import HFEngine
    from trl.models import unwrap_model_for_generation

    with unwrap_model_for_generation(
            trainer.model_wrapped, trainer.accelerator,
            gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
            gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs) as model:
        yield HFEngine(model, trainer.processing_class, eos_token_ids=trainer.eos_token_ids,
                       batch_size=max(1, slots), name="policy")


def _any_live(accelerator: Any) -> Callable[[bool], bool] | None:
    """Cross-rank 'does any rank still have a live episode' (None in a single process)."""
    if accelerator.num_processes == 1:
        return None
    import torch

    def any_live(local: bool) -> bool:
        flag = torch.tensor([1 if local else 0], device=accelerator.device)
        return bool(accelerator.reduce(flag, reduction="sum").item() > 0)

    return any_live


def _details_excluded(details: Any) -> bool:
    """Whether an episode's stored reward details mark it excluded (attach_result writes the flag)."""
    return isinstance(details, dict) and bool(details.get("excluded"))


def judge_failures(details: Any) -> tuple[int, int, bool]:
    """(judge verdicts that failed to parse, 1 if every judge failed else 0, whether any judge
    took part) in one reward result's details, components of a weighted reward included."""
    if not isinstance(details, dict):
        return 0, 0, False
    parse, failed, judged = 0, 0, False
    if "valid_judges" in details:
        judged = True
        parse += int(details.get("parse_failures", 0))
        failed += int(details.get("valid_judges") == 0)
    parts = details.get("components")
    for part in (parts.values() if isinstance(parts, dict) else ()):
        p, f, j = judge_failures(part.get("details") if isinstance(part, dict) else None)
        parse, failed, judged = parse + p, failed + f, judged or j
    return parse, min(failed, 1), judged


def episode_reward_func(reward: Any, on_scored: Callable[[list[Episode], float], None] | None = None):
    """A TRL reward function scoring the `episodes` extra field with `reward.score`.

    It stores each RewardResult on its episode (`rewards.base.attach_result`) and then calls
    `on_scored(episodes, seconds spent scoring)`. It returns None for an excluded episode (TRL
    gives it zero advantage and leaves it out of its group's statistics). Its name (TRL logs
    `rewards/<name>/mean`) is the reward's name."""

    def score(prompts: list, completions: list, episodes: list[Episode] | None = None,
              **_: Any) -> list[float | None]:
        if episodes is None:
            raise RuntimeError("the reward function got no episodes: the trainer must be built "
                               "with EpisodeRollout as rollout_func")
        start = time.perf_counter()
        results = reward.score(episodes)
        if len(results) != len(episodes):
            raise RuntimeError(f"reward {reward.name!r} returned {len(results)} results for "
                               f"{len(episodes)} episodes")
        values = [attach_result(ep, res) for ep, res in zip(episodes, results)]
        if on_scored is not None:
            on_scored(list(episodes), time.perf_counter() - start)
        return values

    score.__name__ = str(getattr(reward, "name", "reward")).replace("/", "_")
    return score


def episode_metrics(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Namespaced metrics over transcript records of one step (see docs/metrics.md).

    reward/mean, reward/std (population), reward/min, reward/max over the episodes with a
    reward; reward/component/<name> per component of a weighted reward; reward/excluded (episodes left out of the loss), and with a judge reward
    reward/judge_parse_failures and reward/all_judges_failed (counts); sim/turns (mean assistant
    turns); sim/json_fallbacks, sim/empty_defaults, sim/guardrail_retries (per episode, from
    sim_details); episode/end_<reason> (fraction of episodes); tokens/* from the token views."""
    if not records:
        return {}
    n = len(records)
    rewards = [r["reward"] for r in records if isinstance(r.get("reward"), (int, float))]
    out: dict[str, float] = {"episode/count": float(n)}
    if rewards:
        mean = sum(rewards) / len(rewards)
        out.update({"reward/mean": mean, "reward/min": min(rewards), "reward/max": max(rewards),
                    "reward/std": math.sqrt(sum((x - mean) ** 2 for x in rewards) / len(rewards))})
    out.update(reward_failure_metrics([r.get("reward_details") for r in records]))
    out.update(component_metrics([r.get("reward_details") for r in records]))
    out["sim/turns"] = sum(sum(m["role"] == "assistant" for m in r["messages"]) for r in records) / n
    for key in ("json_fallbacks", "empty_defaults", "guardrail_retries"):
        out[f"sim/{key}"] = sum(float(r.get("sim_details", {}).get(key, 0)) for r in records) / n
    for reason in ("user_ended", "turn_cap", "length_cap"):
        out[f"episode/end_{reason}"] = sum(r.get("end_reason") == reason for r in records) / n
    toks = [r["tokens"] for r in records if r.get("tokens")]
    if toks:
        out["tokens/policy_mean"] = sum(t["policy"] for t in toks) / len(toks)
        out["tokens/episode_mean"] = sum(t["prompt"] + t["completion"] for t in toks) / len(toks)
    return out


def component_metrics(details: Sequence[Any]) -> dict[str, float]:
    """For a weighted reward: reward/component/<name> = the mean of that component's own value
    (before its weight) over the episodes where it was not excluded."""
    values: dict[str, list[float]] = {}
    for d in details:
        comps = d.get("components") if isinstance(d, dict) else None
        for name, comp in (comps or {}).items():
            value = comp.get("value") if isinstance(comp, dict) else None
            if isinstance(value, (int, float)) and not comp.get("excluded"):
                values.setdefault(name, []).append(float(value))
    return {f"reward/component/{name}": sum(v) / len(v) for name, v in values.items()}


def reward_failure_metrics(details: Sequence[Any]) -> dict[str, float]:
    """Counts over one step's reward details: reward/excluded (episodes left out of the loss) and,
    when a judge took part, reward/judge_parse_failures (verdicts that did not parse) and
    reward/all_judges_failed (episodes on which every judge failed)."""
    out = {"reward/excluded": float(sum(_details_excluded(d) for d in details))}
    counts = [judge_failures(d) for d in details]
    if any(judged for _, _, judged in counts):
        out["reward/judge_parse_failures"] = float(sum(p for p, _, _ in counts))
        out["reward/all_judges_failed"] = float(sum(f for _, f, _ in counts))
    return out


def validate(trainer: Any, step: int, *, tasks: Sequence[Task], simulator: Any, reward: Any,
             rollout: RolloutConfig, seed: int = 0) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Roll out one episode per validation task with the live policy and score it.

    Returns (metrics prefixed "val/", transcript records with phase "val"). Every process runs
    the whole validation set (generation stays collective); the main process writes it."""
    from trainers.runlog import episode_record

    episodes = [Episode(task=t, simulator=simulator.name, group_id=f"val{step}:{t.task_id}")
                for t in tasks]
    with policy_engine(trainer, len(episodes)) as engine:
        result = run_rollout(episodes, make_policy(engine, rollout.system_prompt), simulator,
                             rollout, seed=seed * 7919 + step, any_live=_any_live(trainer.accelerator))
    for ep, res in zip(result.episodes, reward.score(result.episodes)):
        attach_result(ep, res)
    records = [{**episode_record(ep, step), "phase": "val"} for ep in result.episodes]
    metrics = {f"val/{k}": v for k, v in episode_metrics(records).items()}
    metrics["timing/val_rollout_s"] = result.stats.total_s
    return metrics, records
