"""Persona bank loading and per-group persona draws."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from corpora.types import Episode, Task
from simulators.persona import (Persona, PersonaError, draw_index, load_personas, persona_for,
                                stable_uniform)

PUBLISHED = ["default", "impatient", "typos", "side_questions"]


def episode(group: str, sample: int = 0) -> Episode:
    return Episode(task=Task("t", "intent"), simulator="rp", group_id=group, sample=sample)


def test_default_bank_has_the_published_four_and_more():
    bank = load_personas()
    names = [p.name for p in bank]
    assert names[:4] == PUBLISHED and len(names) >= 8
    assert all(p.description and p.weight > 0 for p in bank)


def test_selecting_names_and_unknown_names():
    assert [p.name for p in load_personas(names=["typos", "default"])] == ["default", "typos"]
    with pytest.raises(PersonaError, match="unknown persona.*'grumpy'.*known: default"):
        load_personas(names=["grumpy"])


def test_bad_bank_files_are_explained(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("personas:\n  - name: a\n")
    with pytest.raises(PersonaError, match=r"personas\[0\] needs a name and a description"):
        load_personas(path)
    with pytest.raises(PersonaError, match="does not exist"):
        load_personas(tmp_path / "missing.yaml")


def test_persona_fixed_within_a_group_and_varied_across_groups():
    bank = load_personas()
    drawn = {}
    for g in range(300):
        names = {persona_for(episode(f"g{g}", s), bank, seed=7).name for s in range(5)}
        assert len(names) == 1  # every sample of the group meets the same user
        drawn[g] = names.pop()
    counts = Counter(drawn.values())
    assert len(counts) == len(bank)  # 300 groups over 10 personas: all appear
    assert max(counts.values()) < 300 * 0.25


def test_persona_is_recorded_and_depends_on_the_seed():
    bank = load_personas()
    ep = episode("g1")
    persona = persona_for(ep, bank, seed=0)
    assert ep.persona == persona.name and ep.sim_details["persona_text"] == persona.description
    other = [persona_for(episode(f"g{g}"), bank, seed=1).name for g in range(50)]
    same = [persona_for(episode(f"g{g}"), bank, seed=0).name for g in range(50)]
    assert other != same


def test_draw_index_follows_weights():
    n, weights = 4000, [1.0, 3.0]
    hits = sum(draw_index(weights, 0, f"k{i}", "test") for i in range(n))
    p = 0.75
    assert abs(hits / n - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert draw_index([0.0, 1.0], 5, "any", "s") == 1
    with pytest.raises(ValueError):
        draw_index([0.0, 0.0], 0, "k", "s")


def test_stable_uniform_is_stable_and_in_range():
    values = [stable_uniform(1, "s", f"k{i}") for i in range(100)]
    assert all(0 <= v < 1 for v in values)
    assert stable_uniform(1, "s", "k0") == values[0]
    assert stable_uniform(2, "s", "k0") != values[0]


def test_weighted_persona_bank():
    bank = [Persona("rare", "r", 0.1), Persona("common", "c", 9.9)]
    counts = Counter(persona_for(episode(f"g{g}"), bank, seed=0).name for g in range(500))
    assert counts["common"] > counts["rare"] * 10
