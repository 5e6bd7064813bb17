"""simulators: who plays the user. The UserSimulator protocol (`open(episodes)`,
`reply(episodes) -> list[UserTurn]`, batched, deterministic under a seed) and the zoo: prompted
role-play users (with optional personas), the fine-tuned user, mixtures, and `load_simulator(name)`
for the named simulators of configs/simulators.yaml. Depends on engines and corpora.
Heavier modules load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from simulators.base import SIMULATOR_KINDS, UserSimulator, UserTurn

_LAZY = {
    "RolePlaySimulator": "simulators.roleplay",
    "MixtureSimulator": "simulators.mixture",
    "FinetunedSimulator": "simulators.finetuned",
    "Persona": "simulators.persona",
    "load_personas": "simulators.persona",
    "load_simulator": "simulators.zoo",
    "load_zoo": "simulators.zoo",
    "known_simulators": "simulators.zoo",
}

__all__ = ["UserTurn", "UserSimulator", "SIMULATOR_KINDS", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'simulators' has no attribute {name!r}")
