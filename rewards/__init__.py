"""rewards: score whole episodes, batched, keeping the why next to the number.

`Reward.score(episodes) -> list[RewardResult]` (value, details). Kinds: "judge" (LLM judges rate
helpfulness 0–10 given the intent and the conversation; the scorer of training and evaluation),
"rule" (cheap rule rewards for CPU demos), "weighted" (weighted sums). `build_reward(config)`
builds any of them from a mapping. Depends on engines and corpora. Heavier modules load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from rewards.base import REWARD_KINDS, Reward, RewardResult

_LAZY = {
    "JudgeReward": "rewards.judge",
    "parse_verdict": "rewards.judge",
    "judge_prompt": "rewards.judge",
    "RuleReward": "rewards.rules",
    "RULES": "rewards.rules",
    "WeightedReward": "rewards.weighted",
    "build_reward": "rewards.weighted",
    "describe_reward": "rewards.weighted",
}

__all__ = ["Reward", "RewardResult", "REWARD_KINDS", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rewards' has no attribute {name!r}")
