"""A mixture of user simulators: each GRPO group meets one member, drawn by weight.

The member of an episode is drawn from the mixture seed and the episode's group id
(simulators/persona.draw_index), so every sample of a group talks to the same member and a run
repeats exactly. The member's name is recorded in episode.sim_details["member"]. `open` and
`reply` split the batch by member and make one call per member (each member batches its own
episodes), then put the answers back in the batch order.

In the zoo (configs/simulators.yaml) a mixture names other zoo entries:

    mixture:
      kind: mixture
      options:
        members:
          - {simulator: roleplay2, weight: 0.5}
          - {simulator: sftuser, weight: 0.5}
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Sequence

from corpora.types import Episode
from simulators.base import SIMULATOR_KINDS, UserSimulator, UserTurn
from simulators.persona import draw_index, group_key


@SIMULATOR_KINDS.register("mixture")
class MixtureSimulator:
    """Members (simulator, weight), weights > 0 (they need not sum to 1); names must differ."""

    def __init__(self, members: Sequence[tuple[UserSimulator, float]], *, name: str = "mixture",
                 seed: int = 0):
        if not members:
            raise ValueError(f"mixture {name!r} needs at least one member")
        names = [sim.name for sim, _ in members]
        if len(set(names)) != len(names):
            raise ValueError(f"mixture {name!r}: member names must differ, got {names}")
        bad = [(n, w) for n, (_, w) in zip(names, members) if not w > 0]
        if bad:
            raise ValueError(f"mixture {name!r}: weights must be > 0, got {bad}")
        self.name = name
        self.seed = seed
        self.members = {sim.name: sim for sim, _ in members}
        self.weights = {sim.name: float(w) for sim, w in members}

    @classmethod
    def from_zoo(cls, entry: Any, load: Callable[[str], UserSimulator], seed: int) -> "MixtureSimulator":
        """Build from a zoo entry whose options hold `members: [{simulator, weight}]`; `load`
        builds a member simulator by zoo name."""
        members = entry.options.get("members")
        unknown = set(entry.options) - {"members"}
        if not isinstance(members, list) or not members or unknown:
            raise ValueError(f"zoo entry {entry.name!r}: a mixture takes exactly one option, "
                             "members: [{simulator: <zoo name>, weight: <number>}, ...]")
        built = []
        for i, member in enumerate(members):
            if not isinstance(member, dict) or set(member) != {"simulator", "weight"}:
                raise ValueError(f"zoo entry {entry.name!r}: members[{i}] must be "
                                 f"{{simulator: <zoo name>, weight: <number>}}, got {member!r}")
            built.append((load(member["simulator"]), float(member["weight"])))
        return cls(built, name=entry.name, seed=seed)

    def member_of(self, episode: Episode) -> str:
        """The episode's member name (drawn per group, recorded in sim_details["member"])."""
        names = list(self.members)
        name = names[draw_index([self.weights[n] for n in names], self.seed, group_key(episode),
                                f"mixture:{self.name}")]
        episode.sim_details["member"] = name
        return name

    def _by_member(self, episodes: Sequence[Episode]) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, ep in enumerate(episodes):
            groups[self.member_of(ep)].append(i)
        return groups

    def open(self, episodes: Sequence[Episode]) -> list[str]:
        out: list[Any] = [None] * len(episodes)
        for name, idx in self._by_member(episodes).items():
            for i, text in zip(idx, self.members[name].open([episodes[i] for i in idx])):
                out[i] = text
        return out

    def reply(self, episodes: Sequence[Episode]) -> list[UserTurn]:
        out: list[Any] = [None] * len(episodes)
        for name, idx in self._by_member(episodes).items():
            for i, turn in zip(idx, self.members[name].reply([episodes[i] for i in idx])):
                out[i] = turn
        return out

    def metrics(self, prefix: str = "sim") -> dict[str, float]:
        """Each member's metrics (those that report any), under prefix/<member>/."""
        out: dict[str, float] = {}
        for name, sim in self.members.items():
            if hasattr(sim, "metrics"):
                out.update(sim.metrics(f"{prefix}/{name}"))
        return out
