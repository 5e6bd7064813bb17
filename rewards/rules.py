"""Rule rewards: cheap, deterministic scores of an Episode, for CPU demos and reward shaping.

Each rule is a pure function `rule(episode, **params) -> float` in [0, 1], registered in RULES
by name. `RuleReward(rule, **params)` (reward kind "rule") wraps one as a Reward:

    {kind: rule, rule: length_band, lo: 20, hi: 150}

Rules:
- length_band:   1 when every assistant turn's word count is within [lo, hi], decaying smoothly
                 (a Gaussian in the distance to the band) outside, averaged over assistant turns;
- asks_question: the fraction of assistant turns that contain a question mark;
- user_thanks:   1 when a user turn after the opening thanks the assistant, else 0.
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any, Callable, Mapping, Sequence

from corpora.types import Episode
from rewards.base import REWARD_KINDS, RewardResult
from foundation.registry import Registry

Rule = Callable[..., float]
RULES: Registry[Rule] = Registry("rule")

_THANKS = re.compile(r"\b(thanks?|thank you|thx|ty|cheers|appreciate[ds]?|grateful)\b", re.I)


def band_score(words: int, lo: int, hi: int, width: float) -> float:
    """1 inside [lo, hi]; exp(-(d / width)²) outside, d = distance to the nearer end.
    Continuous with a continuous slope, so near misses still earn most of the reward."""
    d = max(lo - words, 0, words - hi)
    return math.exp(-((d / width) ** 2))


@RULES.register("length_band")
def length_band(episode: Episode, lo: int = 20, hi: int = 200, width: float | None = None) -> float:
    """Mean over assistant turns of band_score(word count, lo, hi, width); width defaults to
    (hi - lo) / 2 (at least 1). 0.0 when the episode has no assistant turn."""
    if not 0 <= lo <= hi:
        raise ValueError(f"length_band needs 0 <= lo <= hi, got lo={lo}, hi={hi}")
    width = width if width is not None else max((hi - lo) / 2, 1.0)
    counts = [len(m.content.split()) for m in episode.messages if m.role == "assistant"]
    if not counts:
        return 0.0
    return sum(band_score(n, lo, hi, width) for n in counts) / len(counts)


@RULES.register("asks_question")
def asks_question(episode: Episode) -> float:
    """Fraction of assistant turns containing a '?' (0.0 with no assistant turn)."""
    turns = [m.content for m in episode.messages if m.role == "assistant"]
    return sum("?" in t for t in turns) / len(turns) if turns else 0.0


@RULES.register("user_thanks")
def user_thanks(episode: Episode) -> float:
    """1.0 when a user turn after the opening thanks the assistant (thanks, thank you, thx,
    appreciate…), else 0.0."""
    later = episode.user_texts()[1:]
    return 1.0 if any(_THANKS.search(t) for t in later) else 0.0


@REWARD_KINDS.register("rule")
class RuleReward:
    """One rule of RULES as a Reward; `params` are the rule's keyword arguments."""

    def __init__(self, rule: str, *, name: str | None = None, **params: Any):
        self.fn = RULES.get(rule)
        accepted = list(inspect.signature(self.fn).parameters)[1:]
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise ValueError(f"rule {rule!r}: unknown parameter(s) {unknown}; "
                             f"accepted: {', '.join(accepted) or '(none)'}")
        self.rule = rule
        self.name = name or rule
        self.params = params

    @classmethod
    def from_config(cls, config: Mapping[str, Any], engine_loader: Any = None) -> "RuleReward":
        """From {kind: rule, rule: <name>, name: <optional>, <rule parameters>...}."""
        cfg = dict(config)
        cfg.pop("kind", None)
        if "rule" not in cfg:
            raise ValueError(f"rule reward config needs rule: <one of {', '.join(RULES.names())}>")
        return cls(cfg.pop("rule"), **cfg)

    def score(self, episodes: Sequence[Episode]) -> list[RewardResult]:
        return [RewardResult(float(self.fn(ep, **self.params)), {"rule": self.rule, **self.params})
                for ep in episodes]
