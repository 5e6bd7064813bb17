"""The study config: who is compared, how participants are assigned, what they see, the limits.

A study is a YAML file (configs/arena/*.yaml) read into `StudyConfig`; `wildsim arena serve
--config FILE` serves it. Assistants are named engine specs (engines/spec.py forms, LoRA adapters
included); `pairs` lists the comparisons, first-named model first (it is "model_a" in the battles
and `win_rate_a` is its win rate); participants are assigned to pairs in seeded balanced blocks
(arena/assignment.py). The admin password is never here: it is read from the environment
variable named by `admin_password_env`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from foundation.config import ConfigError, option, to_dict

TASK_SOURCES_HELP = ("'own' (participants bring their own task) or the path of a prepared Task "
                     "file/folder (wildsim data prepare): each participant is shown one intent")


@dataclass
class StudyConfig:
    """One human study: assistants, pairs, flow texts, limits and storage."""

    study_id: str = option("arena-study", help="Name of the study, stored with every participant")
    assistants: dict[str, str] = option(
        default_factory=dict, help="Assistant name -> engine spec, e.g. {base: 'builtin:smollm2-135m-"
        "instruct', rl: 'hf:/m@lora=runs/demo/train_rl'}; names are what reports show")
    pairs: list[list[str]] = option(
        default_factory=list, help="Pairs to compare, [[a, b], ...]; each participant talks to one "
        "pair; a is the first-named model (win_rate_a). Empty: every pair of assistants")
    seed: int = option(0, help="Seed of the balanced assignment, the side draws and the task draws")
    task_source: str = option("own", help=TASK_SOURCES_HELP)
    min_exchanges: int = option(3, help="Study turns a participant must vote on before finishing")
    max_exchanges: int = option(10, help="Study turns after which the session ends by itself")
    practice_exchanges: int = option(1, help="Practice turns before the study (not analysed)")
    consent_text: str = option("This is a research study about chat assistants. Your messages and "
                               "choices are stored anonymously. You may stop at any time.",
                               help="Text of the consent page")
    instructions_text: str = option(
        "Each turn, write a message. Two assistants answer; pick the better reply (or tie / both "
        "bad) and say why if you like. The reply you pick continues the conversation.",
        help="Text of the instructions page")
    completion_code: str = option("", help="Code shown on the completion page (Prolific-style)")
    completion_url: str = option("", help="URL the completion page sends the participant to "
                                 "(e.g. https://app.prolific.com/submissions/complete?cc=CODE)")
    db_url: str = option("sqlite:///runs/arena/arena.db",
                         help="SQLAlchemy URL: sqlite:///FILE (WAL, no set-up) or "
                         "postgresql+psycopg://user@host/db for several workers")
    max_message_chars: int = option(2000, help="Longest participant message accepted")
    max_rationale_chars: int = option(1000, help="Longest rationale accepted")
    rate_limit_per_minute: int = option(30, help="Form posts one participant may make in any "
                                        "60 seconds (all workers together)")
    max_sessions_per_participant: int = option(
        1, help="Sessions one external participant id (e.g. PROLIFIC_PID) may start")
    max_reply_tokens: int = option(256, help="max_tokens of each assistant reply")
    temperature: float = option(0.7, help="Sampling temperature of the assistants")
    generation_attempts: int = option(3, help="Tries per reply before the failure is shown and "
                                      "recorded")
    generation_timeout: float = option(120.0, help="Seconds per HTTP operation for openai: specs")
    admin_password_env: str = option("ARENA_ADMIN_PASSWORD", help="Environment variable holding "
                                     "the admin password (admin pages are off when it is unset)")

    def __post_init__(self) -> None:
        if len(self.assistants) < 2:
            raise ConfigError("assistants: name at least two, e.g. {base: builtin:smollm2-135m-"
                              "instruct, rl: 'hf:...@lora=...'}")
        if not self.pairs:
            names = list(self.assistants)
            self.pairs = [[a, b] for i, a in enumerate(names) for b in names[i + 1:]]
        for pair in self.pairs:
            if len(pair) != 2 or pair[0] == pair[1]:
                raise ConfigError(f"pairs: {pair!r} must name two different assistants")
            for name in pair:
                if name not in self.assistants:
                    raise ConfigError(f"pairs: {name!r} is not an assistant; known: "
                                      f"{', '.join(self.assistants)}")
        if not 1 <= self.min_exchanges <= self.max_exchanges:
            raise ConfigError(f"need 1 <= min_exchanges ({self.min_exchanges}) <= max_exchanges "
                              f"({self.max_exchanges})")
        for name in ("practice_exchanges", "max_message_chars", "max_rationale_chars",
                     "rate_limit_per_minute", "max_sessions_per_participant", "max_reply_tokens",
                     "generation_attempts"):
            if getattr(self, name) < (0 if name == "practice_exchanges" else 1):
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.task_source != "own" and not Path(self.task_source).exists():
            raise ConfigError(f"task_source: {self.task_source!r} does not exist; "
                              f"use {TASK_SOURCES_HELP}")

    @property
    def version(self) -> str:
        """A short hash of the effective config, stored with each participant."""
        text = json.dumps(to_dict(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]
