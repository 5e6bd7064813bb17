"""The conversation filters of the simulator-training recipe (reference/methods.md C).

Each filter is a small pure function that returns a reason (one of the constants below) or None.
`wildsim data prepare` applies them in the order of `RECORD_FILTERS`, then the templated-first-turn
rule, and reports every dropped record with its first reason.

How "first turns whose 7-grams recur more than N times" is counted:
  1. The first user turn of every schema-valid conversation of the corpus is lower-cased and
     split into word tokens (runs of letters/digits/underscore, `\\w+`); punctuation and spacing
     do not count.
  2. Each first turn contributes the SET of its distinct 7-grams (consecutive 7-token windows),
     so a phrase repeated inside one turn counts once: the count of a 7-gram is the number of
     conversations whose first turn contains it.
  3. A 7-gram is frequent when that count is greater than N (default 100).
  4. A conversation is dropped as templated when its first turn contains at least one frequent
     7-gram. A first turn shorter than 7 tokens has no 7-grams and is never dropped by this rule.
The counts are taken over the first turns of the schema-valid, deduplicated (first record of each
conversation_hash) English conversations, before the other filters: a template is a property of
the corpus, not of the kept part of it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Callable, Iterable

import numpy as np

from corpora.wildchat import WildChatConversation

SCHEMA_ERROR = "schema_error"          # the record does not match the WildChat schema
DUPLICATE = "duplicate_conversation_hash"  # an earlier record had the same conversation_hash
NON_ENGLISH = "non_english"            # the record's `language` is not English
TOXIC = "toxic"                        # the record or one of its utterances is flagged toxic
EMPTY_TURN = "empty_turn"              # an utterance is empty or whitespace only
ROLES_NOT_ALTERNATING = "roles_not_alternating"  # not user, assistant, user, … (or empty)
TEMPLATED_FIRST_TURN = "templated_first_turn"    # first turn shares a frequent 7-gram
REASONS = (SCHEMA_ERROR, DUPLICATE, NON_ENGLISH, TOXIC, EMPTY_TURN, ROLES_NOT_ALTERNATING,
           TEMPLATED_FIRST_TURN)

NGRAM = 7
DEFAULT_MAX_NGRAM_REPEATS = 100
_TOKEN = re.compile(r"\w+")


def non_english(conv: WildChatConversation) -> str | None:
    """NON_ENGLISH unless the record-level `language` is "English". A record with no language
    information at all (language None, see corpora.wildchat.DEFAULTS) is kept: such files are
    taken to be filtered for language already."""
    return None if conv.language in ("English", None) else NON_ENGLISH


def toxic(conv: WildChatConversation) -> str | None:
    """TOXIC when the record or any utterance carries toxic=true."""
    return TOXIC if conv.toxic or any(u.toxic for u in conv.utterances) else None


def empty_turn(conv: WildChatConversation) -> str | None:
    """EMPTY_TURN when any utterance (user or assistant) is blank."""
    return EMPTY_TURN if any(not u.content.strip() for u in conv.utterances) else None


def roles_not_alternating(conv: WildChatConversation) -> str | None:
    """ROLES_NOT_ALTERNATING unless roles go user, assistant, user, … (a conversation with no
    utterances fails too). A final user turn without a reply is allowed."""
    if not conv.utterances:
        return ROLES_NOT_ALTERNATING
    for position, utterance in enumerate(conv.utterances):
        if utterance.role != ("user" if position % 2 == 0 else "assistant"):
            return ROLES_NOT_ALTERNATING
    return None


#: the per-record filters, in the order prepare applies them
RECORD_FILTERS: tuple[Callable[[WildChatConversation], str | None], ...] = (
    non_english, toxic, empty_turn, roles_not_alternating)


def first_reason(conv: WildChatConversation) -> str | None:
    """The first per-record filter that rejects `conv`, or None when all pass."""
    for check in RECORD_FILTERS:
        reason = check(conv)
        if reason:
            return reason
    return None


def ngram_keys(text: str, n: int = NGRAM) -> set[int]:
    """The distinct word n-grams of `text` (lower-cased `\\w+` tokens) as stable 63-bit keys."""
    tokens = _TOKEN.findall(text.lower())
    grams = {" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}
    return {int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "big") >> 1
            for g in grams}


def frequent_ngrams(first_turns: Iterable[str | None], max_repeats: int = DEFAULT_MAX_NGRAM_REPEATS,
                    n: int = NGRAM) -> set[int]:
    """Keys of the n-grams found in more than `max_repeats` of the given first turns.

    Keys are gathered in a flat int64 array and counted with numpy, which keeps memory at about
    8 bytes per (turn, distinct n-gram) pair for corpora of a million conversations.
    """
    chunks: list[np.ndarray] = []
    for text in first_turns:
        if text:
            keys = ngram_keys(text, n)
            if keys:
                chunks.append(np.fromiter(keys, dtype=np.int64, count=len(keys)))
    if not chunks:
        return set()
    values, counts = np.unique(np.concatenate(chunks), return_counts=True)
    return {int(v) for v in values[counts > max_repeats]}


def templated_first_turn(conv: WildChatConversation, frequent: set[int],
                         n: int = NGRAM) -> str | None:
    """TEMPLATED_FIRST_TURN when the first user turn contains one of the `frequent` n-grams."""
    first = conv.first_user_turn()
    if not first or not frequent:
        return None
    return TEMPLATED_FIRST_TURN if ngram_keys(first, n) & frequent else None
