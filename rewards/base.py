"""The Reward protocol: score whole episodes, batched, keeping the why next to the number."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from corpora.types import Episode
from foundation.registry import Registry


@dataclass
class RewardResult:
    """A reward and what produced it (judge verdicts, rationales, parse failures, components)."""

    value: float
    details: dict[str, Any] = field(default_factory=dict)
    #: True when the reward could not be measured (e.g. every judge failed) and the episode must be
    #: left out of the loss rather than trained on `value` (which then holds only a placeholder).
    excluded: bool = False


def attach_result(episode: Episode, result: RewardResult) -> float | None:
    """Put a result on its episode and return the episode's reward: None when the result is
    excluded (nothing to train on or average; the details then say `excluded: true`)."""
    episode.reward = None if result.excluded else float(result.value)
    episode.reward_details = {**dict(result.details), **({"excluded": True} if result.excluded else {})}
    return episode.reward


@runtime_checkable
class Reward(Protocol):
    name: str

    def score(self, episodes: Sequence[Episode]) -> list[RewardResult]:
        """One result per episode, in order."""
        ...


#: Reward classes by kind (the `kind:` of a reward entry in a config).
REWARD_KINDS: Registry[type] = Registry("reward kind")
