"""Personas for role-play simulators, and reproducible per-group draws.

A persona is a behaviour guideline (impatient, makes typos, asks side questions…) added to a
prompted simulator's prompt; the first four of the bank are the published role-play 3 personas,
written as full guideline blocks (the "default" one is what role-play 1 and 2 always carry). The bank lives in configs/personas.yaml. A persona is drawn
per GRPO group, not per episode: `persona_for(episode, bank, seed)` depends only on the seed and
the episode's group id, so every sample of a group meets the same user while different groups
meet different ones. The draw is recorded on the episode (`episode.persona` = the name,
`episode.sim_details["persona_text"]` = the guideline).

`draw_index(weights, seed, key, salt)` is the reproducible weighted draw behind it (a hash of
seed, salt and key, not Python's randomised `hash`); the mixture simulator uses it too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import yaml

from corpora.types import Episode

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PERSONAS = REPO_ROOT / "configs" / "personas.yaml"


class PersonaError(ValueError):
    """A persona bank that cannot be used; the message names the file and entry."""


@dataclass(frozen=True)
class Persona:
    """One behaviour guideline: `name` (recorded on episodes), `description` (prompt text),
    `weight` (relative draw frequency, > 0)."""

    name: str
    description: str
    weight: float = 1.0


def resolve_path(path: str | Path) -> Path:
    """A config path as given, else relative to the repository root (so `configs/x.yaml` works
    from any working directory)."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    return REPO_ROOT / path


def load_personas(path: str | Path | None = None, names: Sequence[str] | None = None) -> list[Persona]:
    """Read a persona bank (default configs/personas.yaml); `names` keeps only those, in the
    bank's order, and every name must exist."""
    path = resolve_path(path) if path else DEFAULT_PERSONAS
    if not path.exists():
        raise PersonaError(f"persona bank {path} does not exist; pass an existing YAML file")
    data = yaml.safe_load(path.read_text()) or {}
    entries = data.get("personas") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise PersonaError(f"{path}: expected a top-level 'personas:' list of {{name, description}}")
    bank = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("description"):
            raise PersonaError(f"{path}: personas[{i}] needs a name and a description, got {entry!r}")
        unknown = set(entry) - {"name", "description", "weight"}
        if unknown:
            raise PersonaError(f"{path}: personas[{i}] ({entry['name']}) has unknown key(s) "
                               f"{sorted(unknown)}; use name, description, weight")
        weight = float(entry.get("weight", 1.0))
        if weight <= 0:
            raise PersonaError(f"{path}: persona {entry['name']!r} has weight {weight}; use > 0")
        bank.append(Persona(str(entry["name"]), tidy_description(entry["description"]), weight))
    return select_personas(bank, names, where=str(path))


def tidy_description(text: object) -> str:
    """A description with spaces collapsed inside each line and blank lines dropped; line breaks
    (a guideline block's bullets) are kept."""
    lines = (" ".join(line.split()) for line in str(text).strip().splitlines())
    return "\n".join(line for line in lines if line)


def select_personas(bank: Sequence[Persona], names: Sequence[str] | None, where: str = "bank"
                    ) -> list[Persona]:
    """The personas of `bank` named in `names` (all when None); an unknown name is an error."""
    known = [p.name for p in bank]
    if len(set(known)) != len(known):
        raise PersonaError(f"{where}: persona names must be unique, got {known}")
    if names is None:
        return list(bank)
    missing = [n for n in names if n not in known]
    if missing:
        raise PersonaError(f"{where}: unknown persona(s) {missing}; known: {', '.join(known)}")
    return [p for p in bank if p.name in set(names)]


def stable_uniform(seed: int, salt: str, key: str) -> float:
    """A number in [0, 1) fixed by (seed, salt, key), the same in every process and run."""
    digest = hashlib.blake2b(f"{seed}\x1f{salt}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def draw_index(weights: Sequence[float], seed: int, key: str, salt: str) -> int:
    """Index i drawn with probability weights[i] / sum(weights), reproducibly from (seed, salt, key)."""
    total = float(sum(weights))
    if not weights or total <= 0 or any(w < 0 for w in weights):
        raise ValueError(f"weights must be non-negative with a positive sum, got {list(weights)}")
    u, acc = stable_uniform(seed, salt, key) * total, 0.0
    for i, w in enumerate(weights):
        acc += w
        if u < acc:
            return i
    return max(i for i, w in enumerate(weights) if w > 0)


def group_key(episode: Episode) -> str:
    """What per-group draws are keyed on: the group id, or the task id when no group is set."""
    return episode.group_id or f"task:{episode.task.task_id}"


def persona_for(episode: Episode, bank: Sequence[Persona], seed: int) -> Persona:
    """The persona of the episode's group; records it on the episode (see the module docstring)."""
    persona = bank[draw_index([p.weight for p in bank], seed, group_key(episode), "persona")]
    episode.persona = persona.name
    episode.sim_details["persona_text"] = persona.description
    return persona
