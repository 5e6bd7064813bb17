"""Judge prompts for WildBench: pairwise (WB-Reward), checklist items, and single-response score.

Every prompt shows the conversation history as USER:/ASSISTANT: lines, the current query and the
response(s), each between clearly marked delimiters, and the task's checklist as a guide. The
judge is asked to analyse first and then answer with one JSON object (parsed by eval/wb_verdicts.py).
Long fields (each history turn, the query, each response) are cut to their first 1,000 words.
The wording is this project's own; the protocol follows reference/formats.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from corpora.types import Message

MAX_WORDS = 1000
PAIR_LABELS = ("A++", "A+", "A=B", "B+", "B++")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class JudgeContext:
    """What every WildBench judge prompt shows about a task (responses come separately).

    history:   the earlier turns of the conversation (oldest first), without the current query
    query:     the current user query (the last user turn of conversation_input)
    checklist: the task's checklist questions (may be empty)
    """

    history: tuple[Message, ...]
    query: str
    checklist: tuple[str, ...] = ()


def first_words(text: str, max_words: int = MAX_WORDS) -> str:
    """`text` up to the end of its `max_words`-th whitespace-separated word (formatting kept)."""
    if max_words < 0:
        return text
    for i, match in enumerate(_WORD.finditer(text)):
        if i == max_words - 1:
            return text[: match.end()]
    return text


def _history_block(history: Sequence[Message]) -> str:
    if not history:
        return "(no earlier turns: the query below opens the conversation)"
    lines = [f"{m.role.upper()}: {first_words(m.content)}" for m in history]
    return "\n\n".join(lines)


def _checklist_block(checklist: Sequence[str]) -> str:
    if not checklist:
        return "(no checklist for this task)"
    return "\n".join(f"{i}. {item}" for i, item in enumerate(checklist, 1))


def _delimited(name: str, text: str) -> str:
    return f"=== BEGIN {name} ===\n{first_words(text)}\n=== END {name} ==="


def _context(ctx: JudgeContext) -> str:
    return (
        "## Conversation history\n" + _history_block(ctx.history) + "\n\n"
        "## Current user query\n" + _delimited("QUERY", ctx.query) + "\n\n"
    )


def pairwise_prompt(ctx: JudgeContext, response_a: str, response_b: str) -> str:
    """The WB-Reward prompt: compare response A with response B for the current query."""
    return (
        "You are an impartial expert judging AI assistants. Read a conversation between a user "
        "and an assistant, the user's current query, and two candidate responses to it. Decide "
        "which response serves the user better.\n\n" + _context(ctx) +
        "## Response A\n" + _delimited("RESPONSE A", response_a) + "\n\n"
        "## Response B\n" + _delimited("RESPONSE B", response_b) + "\n\n"
        "## Checklist (a guide to what a good answer covers; not exhaustive)\n"
        + _checklist_block(ctx.checklist) + "\n\n"
        "## How to judge\n"
        "1. Analyse response A, then response B: correctness, whether it does what the user "
        "asked, completeness, use of the conversation so far, clarity. Use the checklist.\n"
        "2. Give the reasons for your decision.\n"
        "3. Choose one label:\n"
        '   "A++" A is clearly better;  "A+" A is slightly better;  "A=B" equally good or '
        'equally bad (use rarely);  "B+" B is slightly better;  "B++" B is clearly better.\n'
        "Ignore the order in which the responses appear. A longer response is not better unless "
        "the extra content helps the user.\n\n"
        "## Answer format\n"
        "Reply with a single JSON object and nothing else:\n"
        '{"analysis_a": "...", "analysis_b": "...", "reasons": "...", '
        '"choice": "A++ | A+ | A=B | B+ | B++"}'
    )


CLEARLY_RULE = ("An item is satisfied only when the response meets it clearly and sufficiently; "
                "an item met partly, vaguely or only implicitly is not satisfied. ")


def checklist_prompt(ctx: JudgeContext, response: str, clearly: bool = False) -> str:
    """The checklist prompt: is each checklist item satisfied by this one response? `clearly` adds
    the paper's rule (satisfied only when clearly and sufficiently met; partial = no)."""
    n = len(ctx.checklist)
    return (
        "You are an impartial expert judging an AI assistant. Read a conversation, the user's "
        "current query and the assistant's response, then check the response against each item "
        "of a checklist.\n\n" + _context(ctx) +
        "## Response\n" + _delimited("RESPONSE", response) + "\n\n"
        "## Checklist\n" + _checklist_block(ctx.checklist) + "\n\n"
        "## How to judge\n"
        "For each item, first write a short analysis of whether the response does what the item "
        "asks, then decide: satisfied (true) or not (false). " + (CLEARLY_RULE if clearly else "") +
        "Judge the response as it is; do not give credit for what it promises but does not "
        "do.\n\n"
        "## Answer format\n"
        f"Reply with a single JSON object and nothing else, with exactly {n} entries in "
        '"items", in checklist order:\n'
        '{"items": [{"item": 1, "analysis": "...", "satisfied": true}, ...]}'
    )


def score_prompt(ctx: JudgeContext, response: str) -> str:
    """The WB-Score prompt: strengths, weaknesses, then a 1–10 score for one response."""
    return (
        "You are an impartial expert judging an AI assistant. Read a conversation, the user's "
        "current query and the assistant's response, and rate the response.\n\n" + _context(ctx) +
        "## Response\n" + _delimited("RESPONSE", response) + "\n\n"
        "## Checklist (a guide to what a good answer covers; not exhaustive)\n"
        + _checklist_block(ctx.checklist) + "\n\n"
        "## How to judge\n"
        "First list the response's strengths, then its weaknesses, then give a score from 1 to "
        "10:\n"
        "  1-2  very poor: irrelevant, wrong or harmful\n"
        "  3-4  poor: misses key needs of the query, major errors\n"
        "  5-6  fair: addresses the query but with clear gaps or errors\n"
        "  7-8  good: helpful and mostly correct, minor issues\n"
        "  9-10 excellent: fully correct, complete and well presented\n\n"
        "## Answer format\n"
        "Reply with a single JSON object and nothing else:\n"
        '{"strengths": "...", "weaknesses": "...", "score": 7}'
    )
