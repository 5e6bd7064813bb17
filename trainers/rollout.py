"""The multi-turn rollout engine: conversations between a policy and a user simulator.

`run_rollout(episodes, policy, simulator, config)` plays every episode to its end. Each lockstep
turn makes ONE batched policy call for all live episodes and ONE batched simulator call
(`simulator.reply(live)`); the conversations open with one `simulator.open(episodes)` call. An
episode ends when the simulator ends it (END_USER), when the assistant has taken `max_turns`
turns (END_TURN_CAP), or when the next turn would no longer fit in `max_total_tokens`
(END_LENGTH_CAP). The task's intent never reaches the policy: the policy sees `episode.messages`
(user and assistant turns) plus the optional system prompt.

Two policy adapters share the loop:
- `TokenPolicy(engine)` over a TokenEngine (training). It builds each episode's TokenView
  (corpora/types.py) by APPENDING ids, never re-tokenising earlier text:
  prompt ids   = chat template of [system prompt?, opening user turn] + assistant header;
  completion   = the ids the policy generated (its end-of-turn token included, env_mask 1),
                 then the template's turn glue and the rendered user turn (env_mask 0), and so on.
  When a turn hit `max_tokens` without the end-of-turn token and the conversation continues, the
  template's closing ids (end-of-turn token included) are appended as environment tokens (mask 0)
  so the next user turn is rendered after a well-formed assistant turn. The last turn of an
  episode is left as generated: a completion cut by max_tokens then does not end in EOS, which is
  how TRL recognises a truncated completion (`completions/clipped_ratio`,
  `mask_truncated_completions`).
- `ChatPolicy(engine)` over a ChatEngine (evaluation with any engine spec, HTTP included): messages
  in, text out, no token view; only the turn cap applies (there are no tokens to count).

Schedules (`config.schedule`): `lockstep` is the above. `overlapped` splits the episodes into
`config.waves` contiguous waves that each play in lockstep, and runs each simulator call in a
worker thread while the policy generates for the next wave: the slots run in the order (turn 0,
wave 0), (turn 0, wave 1), …, (turn 1, wave 0), … and a slot first waits for its wave's pending
simulator reply. Policy calls stay on the calling thread (collectives, the trainer's model);
simulator calls of different waves may run at once (a server batches them; each call is
deterministic on its own batch), reward calls one at a time. Each episode sees the same sequence as in lockstep (policy
turn t sampled with seed + t, the simulator's reply, the same caps and end reasons), so engines
that answer each conversation independently of its batch mates give identical episodes under
either schedule (tests/test_rollout_overlap.py). `auto` picks overlapped when the simulator is
served over HTTP (then the policy and the server compute at once) and lockstep when everything is
local on one machine (two engines on the same cores only slow each other down, and one big batch
decodes faster than two half batches). When a `reward` is passed, each GRPO group (episodes
sharing a group_id; an episode without one alone) is scored as soon as its last episode ends: in a
worker thread under `overlapped`, so judging overlaps the rest of the rollout; at the end under
`lockstep`. Rewards that need the whole group get it.

Template glue (`TemplateGlue`) is derived from the tokenizer's chat template once: render a fixed
dummy conversation with and without a following user turn and take the suffix, checking that the
template is prefix-preserving (otherwise a clear error).

Distributed training: under ZeRO-3, FSDP or vLLM server mode `generate` is a collective, so every
rank must make the same number of policy calls per rollout. Either set `pad_to_turns` (every
rollout makes exactly `max_turns` policy calls; a rank with no live episode makes a one-token
dummy call) or pass `any_live(local_live: bool) -> bool` (an all-reduce over ranks; the loop keeps
turning, with dummy calls, while any rank has a live episode). Under `overlapped` the same holds
per wave: every rank walks the same (turn, wave) slots, calls `any_live` once per slot, and makes
a policy call (a dummy one when its wave is empty) exactly when some rank's wave is live there, so
every rank makes the same number of policy calls. Both are exercised by the tests in a single
process.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal, Sequence

from corpora.types import (END_LENGTH_CAP, END_TURN_CAP, END_USER, Episode, Message, TokenView)
from engines.base import Sampling
from foundation.config import option


@dataclass
class RolloutConfig:
    """How conversations are played during a rollout."""

    max_turns: int = option(5, help="most assistant turns per episode (the turn cap)")
    max_tokens: int = option(256, help="most tokens the policy may generate in one assistant turn")
    max_total_tokens: int = option(4096, help="length cap: prompt + completion tokens of an "
                                   "episode; the episode ends when the next user turn plus a "
                                   "full assistant turn would not fit (token policies only)")
    temperature: float = option(1.0, help="policy sampling temperature (0 = greedy)")
    top_p: float = option(1.0, help="policy nucleus sampling; keep 1.0 when training so the "
                          "recorded log-probs are those of the distribution sampled from")
    system_prompt: str | None = option(None, help="system prompt given to the policy (not part of "
                                       "episode.messages); None leaves the template's default")
    pad_to_turns: bool = option(False, help="always make exactly max_turns policy calls (dummy "
                                "calls once nothing is live); needed under ZeRO-3/FSDP/vLLM "
                                "server mode when no cross-rank sync is passed")
    schedule: Literal["auto", "lockstep", "overlapped"] = option(
        "auto", help="lockstep: one policy call, then one simulator call, for all live episodes; "
        "overlapped: waves of episodes, the simulator answering one wave while the policy "
        "generates for the next (pays off when the simulator is a server); auto: overlapped when "
        "the simulator is served over HTTP, else lockstep")
    waves: int = option(2, help="waves of the overlapped schedule (more waves: more overlap, "
                        "smaller policy batches; each wave costs every rank one policy call per "
                        "turn)")

    def __post_init__(self) -> None:
        if self.max_turns < 1:
            raise ValueError(f"rollout.max_turns must be >= 1, got {self.max_turns}")
        if self.max_tokens < 1:
            raise ValueError(f"rollout.max_tokens must be >= 1, got {self.max_tokens}")
        if self.max_total_tokens < self.max_tokens:
            raise ValueError(f"rollout.max_total_tokens ({self.max_total_tokens}) must be at least "
                             f"rollout.max_tokens ({self.max_tokens})")
        Sampling(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens)
        if self.schedule not in ("auto", "lockstep", "overlapped"):
            raise ValueError(f"rollout.schedule must be auto, lockstep or overlapped, got "
                             f"{self.schedule!r}")
        if self.waves < 1:
            raise ValueError(f"rollout.waves must be >= 1, got {self.waves}")

    def sampling(self, seed: int | None = None) -> Sampling:
        return Sampling(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens,
                        seed=seed)


class TemplateError(ValueError):
    """The chat template cannot be extended turn by turn (the message says what went wrong)."""


_DUMMY_USER = "Hi there."
_DUMMY_REPLY = "Hello! How can I help?"


class TemplateGlue:
    """The token pieces of a chat template that the rollout appends between turns.

    closing:   ids the template writes after an assistant turn's content, e.g. `<|im_end|>\\n`
               (its first id is an end-of-turn id the policy generates)
    after_eos: closing without its first id: what follows a turn that ended on end-of-turn
    """

    def __init__(self, tokenizer: Any, eos_ids: Sequence[int]):
        self.tokenizer = tokenizer
        self.eos_ids = frozenset(int(i) for i in eos_ids)
        head = self.render([Message("user", _DUMMY_USER)], generation_prompt=True)
        self._base = self.render([Message("user", _DUMMY_USER), Message("assistant", _DUMMY_REPLY)],
                                 generation_prompt=False)
        if self._base[:len(head)] != head:
            raise TemplateError("the chat template renders earlier turns differently once an "
                                "assistant reply follows (not prefix-preserving); the rollout "
                                "cannot append turns to it")
        self.closing = self._closing(self._base[len(head):])
        if self.closing[0] not in self.eos_ids:
            name = tokenizer.convert_ids_to_tokens(self.closing[0])
            raise TemplateError(f"the chat template closes an assistant turn with {name!r} "
                                f"(id {self.closing[0]}), which is not among the policy's "
                                f"end-of-turn ids {sorted(self.eos_ids)}; add it to the engine's "
                                "eos_token_ids")
        self.after_eos = self.closing[1:]

    def render(self, messages: Sequence[Message], *, generation_prompt: bool) -> list[int]:
        ids = self.tokenizer.apply_chat_template([m.as_dict() for m in messages], tokenize=True,
                                                 add_generation_prompt=generation_prompt,
                                                 return_dict=False)
        return list(ids)

    def _closing(self, tail: list[int]) -> list[int]:
        """Split the rendered dummy assistant turn (content + closing) after its content."""
        for k in range(len(tail) + 1):
            if self.tokenizer.decode(tail[:k], skip_special_tokens=False) == _DUMMY_REPLY:
                if k == len(tail):
                    raise TemplateError("the chat template writes nothing after an assistant "
                                        "turn, so a turn's end cannot be recognised")
                return tail[k:]
        raise TemplateError("cannot find the assistant content in the rendered chat template")

    def prompt_ids(self, opening: str, system_prompt: str | None) -> list[int]:
        """Ids of [system?, user opening] + assistant header."""
        messages = ([Message("system", system_prompt)] if system_prompt is not None else [])
        return self.render(messages + [Message("user", opening)], generation_prompt=True)

    def user_turn_ids(self, text: str) -> list[int]:
        """Ids of a user turn plus the next assistant header, as the template renders them after
        a closed assistant turn."""
        full = self.render([Message("user", _DUMMY_USER), Message("assistant", _DUMMY_REPLY),
                            Message("user", text)], generation_prompt=True)
        if full[:len(self._base)] != self._base:
            raise TemplateError("the chat template re-renders earlier turns when a user turn "
                                "follows (not prefix-preserving); the rollout cannot append turns")
        return full[len(self._base):]


@dataclass
class _TokenState:
    view: TokenView
    pending: list[int] = field(default_factory=list)  # glue owed before the next user turn


class TokenPolicy:
    """Policy adapter over a TokenEngine: generates from ids and keeps each episode's TokenView."""

    def __init__(self, engine: Any, system_prompt: str | None = None,
                 eos_ids: Sequence[int] | None = None):
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.system_prompt = system_prompt
        eos = eos_ids if eos_ids is not None else getattr(engine, "eos_token_ids", None)
        if not eos:
            eos = [self.tokenizer.eos_token_id]
        self.glue = TemplateGlue(self.tokenizer, eos)
        self._states: dict[int, _TokenState] = {}

    def start(self, episodes: Sequence[Episode]) -> None:
        self._states = {}  # one rollout at a time: forget the previous one's episodes
        for ep in episodes:
            ep.tokens = TokenView(prompt_ids=self.glue.prompt_ids(ep.messages[0].content,
                                                                  self.system_prompt))
            self._states[id(ep)] = _TokenState(ep.tokens)

    def respond(self, episodes: Sequence[Episode], sampling: Sampling) -> list[str]:
        states = [self._states[id(ep)] for ep in episodes]
        outputs = self.engine.generate([s.view.prompt_ids + s.view.completion_ids for s in states],
                                       sampling)
        texts = []
        for state, out in zip(states, outputs):
            ended = bool(out.ids) and out.ids[-1] in self.glue.eos_ids
            state.view.extend(list(out.ids), generated=True, logprobs=out.logprobs)
            state.pending = list(self.glue.after_eos if ended else self.glue.closing)
            content = out.ids[:-1] if ended else out.ids
            texts.append(self.tokenizer.decode(content, skip_special_tokens=True))
        return texts

    def add_user(self, episode: Episode, text: str, max_tokens: int, cap: int) -> bool:
        """Append the user turn and the next assistant header; False (nothing appended) when the
        next assistant turn would not fit in `cap` tokens."""
        state = self._states[id(episode)]
        glue = state.pending + self.glue.user_turn_ids(text)
        if len(state.view) + len(glue) + max_tokens > cap:
            return False
        state.view.extend(glue, generated=False)
        state.pending = []
        return True

    def dummy(self, sampling: Sampling) -> None:
        """One-token call keeping this rank in step with ranks that still have live episodes."""
        self.engine.generate([self.glue.prompt_ids(".", None)], sampling.with_(max_tokens=1))

    def generated_tokens(self, episode: Episode) -> int:
        return sum(episode.tokens.env_mask) if episode.tokens else 0


