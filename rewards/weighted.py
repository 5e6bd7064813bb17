"""Weighted sums of rewards, and `build_reward(config)`, which builds any reward from a mapping.

    reward = Σ_i w_i · r_i(episode)

Config form (YAML or a dict):

    kind: weighted
    components:
      - {weight: 0.8, kind: judge, judges: ["openai:http://host:8000/v1#judge-model"]}
      - {weight: 0.2, kind: rule, rule: length_band, lo: 20, hi: 150, name: length}

Each component is itself a reward config plus a `weight` (and an optional `name`, which must be
unique; default: the reward's name). A result's details keep every component:
details["components"][name] = {"value", "weight", "details", "excluded"}. A result is excluded (left
out of the loss) when any component's is.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, Sequence

from corpora.types import Episode
from rewards.base import REWARD_KINDS, Reward, RewardResult

#: Modules that register reward kinds; imported before a kind is looked up.
KIND_MODULES = ("rewards.judge", "rewards.rules", "rewards.weighted", "rewards.multiturn")


@REWARD_KINDS.register("weighted")
class WeightedReward:
    """components: (name, reward, weight) triples; names must be unique."""

    def __init__(self, components: Sequence[tuple[str, Reward, float]], *, name: str = "weighted"):
        if not components:
            raise ValueError(f"weighted reward {name!r} needs at least one component")
        names = [c[0] for c in components]
        if len(set(names)) != len(names):
            raise ValueError(f"weighted reward {name!r}: component names must differ, got {names}; "
                             "set name: on the components")
        self.components = list(components)
        self.name = name

    @classmethod
    def from_config(cls, config: Mapping[str, Any], engine_loader: Callable[..., Any] | None = None
                    ) -> "WeightedReward":
        items = config.get("components")
        if not isinstance(items, list) or not items:
            raise ValueError("weighted reward config needs components: [{weight: w, kind: ..., ...}]")
        components = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping) or "weight" not in item:
                raise ValueError(f"weighted reward: components[{i}] needs a weight, got {item!r}")
            sub = {k: v for k, v in item.items() if k != "weight"}
            reward = build_reward(sub, engine_loader=engine_loader)
            components.append((str(item.get("name") or reward.name), reward, float(item["weight"])))
        return cls(components, name=str(config.get("name", "weighted")))

    def score(self, episodes: Sequence[Episode]) -> list[RewardResult]:
        """Each component scores the whole batch once; values are combined per episode."""
        scored = [(name, weight, reward.score(episodes)) for name, reward, weight in self.components]
        results = []
        for i in range(len(episodes)):
            parts = {name: {"value": res[i].value, "weight": weight, "details": res[i].details,
                            "excluded": res[i].excluded}
                     for name, weight, res in scored}
            # a sum with an unmeasured term is unmeasured too: the episode stays out of the loss
            excluded = any(p["excluded"] for p in parts.values())
            results.append(RewardResult(weighted_sum([(p["weight"], p["value"]) for p in parts.values()]),
                                        {"components": parts}, excluded=excluded))
        return results


def weighted_sum(pairs: Sequence[tuple[float, float]]) -> float:
    """Σ weight · value over (weight, value) pairs."""
    return float(sum(w * v for w, v in pairs))


def build_reward(config: Mapping[str, Any], *, engine_loader: Callable[..., Any] | None = None) -> Reward:
    """Build a reward from {kind: <judge|rule|weighted|…>, ...}. A kind's class builds itself with
    `from_config(config, engine_loader)` when it has one, else is called with the other keys.
    engine_loader(spec, **options) builds judge engines (default engines.spec.load_chat_engine)."""
    if not isinstance(config, Mapping) or "kind" not in config:
        raise ValueError(f"a reward config is a mapping with a kind, got {config!r}")
    for module in KIND_MODULES:
        importlib.import_module(module)
    cls = REWARD_KINDS.get(str(config["kind"]))
    if hasattr(cls, "from_config"):
        return cls.from_config(config, engine_loader)
    return cls(**{k: v for k, v in config.items() if k != "kind"})


def describe_reward(config: Mapping[str, Any]) -> str:
    """A one-line name of the reward a config builds, for plot titles and summaries, e.g.
    "length_band rule (lo=3, hi=12)", "LLM judge (2 judges)", "0.8 × LLM judge (1 judge) + 0.2 ×
    length_band rule (lo=20, hi=150)"."""
    kind = str(config.get("kind", "?"))
    if kind == "weighted":
        return " + ".join(f"{float(c.get('weight', 1.0)):g} × {describe_reward(c)}"
                          for c in config.get("components", []))
    if kind == "judge":
        n = len(config.get("judges") or [])
        return f"LLM judge ({n} judge{'s' if n != 1 else ''})"
    skip = {"kind", "rule", "name", "weight"}
    params = ", ".join(f"{k}={v}" for k, v in config.items() if k not in skip)
    head = f"{config['rule']} rule" if kind == "rule" and "rule" in config else kind
    return f"{head} ({params})" if params else head
