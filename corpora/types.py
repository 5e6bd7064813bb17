"""The conversation types every layer shares: Message, Task, TokenView and Episode.

A Task is what a conversation is about: a hidden intent (the user's goal, never shown to the
assistant), an optional real opening turn, and metadata. An Episode is one conversation played
between a policy and a user simulator for a Task; it carries the messages, who played the user,
why it ended, the reward with its details, and the token view the trainer learns from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]

#: Why an episode ended (Episode.end_reason).
END_USER = "user_ended"        # the simulator ended the conversation
END_TURN_CAP = "turn_cap"      # the assistant reached the maximum number of turns
END_LENGTH_CAP = "length_cap"  # the token view reached its length cap
END_REASONS = (END_USER, END_TURN_CAP, END_LENGTH_CAP)


@dataclass(frozen=True)
class Message:
    """One utterance of a conversation."""

    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass
class Task:
    """A conversation to have: the user's hidden goal and, when known, how the real user opened.

    `conversation` is the real conversation the task came from (empty for synthetic tasks); it is
    what fine-tuned simulators, turn-level fidelity and perplexity evaluations replay.
    """

    task_id: str
    intent: str
    opening: str | None = None
    conversation: tuple[Message, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class TokenView:
    """What the trainer sees of an episode, with every list aligned to the completion.

    prompt_ids:     (P,) ids of the chat-templated opening, ending with the assistant header
    completion_ids: (C,) ids of everything after: policy turns as generated, simulator turns as
                    rendered by the chat template (never re-tokenised text)
    env_mask:       (C,) 1 exactly on tokens the policy generated (its end-of-turn token
                    included), 0 on simulator turns and template glue
    logprobs:       (C,) the policy's log-probability of each generated token at sampling time;
                    0.0 where env_mask is 0
    """

    prompt_ids: list[int]
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)

    def extend(self, ids: list[int], *, generated: bool, logprobs: list[float] | None = None) -> None:
        """Append ids to the completion; `generated` marks them as the policy's own tokens."""
        if logprobs is not None and len(logprobs) != len(ids):
            raise ValueError(f"{len(ids)} ids but {len(logprobs)} logprobs")
        self.completion_ids.extend(ids)
        self.env_mask.extend([1 if generated else 0] * len(ids))
        self.logprobs.extend(logprobs if (generated and logprobs is not None) else [0.0] * len(ids))

    def __len__(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


@dataclass
class Episode:
    """One conversation between the policy and a user simulator for one Task.

    `messages` is what the assistant sees (the intent never appears in it). `group_id` names the
    GRPO group the episode belongs to: episodes of one group share a task, and a simulator that
    draws something per episode (a persona, a mixture member) draws it once per group.
    `sim_details` holds what the simulator wants recorded (persona text, JSON fallbacks,
    guardrail retries, the mixture member).
    """

    task: Task
    simulator: str
    group_id: str = ""
    sample: int = 0
    messages: list[Message] = field(default_factory=list)
    persona: str | None = None
    end_reason: str | None = None
    reward: float | None = None
    reward_details: dict[str, Any] = field(default_factory=dict)
    tokens: TokenView | None = None
    sim_details: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.end_reason is not None

    @property
    def assistant_turns(self) -> int:
        return sum(m.role == "assistant" for m in self.messages)

    def user_texts(self) -> list[str]:
        return [m.content for m in self.messages if m.role == "user"]

    def to_record(self) -> dict[str, Any]:
        """A JSON-able transcript record (what runs write to transcripts.jsonl)."""
        return {
            "task_id": self.task.task_id,
            "intent": self.task.intent,
            "simulator": self.simulator,
            "group_id": self.group_id,
            "sample": self.sample,
            "persona": self.persona,
            "end_reason": self.end_reason,
            "reward": self.reward,
            "reward_details": self.reward_details,
            "sim_details": self.sim_details,
            "messages": [m.as_dict() for m in self.messages],
        }