class ChatPolicy:
    """Policy adapter over a ChatEngine: text in, text out; no token view, no length cap."""

    def __init__(self, engine: Any, system_prompt: str | None = None):
        self.engine = engine
        self.system_prompt = system_prompt

    def start(self, episodes: Sequence[Episode]) -> None:
        for ep in episodes:
            ep.tokens = None

    def respond(self, episodes: Sequence[Episode], sampling: Sampling) -> list[str]:
        system = [Message("system", self.system_prompt)] if self.system_prompt is not None else []
        return self.engine.chat([system + list(ep.messages) for ep in episodes], sampling)

    def add_user(self, episode: Episode, text: str, max_tokens: int, cap: int) -> bool:
        return True

    def dummy(self, sampling: Sampling) -> None:
        self.engine.chat([[Message("user", ".")]], sampling.with_(max_tokens=1))

    def generated_tokens(self, episode: Episode) -> int:
        return 0


def make_policy(engine: Any, system_prompt: str | None = None):
    """TokenPolicy for an engine with `generate` and a tokenizer, else ChatPolicy."""
    if hasattr(engine, "generate") and getattr(engine, "tokenizer", None) is not None:
        return TokenPolicy(engine, system_prompt)
    if hasattr(engine, "chat"):
        return ChatPolicy(engine, system_prompt)
    raise TypeError(f"{engine!r} is neither a TokenEngine (generate + tokenizer) nor a ChatEngine")


