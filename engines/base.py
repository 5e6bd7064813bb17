"""The two generation interfaces every backend implements, and the sampling settings they take.

- ChatEngine: conversations (lists of Messages) in, one reply text per conversation out. Used by
  simulators, judges and annotators, locally or over HTTP.
- TokenEngine: prompt token ids in, generated ids (+ log-probabilities) out. Used by the policy in
  rollouts, where the trainer needs the exact ids and log-probs it sampled.
Both are batched: one call serves every live conversation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, Sequence, runtime_checkable

from corpora.types import Message


@dataclass(frozen=True)
class Sampling:
    """How to sample. `seed` makes a call reproducible for the same inputs and batch; `stop`
    strings end a reply early (the stop string itself is not returned); `json_schema` asks servers
    that support structured output for JSON matching it (others ignore it)."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    json_schema: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")

    def with_(self, **changes: Any) -> "Sampling":
        return replace(self, **changes)


@dataclass
class TokenOutput:
    """One generated continuation.

    ids:      (T,) generated token ids, the end-of-turn token included when generation stopped on it
    logprobs: (T,) log-probability of each id under the sampling distribution, or None when the
              backend cannot report them
    finish:   "stop" (end-of-turn token or stop string) or "length" (max_tokens reached)
    """

    ids: list[int]
    logprobs: list[float] | None
    finish: Literal["stop", "length"]


@runtime_checkable
class ChatEngine(Protocol):
    """Messages in, text out, batched."""

    def chat(self, conversations: Sequence[Sequence[Message]], sampling: Sampling) -> list[str]:
        """Return one reply per conversation, in order."""
        ...


@runtime_checkable
class TokenEngine(Protocol):
    """Token ids in, token ids (+ logprobs) out, batched. `tokenizer` is a Hugging Face tokenizer
    whose chat template renders conversations for this model."""

    tokenizer: Any

    def generate(self, prompt_ids: Sequence[Sequence[int]], sampling: Sampling) -> list[TokenOutput]:
        """Return one TokenOutput per prompt, in order."""
        ...
