"""The UserSimulator protocol: who plays the user in a conversation, batched over episodes.

`open(episodes)` returns each fresh episode's opening user turn (the task's real opening, or one
the simulator writes); it may record on the episode what it drew for it (a persona, a mixture
member) in `episode.persona` / `episode.sim_details`, drawing once per `episode.group_id` so that
all samples of a GRPO group see the same user. `reply(episodes)` returns the next user turn of
each episode, whose last message is the assistant's; `UserTurn.ends` ends the conversation.
Both are deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from corpora.types import Episode
from foundation.registry import Registry


@dataclass(frozen=True)
class UserTurn:
    """The simulator's next move: what the user says, and whether the conversation ends after it.
    When `ends` is true and `text` is empty the user leaves without saying anything more."""

    text: str
    ends: bool = False
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class UserSimulator(Protocol):
    name: str

    def open(self, episodes: Sequence[Episode]) -> list[str]:
        """The opening user turn of each episode (episodes have no messages yet)."""
        ...

    def reply(self, episodes: Sequence[Episode]) -> list[UserTurn]:
        """The next user turn of each episode (the last message is the assistant's)."""
        ...


#: Simulator classes by kind (the `kind:` of an entry in configs/simulators.yaml).
SIMULATOR_KINDS: Registry[type] = Registry("simulator kind")