@dataclass
class RolloutStats:
    """What a rollout did and where its time went (seconds are wall time; under the overlapped
    schedule simulator and reward time overlap policy time, so they may add up to more than the
    total)."""

    episodes: int = 0
    turns: int = 0                 # policy calls (dummy calls included): lockstep turns x waves
    dummy_calls: int = 0           # policy calls made with nothing live (distributed padding)
    simulator_calls: int = 0       # batched simulator calls (open included)
    live_per_turn: list[int] = field(default_factory=list)  # live episodes of each policy call
    end_reasons: dict[str, int] = field(default_factory=dict)
    assistant_turns: list[int] = field(default_factory=list)
    generated_tokens: int = 0
    schedule: str = "lockstep"
    waves: int = 1
    policy_s: float = 0.0
    simulator_s: float = 0.0
    reward_s: float = 0.0          # scoring inside the rollout (only when a reward is passed)
    total_s: float = 0.0

    @property
    def other_s(self) -> float:
        """Time in the rollout loop itself: neither policy nor simulator calls (lockstep)."""
        return max(0.0, self.total_s - self.policy_s - self.simulator_s - self.reward_s)

    def metrics(self) -> dict[str, float]:
        """Namespaced scalars (see docs/metrics.md)."""
        n = max(1, self.episodes)
        out = {"sim/turns": sum(self.assistant_turns) / n, "rollout/lockstep_turns": self.turns,
               "rollout/dummy_calls": self.dummy_calls,
               "rollout/generated_tokens": self.generated_tokens,
               "rollout/overlapped": float(self.schedule == "overlapped"),
               "timing/rollout_s": self.total_s, "timing/policy_generate_s": self.policy_s,
               "timing/simulator_s": self.simulator_s, "timing/rollout_other_s": self.other_s}
        if self.reward_s:
            out["timing/rollout_reward_s"] = self.reward_s
        for reason in (END_USER, END_TURN_CAP, END_LENGTH_CAP):
            out[f"episode/end_{reason}"] = self.end_reasons.get(reason, 0) / n
        return out


