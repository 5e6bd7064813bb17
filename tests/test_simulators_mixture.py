"""The mixture simulator: per-group member draws by weight, batched dispatch by member."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from corpora.types import Episode, Task
from simulators.base import UserTurn
from simulators.mixture import MixtureSimulator


class Scripted:
    """A member that says its own name and records the batches it was given."""

    def __init__(self, name):
        self.name = name
        self.calls = []

    def open(self, episodes):
        self.calls.append(("open", [ep.group_id for ep in episodes]))
        return [f"{self.name} opens {ep.group_id}" for ep in episodes]

    def reply(self, episodes):
        self.calls.append(("reply", [ep.group_id for ep in episodes]))
        return [UserTurn(f"{self.name} replies {ep.group_id}") for ep in episodes]

    def metrics(self, prefix):
        return {f"{prefix}/calls": float(len(self.calls))}


def episodes(groups, samples=1):
    return [Episode(task=Task(f"t{g}", "intent"), simulator="mix", group_id=f"g{g}", sample=s)
            for g in range(groups) for s in range(samples)]


def test_member_frequencies_match_the_weights():
    a, b = Scripted("a"), Scripted("b")
    mix = MixtureSimulator([(a, 0.7), (b, 0.3)], seed=1)
    eps = episodes(2000)
    mix.open(eps)
    share = Counter(ep.sim_details["member"] for ep in eps)["a"] / len(eps)
    assert abs(share - 0.7) < 4 * math.sqrt(0.7 * 0.3 / len(eps))


def test_member_fixed_within_a_group_and_one_call_per_member():
    a, b = Scripted("a"), Scripted("b")
    mix = MixtureSimulator([(a, 1.0), (b, 1.0)], seed=0)
    eps = episodes(40, samples=3)
    texts = mix.open(eps)
    for g in range(40):
        members = {ep.sim_details["member"] for ep in eps if ep.group_id == f"g{g}"}
        assert len(members) == 1
    assert len(a.calls) == 1 and len(b.calls) == 1  # one batched call per member
    assert len(a.calls[0][1]) + len(b.calls[0][1]) == len(eps)
    for ep, text in zip(eps, texts):  # answers come back in batch order
        assert text == f"{ep.sim_details['member']} opens {ep.group_id}"
    turns = mix.reply(eps)
    assert all(t.text == f"{ep.sim_details['member']} replies {ep.group_id}" for ep, t in zip(eps, turns))
    assert {c[0] for c in a.calls} == {"open", "reply"}
    assert mix.metrics() == {"sim/a/calls": 2.0, "sim/b/calls": 2.0}


def test_draws_are_reproducible_and_depend_on_the_seed():
    def members(seed):
        mix = MixtureSimulator([(Scripted("a"), 1.0), (Scripted("b"), 1.0)], seed=seed)
        eps = episodes(100)
        mix.open(eps)
        return [ep.sim_details["member"] for ep in eps]

    assert members(3) == members(3)
    assert members(3) != members(4)


def test_bad_mixtures_are_rejected():
    with pytest.raises(ValueError, match="at least one member"):
        MixtureSimulator([])
    with pytest.raises(ValueError, match="names must differ"):
        MixtureSimulator([(Scripted("a"), 1.0), (Scripted("a"), 1.0)])
    with pytest.raises(ValueError, match="weights must be > 0"):
        MixtureSimulator([(Scripted("a"), 0.0)])
