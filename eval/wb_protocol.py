"""The three WildBench evaluation protocols, as data: `wildsim`, `official` and `paper`.

A protocol fixes every choice that moves the reported numbers (docs/evaluation.md has the table):

- `wildsim` (the project's default): both A/B orders averaged, primary-tag groups, task-macro over
  the groups present, the empty-response rule, tolerant JSON parsing, fields cut to 1,000 words
  without a marker, units as fractions (WB-Reward in −1…+1, WB-Score in −8…+10).
- `official` (allenai/WildBench leaderboard tables): one random A/B order per task (seed 42), a task
  counts in the group of its primary tag and of every secondary tag, the task-macro always divides
  by 4.75, pairs with an empty or truncated response are skipped (out of the counts and group
  rewards, in the plain reward's denominator), fields cut to 1,000 space-separated pieces plus
  "... (truncated)", the official prompt structure and JSON keys, strict `json.loads` parsing
  (a reply that fails is dropped), WB-Reward × 100, WB-Score × 10.
- `paper` (the 2605.09808 release): both orders, a failure in either order drops the task, up to 8
  tries per judge call (temperature 0, then 0.3), checklist items satisfied only when clearly and
  sufficiently met with ≥ 2 of exactly 3 judges, incomplete verdicts stop the run or mark it
  incomplete, responses at temperature 1.0 (checklist) / 0 (pairwise) with 2,048 tokens, judge
  replies up to 16k tokens, WB-Reward = plain mean × 100 and win rate = wins / n.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from engines.base import Sampling

PROTOCOL_NAMES = ("wildsim", "official", "paper")
TRUNCATION_MARKER = "... (truncated)"
EMPTY_PLACEHOLDER = "[This model response is empty.]"
OFFICIAL_REFERENCES = ("gpt-4-turbo-2024-04-09", "claude-3-haiku-20240307", "Llama-2-70b-chat-hf")


@dataclass(frozen=True)
class WBProtocol:
    """Every protocol-dependent choice of a WildBench evaluation (see the module docstring)."""

    name: str
    orders: Literal["both", "random"]            # judged A/B orders per task
    tag_groups: Literal["primary", "all"]         # primary tag only, or primary + secondary tags
    macro_over_all_weights: bool                  # task-macro ÷ 4.75 (True) or ÷ present weights
    pair_rule: Literal["empty_rule", "skip"]      # empty response loses, or empty/truncated skipped
    pair_failure: Literal["mean_parsed", "drop_task"]  # average the parsed verdicts / drop the task
    prompts: Literal["wildsim", "official"]
    strict_parsing: bool                          # json.loads only (official) or tolerant
    truncation_marker: bool                       # append "... (truncated)" to cut fields
    reward_scale: float                           # WB-Reward unit: 1 (fraction) or 100
    score_scale: float                            # WB-Score unit: 1 or 10
    checklist_two_of_three: bool                  # item satisfied by ≥ 2 of exactly 3 judges
    checklist_clearly: bool                       # "clearly and sufficiently" wording
    judge_tries: int                              # tries per judge call before a verdict fails
    judge_max_tokens: int                         # default judge reply budget
    gen_max_tokens: int | None                    # response budget (None: the config's)

    def generation_sampling(self, mode: str, max_tokens: int) -> Sampling:
        """Sampling of the responses under test: greedy, except the paper's checklist runs
        (temperature 1.0, top-p 1)."""
        if self.name == "paper" and mode == "checklist":
            return Sampling(temperature=1.0, top_p=1.0, max_tokens=max_tokens, seed=0)
        return Sampling(temperature=0.0, max_tokens=max_tokens)


PROTOCOLS: dict[str, WBProtocol] = {
    "wildsim": WBProtocol("wildsim", "both", "primary", False, "empty_rule", "mean_parsed",
                          "wildsim", False, False, 1.0, 1.0, False, False, 1, 1024, None),
    "official": WBProtocol("official", "random", "all", True, "skip", "mean_parsed",
                           "official", True, True, 100.0, 10.0, False, False, 1, 4096, None),
    "paper": WBProtocol("paper", "both", "primary", False, "empty_rule", "drop_task",
                        "wildsim", False, False, 100.0, 1.0, True, True, 8, 16384, 2048),
}


def get_protocol(name: str) -> WBProtocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; choose one of {PROTOCOL_NAMES}")
    return PROTOCOLS[name]


def draw_test_first(n_tasks: int, seed: int) -> list[bool]:
    """One random A/B order per task, in task order: True when the model under test is shown as
    A (probability ½), drawn from random.Random(seed) — the same tasks in the same order always get
    the same sides."""
    rng = random.Random(seed)
    return [rng.random() < 0.5 for _ in range(n_tasks)]


def cut_pieces(text: str, max_pieces: int = 1000, marker: str = TRUNCATION_MARKER) -> str:
    """The official cut: split on single spaces and keep the first `max_pieces` pieces, then
    append `marker`; text with at most `max_pieces` pieces is returned unchanged."""
    pieces = text.split(" ")
    if max_pieces < 0 or len(pieces) <= max_pieces:
        return text
    return " ".join(pieces[:max_pieces]) + marker


def shown_response(text: str) -> str:
    """A response as the official pipeline shows it: stripped, the empty placeholder when there
    is nothing, else cut to 1,000 pieces with the truncation marker."""
    stripped = text.strip()
    return cut_pieces(stripped) if stripped else EMPTY_PLACEHOLDER


def is_skipped(shown: str) -> bool:
    """Whether the official tables skip a pair with this shown response (empty or truncated)."""
    return shown == EMPTY_PLACEHOLDER or shown.endswith(TRUNCATION_MARKER)


def retry_sampling(base: Sampling, attempt: int) -> Sampling:
    """The paper's retry schedule: the first try at temperature 0, later ones at 0.3 with the try
    number as seed (so each retry is a fresh, cacheable call)."""
    if attempt == 0:
        return base.with_(temperature=0.0)
    return base.with_(temperature=0.3, seed=attempt)


def official_mix(task_macros: dict[str, float | None]) -> float:
    """The leaderboard's task_macro_reward: the sum of the task-macros against the three official
    references ÷ 3; a reference that is missing (or has no value) counts 0."""
    return sum((task_macros.get(name) or 0.0) for name in OFFICIAL_REFERENCES) / len(OFFICIAL_REFERENCES)