@dataclass
class RolloutResult:
    episodes: list[Episode]
    stats: RolloutStats
    rewards: list[Any] | None = None  # RewardResult per episode, in order, when a reward was passed


class _Clock:
    """Accumulates wall time spent inside named blocks (thread-safe)."""

    def __init__(self, stats: RolloutStats):
        self.stats = stats
        self.lock = threading.Lock()

    @contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            attr = f"{what}_s"
            with self.lock:
                setattr(self.stats, attr, getattr(self.stats, attr) + time.perf_counter() - start)


def choose_schedule(config: RolloutConfig, simulator: Any) -> str:
    """The schedule a rollout uses: the configured one, or for `auto` overlapped when the
    simulator (or a member of a mixture) is served over HTTP, else lockstep."""
    if config.schedule != "auto":
        return config.schedule
    members = getattr(simulator, "members", {})
    sims = [simulator, *(members.values() if isinstance(members, dict) else members)]
    return "overlapped" if any(_served(getattr(sim, "engine", None)) for sim in sims) else "lockstep"


def _served(engine: Any) -> bool:
    """Whether an engine (a cache's inner engine included) answers over HTTP."""
    from engines.http import OpenAIChatEngine

    while engine is not None and not isinstance(engine, OpenAIChatEngine):
        engine = getattr(engine, "inner", None)
    return engine is not None


