"""The Reward protocol: score whole episodes, batched, keeping the why next to the number."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from corpora.types import Episode
from wildsim.registry import Registry


@dataclass
class RewardResult:
    """A reward and what produced it (judge verdicts, rationales, parse failures, components)."""

    value: float
    details: dict[str, Any] = field(default_factory=dict)
    #: True when the reward could not be measured (e.g. every judge failed) and the episode must be
    #: left out of the loss rather than trained on `value` (which then holds only a placeholder).
    excluded: bool = False


@runtime_checkable
class Reward(Protocol):
    name: str

    def score(self, episodes: Sequence[Episode]) -> list[RewardResult]:
        """One result per episode, in order."""
        ...


#: Reward classes by kind (the `kind:` of a reward entry in a config).
REWARD_KINDS: Registry[type] = Registry("reward kind")
