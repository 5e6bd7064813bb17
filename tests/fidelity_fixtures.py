"""Planted user behaviours for the fidelity tests: JSONL sets whose differences are known.

Behaviours (each a family of user turns with clearly different style and wording):
  terse   — short lower-case requests with typos, no punctuation
  polite  — long, formal, polite requests ending in a question mark
  shouty  — all-capitals complaints with exclamation marks
  code    — pasted code with brackets and semicolons (used only as an invented behaviour)
"""

from __future__ import annotations

import json
import random
from pathlib import Path

_TOPICS = ["code", "essay", "email", "poem", "script", "report", "recipe", "story", "table", "list"]


def utterance(behaviour: str, rng: random.Random) -> str:
    t = rng.choice(_TOPICS)
    if behaviour == "terse":
        return rng.choice([f"plz fix my {t} its brokn", f"make {t} shortr", f"wat is wrong wth {t}",
                           f"redo the {t} pls", f"{t} agian but bettr"])
    if behaviour == "polite":
        return rng.choice([
            f"Good morning. Could you please help me improve the {t} I have attached below? "
            f"I would be very grateful for any suggestions regarding its structure and clarity.",
            f"Thank you very much for your assistance so far. Would you kindly revise the {t} "
            f"so that it reads more formally, and perhaps explain the changes you made?",
            f"Hello, I hope you are well. I am preparing a {t} for my manager; could you please "
            f"review it carefully and suggest a few improvements?"])
    if behaviour == "shouty":
        return rng.choice([f"THIS {t.upper()} IS WRONG!!! FIX IT NOW!!!", "NO!!! THAT IS NOT WHAT I ASKED!!!",
                           f"WHY IS THE {t.upper()} STILL BROKEN?!?! DO IT AGAIN!!!"])
    if behaviour == "code":
        n = rng.randint(1, 9)
        return rng.choice([f"def f(x): return [v*{n} for v in x]; print(f([1,2,{n}]))",
                           f"for (int i = 0; i < {n}; i++) {{ sum += a[i]; }} // {t}",
                           f"SELECT * FROM {t} WHERE id = {n}; -- {{}} []"])
    raise ValueError(behaviour)


def write_set(path: Path, behaviours: list[str], n: int, seed: int, turns: int = 2) -> Path:
    """n conversations; each picks one behaviour uniformly and keeps it for all its user turns."""
    rng = random.Random(seed)
    with path.open("w") as fh:
        for i in range(n):
            b = behaviours[i % len(behaviours)]
            conv = []
            for _ in range(turns):
                conv.append({"role": "user", "content": utterance(b, rng)})
                conv.append({"role": "assistant", "content": "Here is an answer."})
            fh.write(json.dumps({"conversation_hash": f"{seed}-{i}", "conversation": conv}) + "\n")
    return path