def run_rollout(episodes: Sequence[Episode], policy: Any, simulator: Any, config: RolloutConfig,
                *, seed: int | None = None, any_live: Callable[[bool], bool] | None = None,
                reward: Any = None) -> RolloutResult:
    """Play every episode to its end (see the module docstring).

    episodes: fresh Episodes (no messages yet), each with its task, simulator name, group and sample
    policy:   TokenPolicy or ChatPolicy (`make_policy(engine)`)
    seed:     base sampling seed (turn t samples with seed + t); None = unseeded
    any_live: cross-rank "is anything live anywhere" (distributed training), see module docstring
    reward:   a Reward; when given, each group is scored as soon as it has ended and every
              episode's `reward`/`reward_details` are set (RolloutResult.rewards holds the results)
    """
    start = time.perf_counter()
    schedule = choose_schedule(config, simulator)
    waves = config.waves if schedule == "overlapped" else 1
    stats = RolloutStats(episodes=len(episodes), schedule=schedule, waves=waves)
    clock = _Clock(stats)
    _open(episodes, policy, simulator, clock, stats)
    overlap = schedule == "overlapped"
    pools = [ThreadPoolExecutor(waves, thread_name_prefix="wildsim-sim"),
             ThreadPoolExecutor(1, thread_name_prefix="wildsim-reward")] if overlap else [None, None]
    scorer = _GroupScorer(reward, episodes, clock, pools[1]) if reward is not None else None
    try:
        _play(_split(episodes, waves), policy, simulator, config,
              _Run(seed, any_live, stats, clock, pools[0], scorer))
        results = scorer.results() if scorer is not None else None
    finally:
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
    for ep in episodes:
        stats.end_reasons[ep.end_reason] = stats.end_reasons.get(ep.end_reason, 0) + 1
        stats.assistant_turns.append(ep.assistant_turns)
        stats.generated_tokens += policy.generated_tokens(ep)
    stats.total_s = time.perf_counter() - start
    return RolloutResult(list(episodes), stats, results)


@dataclass
class _Run:
    """What one rollout's slots share."""

    seed: int | None
    any_live: Callable[[bool], bool] | None
    stats: RolloutStats
    clock: _Clock
    threads: ThreadPoolExecutor | None  # the simulator's worker; None: lockstep, all inline
    scorer: "_GroupScorer | None"


