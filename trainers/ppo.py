"""Multi-turn PPO with a critic: the model, the batch, and one PPO step as named, timed phases.

One step (`PPOTrainer.step`), top to bottom:
1. rollout    each process plays its share of the step's episodes with the lockstep engine
              (trainers/rollout.py) and an HFEngine around the live policy (as GRPO does);
2. score      the Reward scores the episodes (terminal); with `turn_rewards` on, a reward with
              `turn_scores` (e.g. the multiturn-aware reward, rewards/multiturn.py) scores every
              assistant turn instead, and the terminal score is only logged. Excluded results (RewardResult.excluded) give their episode no
              learning signal: its row is masked out of every loss and counted;
3. values     one no-grad pass gives the log-probs of the sampled tokens (the "old" policy), the
              critic's values and the reference log-probs (LoRA: the same model with the adapter
              disabled, no second copy; full fine-tuning: a frozen copy of the initial model);
4. advantages per-token rewards (terminal on the last generated token, turn rewards on each turn's
              last generated token, −kl_coef·KL on every generated token), GAE over generated
              tokens only, optional whitening (trainers/advantages.py);
5. update     ppo_epochs passes over the batch in minibatches: clipped policy loss + vf_coef ×
              clipped value loss − entropy_coef × entropy, one optimizer step per minibatch;
6. log        metrics (docs/metrics.md: ppo/*, reward/*, timing/*), transcripts, KL controller.

The critic is a linear value head on the policy's last hidden state (default; with LoRA the head
and the adapters train together) or, with `critic_model`, a separate backbone with its own head.
Both live in one module (`PolicyValueModel`), so accelerate and DeepSpeed see one model and one
optimizer.

Token view (B episodes, right-padded): sequence = prompt_ids + completion_ids; completion token i
sits at absolute position P + i and is predicted from position P + i − 1, whose hidden state also
gives V(s_i). Tensors named in (B, T) are over completion tokens; `mask` is the env_mask.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal, Sequence

import torch
from torch import nn

from corpora.types import Episode, Task
from trainers.advantages import (adaptive_kl_coef, clipped_policy_loss, clipped_value_loss,
                                 entropy_from_logits, explained_variance, kl_penalty, masked_gae,
                                 masked_mean, masked_whiten, token_rewards)
from trainers.rollout import RolloutConfig, make_policy, run_rollout
from foundation.config import option


@dataclass
class PPOSettings:
    """PPO optimisation settings (the `ppo:` section of a training config)."""

    steps: int = option(20, help="PPO steps (rollout batches) to train for")
    prompts_per_step: int = option(4, help="tasks rolled out per step, over all processes")
    samples_per_prompt: int = option(2, help="episodes per task (the critic is the baseline, so 1 "
                                     "works; more gives the same episode budget as a GRPO group)")
    minibatch_size: int = option(4, help="episodes per optimizer update on each process")
    ppo_epochs: int = option(2, help="passes over each rollout batch (published PPO-RLHF: 1-4)")
    learning_rate: float = option(1e-5, help="AdamW learning rate of the policy (and of the "
                                  "critic when value_learning_rate is None)")
    value_learning_rate: float | None = option(None, help="learning rate of the value head and "
                                               "critic backbone (a fresh head often wants more "
                                               "than a full-model policy rate); None = learning_rate")
    value_head_init: Literal["zero", "normal"] = option(
        "zero", help="initial weight of the value head: zero (V = 0 at the start, so with "
        "gamma = lam = 1 the first advantages are the whitened returns, REINFORCE with a batch "
        "baseline) or normal (std 1/sqrt(hidden + 1): V starts as noise of the size of "
        "|hidden| / sqrt(hidden), ~2 on SmolLM2's post-norm states)")
    weight_decay: float = option(0.0, help="AdamW weight decay")
    max_grad_norm: float = option(1.0, help="gradient-norm clip")
    gamma: float = option(1.0, help="discount per generated token (1.0: no discount, the usual "
                          "choice for language; environment tokens never discount)")
    lam: float = option(0.95, help="GAE λ (0.95 in Ziegler et al. 2019 and OpenRLHF)")
    clip_range: float = option(0.2, help="policy ratio clip ε (0.2, Schulman et al. 2017)")
    clip_range_value: float = option(0.2, help="value clip: new values stay within ± this of the "
                                     "rollout's values in the loss")
    vf_coef: float = option(0.1, help="value loss weight in the joint loss (0.1 in TRL's former "
                            "PPO trainer)")
    entropy_coef: float = option(0.0, help="entropy bonus weight (0 = none)")
    kl_coef: float = option(0.05, help="initial KL penalty coefficient against the reference "
                            "policy (0 skips the reference pass)")
    kl_estimator: Literal["k1", "k3"] = option("k1", help="per-token KL estimate in the reward")
    target_kl: float | None = option(None, help="adapt kl_coef towards this KL per episode "
                                     "(Ziegler et al. 2019, horizon kl_horizon); None = fixed")
    kl_horizon: int = option(10000, help="horizon of the adaptive KL controller, in episodes")
    whiten_advantages: bool = option(True, help="whiten advantages over the batch's generated "
                                     "tokens before the policy loss")
    reward_norm: Literal["none", "batch"] = option(
        "none", help="normalise episode rewards over the step's batch (all processes) to zero "
        "mean, unit std before placing them")
    turn_rewards: bool = option(False, help="reward each assistant turn with the reward's "
                                "turn_scores (rewards/multiturn.py; error if it has none) INSTEAD "
                                "of the terminal reward, which is then only logged (the last "
                                "turn's reward already scores the final state)")
    critic_model: str | None = option(None, help="a separate critic backbone (model folder); None "
                                      "= a value head on the policy's backbone")
    gradient_checkpointing: bool = option(False, help="recompute activations in backward")

    def __post_init__(self) -> None:
        for name in ("steps", "prompts_per_step", "samples_per_prompt", "minibatch_size",
                     "ppo_epochs", "kl_horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"ppo.{name} must be >= 1, got {getattr(self, name)}")
        if not (0 <= self.gamma <= 1 and 0 <= self.lam <= 1):
            raise ValueError(f"ppo.gamma and ppo.lam must lie in [0, 1], got {self.gamma}, {self.lam}")
        if self.value_learning_rate is not None and self.value_learning_rate <= 0:
            raise ValueError("ppo.value_learning_rate must be > 0 (or None = learning_rate)")
        if self.learning_rate <= 0 or self.clip_range <= 0 or self.clip_range_value <= 0:
            raise ValueError("ppo.learning_rate, ppo.clip_range and ppo.clip_range_value must be > 0")
        if self.kl_coef < 0 or self.vf_coef < 0 or self.entropy_coef < 0:
            raise ValueError("ppo.kl_coef, ppo.vf_coef and ppo.entropy_coef must be >= 0")
        if self.target_kl is not None and (self.target_kl <= 0 or self.kl_coef == 0):
            raise ValueError("ppo.target_kl needs target_kl > 0 and a starting kl_coef > 0")

    def episodes_per_process(self, num_processes: int) -> int:
        """Episodes each process rolls out per step; errors name the numbers to change."""
        total = self.prompts_per_step * self.samples_per_prompt
        if total % num_processes:
            raise ValueError(f"a step has {total} episodes (prompts_per_step × samples_per_prompt), "
                             f"not a multiple of the {num_processes} processes")
        local = total // num_processes
        if local % self.minibatch_size:
            raise ValueError(f"each process trains on {local} episodes per step, not a multiple of "
                             f"ppo.minibatch_size ({self.minibatch_size}); pick a divisor of {local}")
        return local


class PolicyValueModel(nn.Module):
    """The policy (causal LM, peft-wrapped or not) and its critic, as one module.

    forward(input_ids (B, L), attention_mask (B, L)) -> (logits (B, L, V), values (B, L)), where
    values[:, j] is the critic's estimate of the state after the first j + 1 tokens.
    head_init: "zero" (the head's weight and bias start at 0, so every value is 0 until the
    critic trains) or "normal" (weight ~ N(0, 1/(hidden + 1)))."""

    def __init__(self, policy: nn.Module, critic_backbone: nn.Module | None = None,
                 head_init: Literal["zero", "normal"] = "zero"):
        super().__init__()
        self.policy = policy
        self.critic_backbone = critic_backbone
        hidden = (critic_backbone or policy).config.hidden_size
        self.value_head = nn.Linear(hidden, 1)
        if head_init == "zero":
            nn.init.zeros_(self.value_head.weight)
        elif head_init == "normal":
            nn.init.normal_(self.value_head.weight, std=1.0 / (hidden + 1) ** 0.5)
        else:
            raise ValueError(f"value head init must be 'zero' or 'normal', got {head_init!r}")
        nn.init.zeros_(self.value_head.bias)

    # gradient checkpointing is the policy's (TRL's unwrap_model_for_generation toggles it)
    @property
    def is_gradient_checkpointing(self) -> bool:
        return bool(getattr(self.policy, "is_gradient_checkpointing", False))

    def gradient_checkpointing_disable(self) -> None:
        self.policy.gradient_checkpointing_disable()

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        self.policy.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs=gradient_checkpointing_kwargs)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                positions: torch.Tensor | None = None):
        """(logits, values) over the whole sequence, or with `positions` (B, T) only at those
        positions: (logits (B, T, V), values (B, T)). The positioned form runs the backbone,
        picks the hidden states at `positions` and applies the LM head to those alone, so no
        (B, L, V) logits (nor their gradient) exist; it falls back to the full pass for models
        whose logits are more than lm_head(last hidden state)."""
        split = split_causal_lm(self.policy) if positions is not None else None
        if split is None:
            out = self.policy(input_ids=input_ids, attention_mask=attention_mask,
                              output_hidden_states=self.critic_backbone is None)
            logits = out.logits
            hidden = out.hidden_states[-1] if self.critic_backbone is None else None
        else:
            backbone, head = split
            hidden = backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            logits = head(pick(hidden, positions))
        if self.critic_backbone is not None:
            hidden = self.critic_backbone(input_ids=input_ids,
                                          attention_mask=attention_mask).last_hidden_state
        values = self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1)
        if positions is not None:
            values = values.gather(1, positions.to(values.device))
            if split is None:
                logits = pick(logits, positions)
        return logits, values


# config fields that make a model's logits more than lm_head(last hidden state)
_LOGIT_EXTRAS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def split_causal_lm(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """(backbone, lm_head) of a causal LM, peft-wrapped or not (LoRA layers sit inside the
    backbone, so the adapter and `disable_adapter()` act as in a full call), or None where the
    model has no such split or post-processes its logits (soft-capping, logit scales)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone = getattr(base, getattr(base, "base_model_prefix", "") or "", None)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if not isinstance(backbone, nn.Module) or not isinstance(head, nn.Module):
        return None
    config = getattr(base, "config", None)
    if any(getattr(config, k, None) not in (None, 1, 1.0) for k in _LOGIT_EXTRAS):
        return None
    return backbone, head


