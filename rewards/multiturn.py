"""The multiturn-aware reward (CollabLLM, ICML 2025): reward a turn by the futures it leads to.

For a conversation prefix ending with an assistant turn (the candidate), sample `num_futures`
continuations for up to `window` more assistant turns — the simulator plays the user, an assistant
engine plays the assistant (default: the policy being trained, bound by the trainer with
`bind_assistant` and frozen while it samples) — score each whole future conversation with a task
reward (the judge, or any Reward), and reward the candidate with the mean:

    value(future)  = task_reward(future) − token_cost · assistant_tokens(future)
    reward(prefix) = (1 / F) · Σ_f value(future_f)

assistant_tokens(future) counts the candidate turn and the assistant turns sampled after it (the
tokens the conversation spends from the candidate on), with the assistant's tokenizer when it has
one, else whitespace words. A future stops early when the simulator ends the conversation. A
prefix whose conversation the user already ended has one possible future, itself (it is scored
once, as F identical futures would be). Futures whose task reward is excluded (unmeasurable) are
left out of the mean; when all are, the result is excluded.

Batched: every future of every prefix in a `score`/`turn_scores` call advances together, one
simulator call and one assistant call per future turn for the whole batch, then one task-reward
call. Seeded: the assistant samples with seed `seed + t` at future turn t (the simulator carries
its own seed). Cached by conversation prefix (task, persona, messages): a prefix scored once is
not sampled again. Each result's details report the calls, futures and tokens spent.

Two uses: `turn_scores(episodes)` gives one reward per assistant turn (PPO's turn-level rewards,
trainers/ppo.py), and `score(episodes)` rewards the final state (a terminal reward for GRPO or
PPO). Config (rewards.build_reward):

    kind: multiturn
    task_reward: {kind: judge, judges: [...]}     # any reward config
    simulator: roleplay2-cpu                      # zoo name (zoo: file, engine: override optional)
    assistant: policy                             # or an engine spec, e.g. hf:/models/x
    num_futures: 3
    window: 2
    token_cost: 0.0005
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from corpora.types import END_USER, Episode, Message
from engines.base import Sampling
from rewards.base import REWARD_KINDS, Reward, RewardResult


@dataclass
class FutureStats:
    """What a batch of future sampling cost."""

    prefixes: int = 0
    cache_hits: int = 0
    futures: int = 0
    simulator_calls: int = 0
    assistant_calls: int = 0
    task_reward_calls: int = 0
    assistant_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Prefix:
    episode: Episode        # the real episode the prefix comes from
    messages: list[Message]  # the conversation up to and including the candidate turn
    ended: bool             # the user already ended the conversation: no future to sample
    futures: list[Episode] = field(default_factory=list)


@REWARD_KINDS.register("multiturn")
class MultiturnReward:
    """task_reward: Reward scoring a whole conversation; simulator: plays the user; assistant:
    a ChatEngine, or None until `bind_assistant` (the policy)."""

    def __init__(self, task_reward: Reward, simulator: Any, *, assistant: Any = None,
                 num_futures: int = 2, window: int = 2, token_cost: float = 0.0,
                 temperature: float = 1.0, max_tokens: int = 256, seed: int = 0,
                 count_tokens: Callable[[str], int] | None = None, name: str = "multiturn"):
        if num_futures < 1 or window < 0 or token_cost < 0:
            raise ValueError(f"multiturn reward: num_futures must be >= 1, window >= 0 and "
                             f"token_cost >= 0, got {num_futures}, {window}, {token_cost}")
        self.task_reward, self.simulator, self.assistant = task_reward, simulator, assistant
        self.num_futures, self.window, self.token_cost = num_futures, window, token_cost
        self.sampling = Sampling(temperature=temperature, max_tokens=max_tokens)
        self.seed, self.name = seed, name
        self.count_tokens = count_tokens or _tokens_of(assistant)
        self._cache: dict[tuple, RewardResult] = {}
        self.last_stats = FutureStats()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], engine_loader: Callable[..., Any] | None = None
                    ) -> "MultiturnReward":
        from rewards.weighted import build_reward
        from simulators.zoo import load_simulator

        known = {"kind", "task_reward", "simulator", "zoo", "simulator_engine", "assistant",
                 "num_futures", "window", "token_cost", "temperature", "max_tokens", "seed", "name"}
        unknown = sorted(set(config) - known)
        if unknown or "task_reward" not in config or "simulator" not in config:
            raise ValueError(f"multiturn reward config needs task_reward and simulator; unknown "
                             f"keys {unknown} (known: {sorted(known)})")
        seed = int(config.get("seed", 0))
        simulator = load_simulator(str(config["simulator"]), config.get("zoo"),
                                   engine_override=config.get("simulator_engine"), seed=seed)
        spec = config.get("assistant", "policy")
        if spec != "policy":
            from engines.spec import load_chat_engine

            assistant = (engine_loader or load_chat_engine)(spec)
        else:
            assistant = None
        return cls(build_reward(config["task_reward"], engine_loader=engine_loader), simulator,
                   assistant=assistant, seed=seed,
                   **{k: config[k] for k in ("num_futures", "window", "token_cost", "temperature",
                                             "max_tokens", "name") if k in config})

    def bind_assistant(self, model: Any, tokenizer: Any) -> None:
        """Play the assistant with this (policy) model when the config said `assistant: policy`."""
        if self.assistant is not None:
            return
        from engines.hf import HFEngine

        self.assistant = HFEngine(model, tokenizer, name="policy")
        self.count_tokens = _tokens_of(self.assistant)

    # ---- the two uses --------------------------------------------------------------------------
    def score(self, episodes: Sequence[Episode]) -> list[RewardResult]:
        """Terminal use: each episode's final state, scored by its futures."""
        prefixes = []
        for ep in episodes:
            ended = ep.end_reason == END_USER
            n = len(ep.messages) if ended else _last_assistant(ep.messages) + 1
            prefixes.append(_Prefix(ep, list(ep.messages[:n]), ended))
        return self._score_prefixes(prefixes)

    def turn_scores(self, episodes: Sequence[Episode]) -> list[list[float]]:
        """Turn-level use: one reward per assistant turn of each episode, in order (an excluded
        turn scores 0.0)."""
        prefixes, owners = [], []
        for i, ep in enumerate(episodes):
            cut = [k + 1 for k, m in enumerate(ep.messages) if m.role == "assistant"]
            for n in cut:
                ended = ep.end_reason == END_USER and all(m.role != "assistant"
                                                          for m in ep.messages[n:])
                prefixes.append(_Prefix(ep, list(ep.messages[:n]), ended))
                owners.append(i)
        results = self._score_prefixes(prefixes)
        out: list[list[float]] = [[] for _ in episodes]
        for i, res in zip(owners, results):
            out[i].append(0.0 if res.excluded else res.value)
        return out

    # ---- sampling and scoring -----------------------------------------------------------------
    def _score_prefixes(self, prefixes: list[_Prefix]) -> list[RewardResult]:
        stats = FutureStats(prefixes=len(prefixes))
        todo: dict[tuple, _Prefix] = {}
        for p in prefixes:
            key = _key(p)
            if key in self._cache:
                stats.cache_hits += 1
            elif key not in todo:
                todo[key] = p
        if todo:
            self._sample(list(todo.values()), stats)
            self._evaluate(todo, stats)
        self.last_stats = stats
        return [self._with_stats(self._cache[_key(p)], stats) for p in prefixes]

    def _sample(self, prefixes: list[_Prefix], stats: FutureStats) -> None:
        """Open the futures and play them `window` assistant turns on, all in lockstep."""
        if any(not p.ended for p in prefixes) and self.window and self.assistant is None:
            raise RuntimeError("multiturn reward: no assistant engine; set assistant: <engine spec> "
                               "or let the trainer bind the policy (bind_assistant)")
        live = []
        for p in prefixes:
            count = 1 if p.ended else self.num_futures
            p.futures = [Episode(task=p.episode.task, simulator=p.episode.simulator,
                                 group_id=p.episode.group_id, sample=f, messages=list(p.messages),
                                 persona=p.episode.persona, sim_details=dict(p.episode.sim_details),
                                 end_reason=END_USER if p.ended else None)
                         for f in range(count)]
            live += [] if p.ended else p.futures
        for t in range(self.window):
            if not live:
                break
            turns = self.simulator.reply(live)
            stats.simulator_calls += 1
            going = []
            for fut, turn in zip(live, turns):
                if turn.text:
                    fut.messages.append(Message("user", turn.text))
                if turn.ends:
                    fut.end_reason = END_USER
                else:
                    going.append(fut)
            if not going:
                break
            texts = self.assistant.chat([f.messages for f in going], self.sampling.with_(seed=self.seed + t))
            stats.assistant_calls += 1
            for fut, text in zip(going, texts):
                fut.messages.append(Message("assistant", text))
            live = going

    def _evaluate(self, todo: dict[tuple, _Prefix], stats: FutureStats) -> None:
        futures = [f for p in todo.values() for f in p.futures]
        results = self.task_reward.score(futures)
        stats.task_reward_calls += 1
        stats.futures = len(futures)
        k = 0
        for key, p in todo.items():
            values, parts = [], []
            for fut, res in zip(p.futures, results[k:k + len(p.futures)]):
                start = _last_assistant(p.messages)  # the candidate turn onwards
                tokens = sum(self.count_tokens(m.content) for m in fut.messages[max(start, 0):]
                             if m.role == "assistant")
                stats.assistant_tokens += tokens
                value = float(res.value) - self.token_cost * tokens
                parts.append({"task_reward": float(res.value), "assistant_tokens": tokens,
                              "value": value, "turns": len(fut.messages) - len(p.messages),
                              "excluded": bool(res.excluded)})
                if not res.excluded:
                    values.append(value)
            k += len(p.futures)
            mean = sum(values) / len(values) if values else 0.0
            self._cache[key] = RewardResult(mean, {"futures": parts}, excluded=not values)

    @staticmethod
    def _with_stats(result: RewardResult, stats: FutureStats) -> RewardResult:
        return RewardResult(result.value, {**result.details, "batch": stats.as_dict()},
                            excluded=result.excluded)


def _last_assistant(messages: Sequence[Message]) -> int:
    """Index of the last assistant message (−1 when there is none)."""
    return max((k for k, m in enumerate(messages) if m.role == "assistant"), default=-1)


def _key(p: _Prefix) -> tuple:
    return (p.episode.task.task_id, p.episode.persona, p.ended,
            tuple((m.role, m.content) for m in p.messages))


def _tokens_of(engine: Any) -> Callable[[str], int]:
    tokenizer = getattr(engine, "tokenizer", None)
    if tokenizer is not None:
        return lambda text: len(tokenizer.encode(text, add_special_tokens=False))
    return lambda text: len(text.split())