def _split(episodes: Sequence[Episode], waves: int) -> list[list[Episode]]:
    """`waves` contiguous slices of near-equal size (groups stay together as far as sizes allow);
    some are empty when there are fewer episodes than waves."""
    n = len(episodes)
    bounds = [n * w // waves for w in range(waves + 1)]
    return [list(episodes[bounds[w]:bounds[w + 1]]) for w in range(waves)]


def _play(waves: list[list[Episode]], policy: Any, simulator: Any, config: RolloutConfig,
          run: _Run) -> None:
    """Walk the (turn, wave) slots; a slot waits for its wave's pending simulator reply, makes
    the wave's policy call and hands its simulator call to a worker (or makes it inline)."""
    live = [list(w) for w in waves]
    pending: dict[int, Future] = {}
    stopped: set[int] = set()  # waves with nothing live on any rank: no more slots (nor syncs)
    for turn in range(config.max_turns):
        if len(stopped) == len(waves):
            break
        for w in range(len(waves)):
            if w in pending:
                live[w] = _take_replies(live[w], pending.pop(w).result(), policy, config)
                _ended(waves[w], run)
            if w in stopped:
                continue
            if not _keep_turning(live[w], turn, config, run.any_live):
                stopped.add(w)
                continue
            live[w] = _policy_turn(live[w], policy, config, turn, run)
            _ended(waves[w], run)
            if live[w]:
                pending[w] = _submit(run, _reply, simulator, live[w], run)
    for w, fut in pending.items():  # only reachable when the turn cap did not end every episode
        live[w] = _take_replies(live[w], fut.result(), policy, config)
        _ended(waves[w], run)


def _policy_turn(live: list[Episode], policy: Any, config: RolloutConfig, turn: int,
                 run: _Run) -> list[Episode]:
    """One policy call for a wave (a dummy one when it is empty); returns what is still live."""
    sampling = config.sampling(None if run.seed is None else run.seed + turn)
    run.stats.turns += 1
    run.stats.live_per_turn.append(len(live))
    if not live:
        with run.clock("policy"):
            policy.dummy(sampling)
        run.stats.dummy_calls += 1
        return live
    with run.clock("policy"):
        texts = policy.respond(live, sampling)
    for ep, text in zip(live, texts):
        ep.messages.append(Message("assistant", text))
        if ep.assistant_turns >= config.max_turns:
            ep.end_reason = END_TURN_CAP
    return [ep for ep in live if not ep.done]


def _reply(simulator: Any, live: list[Episode], run: _Run) -> Sequence[Any]:
    with run.clock("simulator"):
        replies = simulator.reply(live)
    with run.clock.lock:
        run.stats.simulator_calls += 1
    return replies


def _submit(run: _Run, fn: Callable[..., Any], *args: Any) -> Future:
    """Run `fn` in a worker under the overlapped schedule, else now (a finished Future)."""
    if run.threads is not None:
        return run.threads.submit(fn, *args)
    done: Future = Future()
    try:
        done.set_result(fn(*args))
    except BaseException as err:  # re-raised by .result(), as a worker's would be
        done.set_exception(err)
    return done


def _ended(wave: list[Episode], run: _Run) -> None:
    if run.scorer is not None:
        for ep in wave:
            if ep.done:
                run.scorer.ended(ep)


class _GroupScorer:
    """Scores each group (episodes sharing group_id; no group_id: the episode alone) once all its
    episodes have ended: in a worker under the overlapped schedule, else when results are asked."""

    def __init__(self, reward: Any, episodes: Sequence[Episode], clock: _Clock,
                 threads: ThreadPoolExecutor | None):
        self.reward, self.clock, self.threads = reward, clock, threads
        self.groups: dict[Any, list[Episode]] = {}
        for ep in episodes:
            self.groups.setdefault(ep.group_id or id(ep), []).append(ep)
        self.seen: set[int] = set()
        self.futures: list[tuple[list[Episode], Future]] = []
        self.order = list(episodes)

    def ended(self, ep: Episode) -> None:
        if id(ep) in self.seen:
            return
        self.seen.add(id(ep))
        group = self.groups[ep.group_id or id(ep)]
        if all(id(e) in self.seen for e in group) and self.threads is not None:
            self.futures.append((group, self.threads.submit(self._score, group)))

    def _score(self, group: list[Episode]) -> list[Any]:
        with self.clock("reward"):
            results = list(self.reward.score(group))
        if len(results) != len(group):
            raise RuntimeError(f"reward {getattr(self.reward, 'name', self.reward)!r} returned "
                               f"{len(results)} results for {len(group)} episodes")
        for ep, res in zip(group, results):
            ep.reward, ep.reward_details = float(res.value), dict(res.details)
        return results

    def results(self) -> list[Any]:
        """One RewardResult per episode, in the rollout's order (scoring what is left now)."""
        by_id: dict[int, Any] = {}
        for group, fut in self.futures:
            by_id.update(zip(map(id, group), fut.result()))
        rest = [e for e in self.order if id(e) not in by_id]
        if rest:
            by_id.update(zip(map(id, rest), self._score(rest)))
        return [by_id[id(e)] for e in self.order]


def _open(episodes: Sequence[Episode], policy: Any, simulator: Any, clock: _Clock,
          stats: RolloutStats) -> None:
    for i, ep in enumerate(episodes):
        if ep.messages or ep.done:
            raise ValueError(f"episode {i} (task {ep.task.task_id!r}) is not fresh: it already has "
                             "messages or an end reason")
    with clock("simulator"):
        openings = simulator.open(list(episodes)) if episodes else []
    stats.simulator_calls += 1 if episodes else 0
    if len(openings) != len(episodes):
        raise RuntimeError(f"simulator {getattr(simulator, 'name', simulator)!r} returned "
                           f"{len(openings)} openings for {len(episodes)} episodes")
    for ep, text in zip(episodes, openings):
        ep.messages.append(Message("user", text))
    policy.start(episodes)


def _keep_turning(live: list[Episode], turns: int, config: RolloutConfig,
                  any_live: Callable[[bool], bool] | None) -> bool:
    """Whether a (wave's) slot at turn `turns` makes a policy call."""
    if turns >= config.max_turns:
        return False
    if config.pad_to_turns:
        return True
    return any_live(bool(live)) if any_live is not None else bool(live)


def _take_replies(live: list[Episode], replies: Sequence[Any], policy: Any,
                  config: RolloutConfig) -> list[Episode]:
    """Record the simulator's turns; return the episodes that go on."""
    if len(replies) != len(live):
        raise RuntimeError(f"the simulator returned {len(replies)} replies for {len(live)} episodes")
    still = []
    for ep, turn in zip(live, replies):
        if turn.ends:
            if turn.text:
                ep.messages.append(Message("user", turn.text))
            ep.end_reason = END_USER
            continue
        ep.messages.append(Message("user", turn.text))
        if not policy.add_user(ep, turn.text, config.max_tokens, config.max_total_tokens):
            ep.end_reason = END_LENGTH_CAP
            continue
        still.append(ep)
    return still
