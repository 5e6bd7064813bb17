"""The fine-tuned user simulator ("sftuser"): a model trained on WildChat user turns.

Turn layout (`layout`, simulators/flipped.py). In the default "userlm" layout (that of the
published fine-tuned users: UserLM-8b, the 2605.09808 sftuser checkpoints, and what
trainers/train_simulator.py writes by default) the system message is the task's intent, roles are
kept, and the next user turn is generated after the template's user header; the model ends the
conversation with a user turn that is only ``<|endconversation|>``. This needs an engine that
continues token ids (a TokenEngine: local ``hf:``/``builtin:``, in-process ``vllm:``, or a served
``openai:`` model over /v1/completions given the model's tokenizer with the `tokenizer` option:
a local folder or hub id). The "swapped" layout (roles swapped, the user turn is an ordinary
assistant reply) also runs on a plain ChatEngine such as an OpenAI-compatible server without a
tokenizer: a reply that is empty (the end token alone, stripped by the server) or that shows
``<|endconversation|>`` ends the conversation. A training
output folder records its layout in wildsim_simulator.json, and a zoo entry without a `layout`
option uses it.

The end token is read from the generated ids (decoders drop it with ``skip_special_tokens``).

Guardrails (`dedup`; each retry is counted in ``episode.sim_details``):
- "project" (default): a turn that repeats any earlier user turn (lower-cased, whitespace
  collapsed), copies the intent verbatim, or is shorter than ``min_chars`` is resampled;
- "published" (the 2605.09808 release): only an exact repeat, after trimming, of the previous
  user turn is resampled;
- both: no ending in the first ``no_end_turns`` user turns (a sample that ends is resampled), and
  a cap of ``max_tokens`` per turn (a turn cut by the cap is counted);
- each resample k = 1, 2, … samples at temperature base + ``temperature_step``·k, capped at
  ``temperature_cap`` (published: 0.7 + 0.05·k, cap 1.0), at most ``max_retries`` (5) times; then
  the last sample is accepted (counted as exhausted; an ending sample in the no-end window is
  kept as text without the ending when it has text). These resamples are separate from the
  engine's own retries of failed requests.
All episodes needing a (re)sample share one engine call per round. Sampling seeds derive from
``seed`` and the round, so a run is reproducible.

Usage in the zoo (configs/simulators.yaml): ``kind: finetuned`` with an engine spec such as
``vllm:<released checkpoint>``, ``hf:<base>@lora=<adapter>``, ``hf:<full model folder>`` or
``openai:<url>#<served name>`` with ``options: {tokenizer: <the served model's folder>}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from corpora.types import Episode, Message
from engines.base import Sampling
from engines.spec import expand_env
from simulators.base import SIMULATOR_KINDS, UserTurn
from simulators.flipped import (DEFAULT_LAYOUT, END_TOKEN, check_layout, generation_prompt_ids,
                                layout_messages)

RETRY_KEYS = ("repeat", "intent_copy", "too_short", "early_end")
DEDUP_RULES = ("project", "published")


@dataclass
class _Need:
    """One turn to write: the conversation so far (in the simulator's layout) and what the turn
    must not be (`earlier`: normalised earlier user turns; `previous`: the last one, as said)."""

    episode: Episode
    prompt: list[Message]
    earlier: set[str]
    may_end: bool
    previous: str | None = None
    attempts: int = 0
    turn: UserTurn | None = None
    problem: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


def normalise(text: str) -> str:
    """Text compared for repeats: lower case, whitespace collapsed."""
    return " ".join(text.lower().split())


def guardrail_problem(text: str, ends: bool, *, earlier: set[str], intent: str, may_end: bool,
                      min_chars: int) -> str | None:
    """Why a sampled turn must be resampled (one of RETRY_KEYS), or None when it is acceptable.

    earlier: normalised earlier user turns of the episode."""
    if ends and not may_end:
        return "early_end"
    if ends and not text:
        return None
    norm = normalise(text)
    if len(norm) < min_chars:
        return "too_short"
    if norm in earlier:
        return "repeat"
    body = normalise(intent.removeprefix("You are a user chatting with an assistant language model to"))
    if intent and (norm == normalise(intent) or (len(body) >= 20 and body in norm)):
        return "intent_copy"
    return None


def published_problem(text: str, ends: bool, *, previous: str | None, may_end: bool) -> str | None:
    """The published rule: "repeat" when `text` is, after trimming, exactly the previous user
    turn; "early_end" in the no-end window; else None."""
    if ends and not may_end:
        return "early_end"
    if ends and not text:
        return None
    return "repeat" if previous is not None and text.strip() == previous.strip() else None


def retry_temperature(base: float, attempts: int, step: float = 0.05, cap: float = 1.0) -> float:
    """Temperature of the `attempts`-th resample: base + step·attempts, never above cap (and never
    below base when base is already above cap)."""
    return max(base, min(cap, base + step * attempts)) if attempts else base


@SIMULATOR_KINDS.register("finetuned")
class FinetunedSimulator:
    """A user simulator backed by a model fine-tuned on flipped conversations.

    engine:      a TokenEngine (preferred: the end token is read from ids) or a ChatEngine, or
                 an engine spec string loaded with engines.spec
    sampling:    base sampling (the published recipe: temperature 0.7, top-p 0.9, 1024 tokens)
    no_end_turns: the first this-many user turns may not end the conversation
    min_chars:   a turn shorter than this (after whitespace normalisation) is resampled
    max_retries: resamples per turn at most; temperature_step added each time, capped at 1.0
    layout:      "userlm" (roles kept; needs token ids: a TokenEngine, or an openai: engine
                 with its tokenizer) or "swapped" (see the module docstring)
    dedup:       "project" (stricter guardrails) or "published" (previous-turn exact repeat only)
    tokenizer:   for an ``openai:`` engine (given as a spec string): the served model's tokenizer,
                 a local folder or hub id (``${VAR:-default}`` references are expanded)
    """

    def __init__(self, engine: Any, *, name: str = "sftuser", sampling: Sampling | None = None,
                 seed: int = 0, no_end_turns: int = 1, min_chars: int = 2, max_retries: int = 5,
                 temperature_step: float = 0.05, temperature_cap: float = 1.0,
                 end_token: str = END_TOKEN, layout: str = DEFAULT_LAYOUT, dedup: str = "project",
                 tokenizer: str | None = None):
        self.layout = check_layout(layout)
        if dedup not in DEDUP_RULES:
            raise ValueError(f"simulator {name!r}: dedup must be one of {DEDUP_RULES}, got {dedup!r}")
        self.dedup = dedup
        if isinstance(engine, str):
            engine = load_simulator_engine(engine, tokenizer=tokenizer)
        elif tokenizer is not None:
            raise ValueError(f"simulator {name!r}: the tokenizer option applies to an engine given as "
                             "a spec string; give the engine object its tokenizer instead")
        self.engine = engine
        self.name = name
        self.sampling = sampling or Sampling(temperature=0.7, top_p=0.9, max_tokens=1024)
        self.seed = seed
        self.no_end_turns = no_end_turns
        self.min_chars = min_chars
        self.max_retries = max_retries
        self.temperature_step = temperature_step
        self.temperature_cap = temperature_cap
        self.end_token = end_token
        self._calls = 0
        tokenizer = getattr(engine, "tokenizer", None)
        self._token_mode = tokenizer is not None and hasattr(engine, "generate")
        if self._token_mode:
            vocab = tokenizer.get_vocab()
            if end_token not in vocab:
                raise ValueError(f"the simulator's tokenizer has no {end_token} token: load the "
                                 "fine-tuned tokenizer (saved beside the adapter or model)")
            self.end_id = vocab[end_token]
        elif self.layout == "userlm":
            hint = ("set the zoo entry's option `tokenizer: <the served model's folder or hub id>` "
                    "(for a fine-tuned user: the OUT/merged folder of train_simulator --save_merged) "
                    "so the prompt ids can be built and sent to /v1/completions"
                    if hasattr(engine, "generate") else "use an hf:, builtin:, vllm: or openai: spec")
            raise ValueError(f"simulator {name!r}: the userlm layout writes the user turn after the "
                             f"template's user header, which needs token ids and the model's "
                             f"tokenizer: {hint}; or use layout: swapped with a chat engine")

    @classmethod
    def from_zoo(cls, entry: Any, load: Any, seed: int) -> "FinetunedSimulator":
        """Build from a zoo entry (simulators/zoo.py): the engine spec may be a training output
        folder or ``hf:<base>@lora=<adapter>``; both load with the end token (see
        load_simulator_engine). `load` (zoo members by name) is unused."""
        if not entry.engine:
            raise ValueError(f"zoo entry {entry.name!r} (kind finetuned) names no engine; add "
                             "engine: <train_simulator output folder or spec>")
        opts = {k: v for k, v in entry.engine_options.items() if k in ("dtype", "device")}
        options = dict(entry.options)
        tokenizer = options.pop("tokenizer", None)
        served = entry.engine.startswith("openai:") and tokenizer  # the folder the server loads
        options.setdefault("layout", recorded_layout(expand_env(str(tokenizer)) if served else entry.engine))
        return cls(load_simulator_engine(entry.engine, tokenizer=tokenizer, **opts), name=entry.name,
                   sampling=entry.sampling_settings(), seed=seed, **options)

    # ---- UserSimulator ---------------------------------------------------------------------
    def open(self, episodes: Sequence[Episode]) -> list[str]:
        """The task's real opening turn; one is generated from the intent when a task has none."""
        needs = [_Need(ep, self._view(ep, []), set(), False)
                 for ep in episodes if not ep.task.opening]
        self._run(needs)
        written = {id(n.episode): n.turn.text for n in needs}
        return [ep.task.opening if ep.task.opening else written[id(ep)] for ep in episodes]

    def reply(self, episodes: Sequence[Episode]) -> list[UserTurn]:
        """The next user turn of each episode (its last message is the assistant's)."""
        needs = []
        for ep in episodes:
            users = ep.user_texts()
            needs.append(_Need(ep, self._view(ep, ep.messages), {normalise(u) for u in users},
                               len(users) >= self.no_end_turns, users[-1] if users else None))
        self._run(needs)
        return [n.turn for n in needs]

    def _view(self, episode: Episode, messages: Sequence[Message]) -> list[Message]:
        return layout_messages(self.layout, episode.task.intent, messages, end=False,
                               end_token=self.end_token)

    # ---- sampling with guardrails -----------------------------------------------------------
    def _run(self, needs: list[_Need]) -> None:
        """Sample every need, resampling the failing ones in rounds (one engine call per round)."""
        pending = list(needs)
        while pending:
            attempts = pending[0].attempts
            temperature = retry_temperature(self.sampling.temperature, attempts,
                                            self.temperature_step, self.temperature_cap)
            sampling = self.sampling.with_(temperature=temperature,
                                           seed=self.seed * 1_000_003 + self._calls)
            self._calls += 1
            for need, (text, ends, truncated) in zip(pending, self._sample(pending, sampling)):
                self._judge(need, text, ends, truncated)
            pending = [n for n in pending if n.problem is not None and n.attempts <= self.max_retries]
            for need in pending:
                need.counts[need.problem] = need.counts.get(need.problem, 0) + 1
        for need in needs:
            self._record(need)

    def _judge(self, need: _Need, text: str, ends: bool, truncated: bool) -> None:
        if self.dedup == "published":
            need.problem = published_problem(text, ends, previous=need.previous, may_end=need.may_end)
        else:
            need.problem = guardrail_problem(text, ends, earlier=need.earlier,
                                             intent=need.episode.task.intent,
                                             may_end=need.may_end, min_chars=self.min_chars)
        need.attempts += 1
        if need.problem is None or need.attempts > self.max_retries:
            keep_end = ends and (need.may_end or not text)
            need.turn = UserTurn(text=text, ends=keep_end, details={"truncated": truncated})

    def _record(self, need: _Need) -> None:
        details = need.episode.sim_details
        retries = sum(need.counts.values())
        details["guardrail_retries"] = details.get("guardrail_retries", 0) + retries
        for key, n in need.counts.items():
            details[f"retries_{key}"] = details.get(f"retries_{key}", 0) + n
        if need.problem is not None:
            details["guardrail_exhausted"] = details.get("guardrail_exhausted", 0) + 1
        if need.turn.details.get("truncated"):
            details["truncated_turns"] = details.get("truncated_turns", 0) + 1
        need.turn.details.update(retries=retries, exhausted=need.problem is not None)

    def _sample(self, needs: list[_Need], sampling: Sampling) -> list[tuple[str, bool, bool]]:
        """(text, ends, truncated) for each need's prompt, from one batched engine call."""
        if self._token_mode:
            tok = self.engine.tokenizer
            prompts = [generation_prompt_ids(tok, n.prompt, self.layout) for n in needs]
            results = []
            for out in self.engine.generate(prompts, sampling):
                ends = self.end_id in out.ids
                ids = out.ids[: out.ids.index(self.end_id)] if ends else out.ids
                text = tok.decode(ids, skip_special_tokens=True).strip()
                results.append((text, ends, out.finish == "length"))
            return results
        replies = self.engine.chat([n.prompt for n in needs], sampling)
        results = []
        for reply in replies:
            ends = self.end_token in reply or not reply.strip()
            results.append((reply.split(self.end_token)[0].strip(), ends, False))
        return results


SPEC_FILE = "wildsim_simulator.json"  # written by trainers/sft.py beside a trained simulator


def recorded_layout(spec_or_folder: str | None) -> str:
    """The layout a training output folder records in its wildsim_simulator.json (the folder given
    as a path, ``hf:<folder>`` or ``hf:<base>@lora=<folder>``; for its ``merged`` subfolder, the
    training folder's record); DEFAULT_LAYOUT otherwise (e.g. a released checkpoint)."""
    import json
    from pathlib import Path

    if not spec_or_folder:
        return DEFAULT_LAYOUT
    folder = spec_or_folder.split(":", 1)[1] if spec_or_folder.startswith(("hf:", "vllm:")) else spec_or_folder
    folder = folder.split("@lora=", 1)[-1]
    for marker in (Path(folder) / SPEC_FILE, Path(folder).parent / SPEC_FILE):
        if marker.exists() and (marker.parent == Path(folder) or Path(folder).name == "merged"):
            return json.loads(marker.read_text()).get("layout", "swapped")
    return DEFAULT_LAYOUT


def base_model_path(spec: str) -> str:
    """A loadable model folder or hub id from an engine spec: builtin:NAME is the embedded model's
    converted folder, hf:PATH (adapter suffix ignored) is PATH, anything else is a path or id."""
    if spec.startswith("builtin:"):
        from engines.builtin import builtin_model_dir

        return str(builtin_model_dir(spec.split(":", 1)[1]))
    if spec.startswith("hf:"):
        return spec[3:].split("@lora=", 1)[0]
    return spec


def resolve_simulator_spec(spec_or_folder: str) -> str:
    """The engine spec of a fine-tuned simulator: a training output folder (given as a path or as
    ``hf:<folder>``) is replaced by the spec recorded in its wildsim_simulator.json (so a LoRA
    output loads as ``hf:<base>@lora=<folder>``); other specs are returned unchanged."""
    import json
    from pathlib import Path

    folder = spec_or_folder[3:] if spec_or_folder.startswith("hf:") else spec_or_folder
    marker = Path(folder) / SPEC_FILE
    if "@lora=" not in folder and marker.exists():
        return json.loads(marker.read_text())["spec"]
    return spec_or_folder if ":" in spec_or_folder.split("/")[0] else f"hf:{spec_or_folder}"


def load_simulator_engine(spec: str, *, dtype: str = "float32", device: str | None = None,
                          tokenizer: str | None = None) -> Any:
    """An engine for a fine-tuned simulator (spec or training output folder).

    Specs go through engines.spec: a TokenEngine when the backend offers one, else a ChatEngine.
    An ``openai:`` spec given `tokenizer` (folder or hub id; ``${VAR:-default}`` expanded) is both:
    its `generate` continues token ids over /v1/completions; other backends load their own.
    For ``hf:<base>@lora=<adapter>`` engines.hf.load_hf takes the tokenizer from the adapter folder
    (it has the end token) and resizes the base embeddings before attaching the adapter."""
    from engines import spec as specs

    parsed = specs.parse_spec(resolve_simulator_spec(spec))
    if parsed.backend == "openai":
        if tokenizer:
            return specs.load_chat_engine(parsed, tokenizer=specs.expand_env(str(tokenizer)))
        return specs.load_chat_engine(parsed)
    opts = {"dtype": dtype, "device": device} if parsed.backend == "hf" else {}
    return specs.load_token_engine(parsed, **{k: v for k, v in opts.items() if v is not None})