def pick(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x (B, L, ...) at positions (B, T) -> (B, T, ...)."""
    idx = positions.to(x.device)
    return x.gather(1, idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand(*idx.shape, *x.shape[2:]))


def causal_logits(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  positions: torch.Tensor) -> torch.Tensor:
    """A causal LM's logits (B, T, V) at positions (B, T) only (the reference pass)."""
    split = split_causal_lm(model)
    if split is None:
        return pick(model(input_ids=input_ids, attention_mask=attention_mask).logits, positions)
    backbone, head = split
    hidden = backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return head(pick(hidden, positions))


@dataclass
class TokenBatch:
    """Episodes' token views as padded tensors."""

    input_ids: torch.Tensor       # (B, L) prompt + completion, right-padded
    attention_mask: torch.Tensor  # (B, L) 1 on real tokens
    positions: torch.Tensor       # (B, T) position predicting completion token i: P_b + i − 1
    completion: torch.Tensor      # (B, T) completion ids (pad 0)
    mask: torch.Tensor            # (B, T) float env_mask; 0 on padding and excluded episodes

    def rows(self, idx: torch.Tensor) -> "TokenBatch":
        """The episodes idx, cut to their own longest sequence (no padding to the batch max)."""
        length = int(self.attention_mask[idx].sum(1).max())
        return TokenBatch(self.input_ids[idx, :length], self.attention_mask[idx, :length],
                          self.positions[idx], self.completion[idx], self.mask[idx])


def token_batch(episodes: Sequence[Episode], pad_id: int, excluded: Sequence[bool] = ()) -> TokenBatch:
    """Pad the episodes' token views (every episode must have one: a TokenPolicy rollout)."""
    views = []
    for i, ep in enumerate(episodes):
        if ep.tokens is None:
            raise ValueError(f"episode {i} (task {ep.task.task_id!r}) has no token view; roll out "
                             "with a TokenPolicy")
        views.append(ep.tokens)
    L = max(len(v.prompt_ids) + len(v.completion_ids) for v in views)
    T = max(1, max(len(v.completion_ids) for v in views))
    B = len(views)
    input_ids = torch.full((B, L), pad_id, dtype=torch.long)
    attention = torch.zeros((B, L), dtype=torch.long)
    positions = torch.zeros((B, T), dtype=torch.long)
    completion = torch.zeros((B, T), dtype=torch.long)
    mask = torch.zeros((B, T))
    for b, v in enumerate(views):
        seq, P, C = v.prompt_ids + v.completion_ids, len(v.prompt_ids), len(v.completion_ids)
        input_ids[b, :len(seq)] = torch.tensor(seq)
        attention[b, :len(seq)] = 1
        positions[b] = torch.clamp(torch.arange(T) + P - 1, max=len(seq) - 1)
        completion[b, :C] = torch.tensor(v.completion_ids, dtype=torch.long)
        if not (b < len(excluded) and excluded[b]):
            mask[b, :C] = torch.tensor(v.env_mask, dtype=torch.float)
    return TokenBatch(input_ids, attention, positions, completion, mask)


def completion_terms(logits: torch.Tensor, values: torch.Tensor, batch: TokenBatch,
                     with_entropy: bool = False):
    """From logits and values at the completion positions ((B, T, V) and (B, T), as the model
    returns them given batch.positions) or over the full sequence ((B, L, V), (B, L)): the
    sampled completion tokens' log-probs (B, T), V(s_i) (B, T) and, optionally, the entropy."""
    T = batch.positions.shape[1]
    if logits.shape[1] != T or values.shape[1] != T:  # full-sequence form
        logits, values = pick(logits, batch.positions), values.gather(1, batch.positions.to(values.device))
    picked = logits.float()
    logp = torch.log_softmax(picked, dim=-1).gather(
        -1, batch.completion.to(logits.device).unsqueeze(-1)).squeeze(-1)
    ent = entropy_from_logits(picked) if with_entropy else None
    return logp, values.float(), ent


def episode_token_rewards(episodes: Sequence[Episode], batch: TokenBatch, terminal: torch.Tensor,
                          turn_scores: Sequence[Sequence[float]] | None, kl: torch.Tensor | None,
                          kl_coef: float) -> torch.Tensor:
    """Rewards (B, T) for the episodes' completion tokens (trainers/advantages.token_rewards):
    terminal on each episode's last generated token, turn scores on each assistant turn's last
    generated token, −kl_coef·kl on every generated token; nothing on excluded rows (mask 0)."""
    turns = None
    if turn_scores is not None:
        turns = [list(s) if float(batch.mask[b].sum()) > 0 else [] for b, s in enumerate(turn_scores)]
    return token_rewards(batch.mask, terminal, turns, kl, kl_coef)


@contextmanager
def reference_policy(model: PolicyValueModel, ref_model: nn.Module | None) -> Iterator[Any]:
    """The reference policy for the KL penalty: a peft policy with its adapter disabled, else the
    frozen copy passed as ref_model."""
    if ref_model is not None:
        yield ref_model
    elif hasattr(model.policy, "disable_adapter"):
        with model.policy.disable_adapter():
            yield model.policy
    else:
        raise ValueError("kl_coef > 0 with full fine-tuning needs a reference model copy")


@dataclass
class StepData:
    """What the no-grad pass and the advantage phase computed for one batch (B, T tensors)."""

    batch: TokenBatch
    old_logp: torch.Tensor
    old_values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    kl: torch.Tensor
    rewards: torch.Tensor


@dataclass
class Phases:
    """Wall time of each named phase of a step."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def metrics(self) -> dict[str, float]:
        return {f"timing/{k}_s": v for k, v in self.seconds.items()}


def step_tasks(tasks: Sequence[Task], settings: PPOSettings, step: int, seed: int,
               rank: int, num_processes: int) -> list[tuple[Task, int]]:
    """This process's (task, sample) pairs for a step: the step draws prompts_per_step tasks from
    a seeded shuffle of the data (the same on every process), each repeated samples_per_prompt
    times, and the pairs are dealt out to processes in contiguous blocks."""
    order = list(range(len(tasks)))
    epoch, offset = divmod(step * settings.prompts_per_step, len(tasks))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    picked = [tasks[order[(offset + k) % len(tasks)]] for k in range(settings.prompts_per_step)]
    pairs = [(t, s) for t in picked for s in range(settings.samples_per_prompt)]
    per = len(pairs) // num_processes
    return pairs[rank * per:(rank + 1) * per]


class PPOTrainer:
    """Runs PPO steps on a prepared (accelerate) PolicyValueModel; see the module docstring.

    model/optimizer: as returned by accelerator.prepare; ref_model: frozen reference for full
    fine-tuning with kl_coef > 0 (None with LoRA); runlog: trainers.runlog.RunLog."""

    def __init__(self, *, accelerator: Any, model: Any, optimizer: Any, tokenizer: Any,
                 settings: PPOSettings, rollout: RolloutConfig, simulator: Any, reward: Any,
                 tasks: Sequence[Task], runlog: Any, ref_model: nn.Module | None = None,
                 seed: int = 0):
        self.acc, self.model, self.optimizer = accelerator, model, optimizer
        self.tokenizer, self.s, self.rollout_cfg = tokenizer, settings, rollout
        self.simulator, self.reward, self.tasks = simulator, reward, list(tasks)
        self.runlog, self.ref_model, self.seed = runlog, ref_model, seed
        self.kl_coef = settings.kl_coef
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.rewards: list[float] = []  # reward/mean of each step
        self.excluded_total = 0
        if settings.turn_rewards and not hasattr(reward, "turn_scores"):
            raise ValueError(f"ppo.turn_rewards is on but reward {getattr(reward, 'name', reward)!r} "
                             "has no turn_scores; use kind: multiturn or turn it off")

    @property
    def unwrapped(self) -> PolicyValueModel:
        return self.acc.unwrap_model(self.model)

    def step(self, step: int) -> dict[str, float]:
        """One PPO step (module docstring); returns the metrics row it logged."""
        phases = Phases()
        with phases("rollout"):
            episodes, roll_metrics = self.roll_out(step)
        with phases("score"):
            terminal, excluded, turn_scores = self.score(episodes)
        with phases("values"):
            batch, old_logp, old_values, ref_logp, live = self.evaluate(episodes, excluded)
        with phases("advantages"):
            data = self.advantages(episodes, batch, old_logp, old_values, ref_logp, terminal,
                                   turn_scores)
        with phases("update"):
            update = self.update(data, step, live)
        with phases("log"):
            row = self.log(step, episodes, data, update, {**roll_metrics, "ppo/excluded_episodes":
                                                          float(sum(excluded))})
        row.update(phases.metrics())
        self.runlog.metrics(step, row)
        return row

    def single_update(self, batch_size: int) -> bool:
        """True when a step makes exactly one optimizer update on its whole batch (ppo_epochs 1,
        minibatch_size = the process's episodes): then the values pass IS the update's forward
        pass (kept with its graph), since the old policy and critic are the current ones."""
        return self.s.ppo_epochs == 1 and self.s.minibatch_size >= batch_size

    # ---- phases -------------------------------------------------------------------------------
    def roll_out(self, step: int) -> tuple[list[Episode], dict[str, float]]:
        from engines.hf import HFEngine
        from trainers.grpo import _any_live
        from trl.models import unwrap_model_for_generation

        pairs = step_tasks(self.tasks, self.s, step, self.seed, self.acc.process_index,
                           self.acc.num_processes)
        episodes = [Episode(task=t, simulator=self.simulator.name, group_id=f"{step}:{t.task_id}",
                            sample=k) for t, k in pairs]
        seed = self.seed * 1_000_003 + step * 1009 + self.acc.process_index
        with unwrap_model_for_generation(self.model, self.acc) as unwrapped:
            engine = HFEngine(unwrapped.policy, self.tokenizer, batch_size=max(1, len(episodes)),
                              name="policy")
            result = run_rollout(episodes, make_policy(engine, self.rollout_cfg.system_prompt),
                                 self.simulator, self.rollout_cfg, seed=seed,
                                 any_live=_any_live(self.acc))
        return result.episodes, result.stats.metrics()

    def score(self, episodes: list[Episode]):
        """Terminal rewards (B,), excluded flags, and per-turn scores (or None)."""
        results = self.reward.score(episodes)
        if len(results) != len(episodes):
            raise RuntimeError(f"reward returned {len(results)} results for {len(episodes)} episodes")
        excluded = [bool(getattr(r, "excluded", False)) for r in results]
        for ep, res, x in zip(episodes, results, excluded):
            # an excluded episode keeps its details but no reward (reward/* leave it out)
            ep.reward = None if x else float(res.value)
            ep.reward_details = {**res.details, "excluded": True} if x else dict(res.details)
        values = torch.tensor([0.0 if x or self.s.turn_rewards else ep.reward
                               for ep, x in zip(episodes, excluded)])
        if self.s.reward_norm == "batch" and not self.s.turn_rewards:
            values = self._normalise(values, excluded)
        turn_scores = self.reward.turn_scores(episodes) if self.s.turn_rewards else None
        return values, excluded, turn_scores

    def _normalise(self, values: torch.Tensor, excluded: list[bool]) -> torch.Tensor:
        keep = torch.tensor([0.0 if x else 1.0 for x in excluded])
        both = self.acc.gather(torch.stack([values, keep], dim=1).to(self.acc.device)).cpu()
        mean = masked_mean(both[:, 0], both[:, 1])
        n = both[:, 1].sum()
        var = ((both[:, 0] - mean) ** 2 * both[:, 1]).sum() / n.clamp(min=1)
        return (values - mean) / (var.sqrt() + 1e-8) * keep

    def evaluate(self, episodes: list[Episode], excluded: list[bool]):
        """Old log-probs, values and reference log-probs of the sampled tokens, (B, T) each, and
        the live (graph-holding) log-probs, values and entropy when single_update() holds, else
        None. Logits exist only at the completion positions (PolicyValueModel.forward)."""
        batch = token_batch(episodes, self.pad_id, excluded)
        dev = self.acc.device
        ids, attn, pos = batch.input_ids.to(dev), batch.attention_mask.to(dev), batch.positions.to(dev)
        ref_logp = None
        if self.kl_coef > 0:  # first, so a live graph never spans another forward pass
            with torch.no_grad(), reference_policy(self.unwrapped, self.ref_model) as ref:
                ref_logits = causal_logits(ref, ids, attn, pos)
                ref_logp = torch.log_softmax(ref_logits.float(), dim=-1).gather(
                    -1, batch.completion.to(dev).unsqueeze(-1)).squeeze(-1)
            del ref_logits
        live = None
        if self.single_update(len(episodes)):
            self.model.train()
            logits, values = self.model(ids, attn, pos)
            live = completion_terms(logits, values, batch, with_entropy=True)
            old_logp, old_values = live[0].detach(), live[1].detach()
            del logits
        else:
            self.model.eval()
            with torch.no_grad():
                logits, values = self.model(ids, attn, pos)
                old_logp, old_values, _ = completion_terms(logits, values, batch)
            del logits
            self.model.train()
        return (batch, old_logp.cpu(), old_values.cpu(),
                None if ref_logp is None else ref_logp.cpu(), live)

    def advantages(self, episodes, batch, old_logp, old_values, ref_logp, terminal,
                   turn_scores) -> StepData:
        mask = batch.mask
        kl = (kl_penalty(old_logp, ref_logp, mask, self.s.kl_estimator) if ref_logp is not None
              else torch.zeros_like(mask))
        rewards = episode_token_rewards(episodes, batch, terminal, turn_scores, kl, self.kl_coef)
        advantages, returns = masked_gae(rewards, old_values * mask, mask, self.s.gamma, self.s.lam)
        if self.s.whiten_advantages:
            advantages = self._whiten(advantages, mask)
        return StepData(batch, old_logp, old_values * mask, advantages, returns, kl, rewards)

    def _whiten(self, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Whiten with the mean and variance over every process's generated tokens."""
        if self.acc.num_processes == 1:
            return masked_whiten(advantages, mask)
        sums = torch.stack([(advantages * mask).sum(), (advantages ** 2 * mask).sum(), mask.sum()])
        s1, s2, n = self.acc.reduce(sums.to(self.acc.device), reduction="sum").cpu().tolist()
        mean = s1 / max(n, 1.0)
        var = (s2 - n * mean ** 2) / max(n - 1, 1.0)
        return (advantages - mean) / (max(var, 0.0) + 1e-8) ** 0.5 * mask

    def update(self, data: StepData, step: int, live: tuple | None = None) -> dict[str, float]:
        """ppo_epochs × minibatches of joint policy/value updates; mean diagnostics. `live`: the
        values pass's graph-holding terms (evaluate), used for the single whole-batch update."""
        B = data.batch.input_ids.shape[0]
        if live is not None:
            return self._minibatch(data, torch.arange(B), live)
        gen = torch.Generator().manual_seed(self.seed * 7919 + step)
        sums: dict[str, float] = {}
        count = 0
        for _ in range(self.s.ppo_epochs):
            order = torch.randperm(B, generator=gen)
            for start in range(0, B, self.s.minibatch_size):
                idx = order[start:start + self.s.minibatch_size]
                for k, v in self._minibatch(data, idx).items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
        return {k: v / max(count, 1) for k, v in sums.items()}

    def _minibatch(self, data: StepData, idx: torch.Tensor, live: tuple | None = None) -> dict[str, float]:
        sub = data.batch.rows(idx)
        dev = self.acc.device
        if live is None:
            logits, values = self.model(sub.input_ids.to(dev), sub.attention_mask.to(dev),
                                        sub.positions.to(dev))
            live = completion_terms(logits, values, sub, with_entropy=True)
            del logits
        logp, vals, ent = live
        mask = sub.mask.to(dev)
        pol = clipped_policy_loss(logp, data.old_logp[idx].to(dev), data.advantages[idx].to(dev),
                                  mask, self.s.clip_range)
        vloss, vclip = clipped_value_loss(vals, data.old_values[idx].to(dev),
                                          data.returns[idx].to(dev), mask, self.s.clip_range_value)
        entropy = masked_mean(ent, mask)
        loss = pol.loss + self.s.vf_coef * vloss - self.s.entropy_coef * entropy
        self.acc.backward(loss)
        grad_norm = self.acc.clip_grad_norm_(self.model.parameters(), self.s.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad()
        return {"ppo/policy_loss": float(pol.loss.detach()), "ppo/value_loss": float(vloss.detach()),
                "ppo/loss": float(loss.detach()), "ppo/clipfrac": float(pol.clipfrac),
                "ppo/vf_clipfrac": float(vclip), "ppo/approx_kl": float(pol.approx_kl),
                "ppo/entropy": float(entropy.detach()),
                "ppo/grad_norm": float(grad_norm) if grad_norm is not None else float("nan")}

    def log(self, step: int, episodes: list[Episode], data: StepData, update: dict[str, float],
            extra: dict[str, float]) -> dict[str, float]:
        from accelerate.utils import gather_object
        from trainers.grpo import episode_metrics
        from trainers.runlog import episode_record

        records = gather_object([{**episode_record(ep, step), "phase": "train"} for ep in episodes])
        mask = data.batch.mask
        row = {**extra, **episode_metrics(records), **update}
        ev = explained_variance(data.old_values, data.returns, mask)
        per_episode_kl = float((data.kl * mask).sum(1).mean())
        row.update({"ppo/explained_variance": ev, "ppo/kl_ref": per_episode_kl,
                    "ppo/kl_coef": self.kl_coef, "ppo/values_mean": float(masked_mean(data.old_values, mask)),
                    "ppo/returns_mean": float(masked_mean(data.returns, mask)),
                    "ppo/advantages_mean": float(masked_mean(data.advantages, mask))})
        row = {k: self._over_ranks(v, "sum" if k == "ppo/excluded_episodes" else "mean")
               if k.startswith("ppo/") else v for k, v in row.items()}
        self.excluded_total += int(row["ppo/excluded_episodes"])
        if "reward/mean" in row:
            self.rewards.append(row["reward/mean"])
        if self.s.target_kl is not None:
            self.kl_coef = adaptive_kl_coef(self.kl_coef, row["ppo/kl_ref"], self.s.target_kl,
                                            len(records), self.s.kl_horizon)
        self.runlog.records(records)
        return row

    def _over_ranks(self, value: float, reduction: str) -> float:
        """A scalar reduced over processes (mean or sum)."""
        if self.acc.num_processes == 1:
            return float(value)
        t = torch.tensor([value], dtype=torch.float64, device=self.acc.device)
        return float(self.acc.reduce(t, reduction=reduction).item())
