"""Reading WildBench judge replies: the pairwise label, checklist item verdicts, the 1–10 score.

Each parser tries the reply as a JSON object first (engines.jsonparse, which also repairs fences,
trailing commas and cut-off objects), then a tolerant fallback on the text for the one field that
matters; `how` records which path worked ("json", "fallback" or "failed") so reports can count
unparseable verdicts instead of hiding them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engines.jsonparse import extract_field, extract_json_object
from eval.wb_prompts import PAIR_LABELS

_LABEL_IN_TEXT = re.compile(r"(?<![A-Za-z0-9])(A\+\+|B\+\+|A\s*=\s*B|A\+|B\+)(?![A-Za-z0-9+])")
_ITEM_FALLBACK = re.compile(
    r"[\"']?item[\"']?\s*:\s*(\d+)[^{}]*?[\"']?satisfied[\"']?\s*:\s*(true|false|yes|no)", re.I | re.S)
_BOOL_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


@dataclass(frozen=True)
class PairVerdict:
    """A pairwise verdict as the judge gave it (labels refer to the order shown to the judge)."""

    label: str | None
    how: str


@dataclass(frozen=True)
class ChecklistVerdict:
    """One judge's verdict per checklist item: True/False, or None where it gave none."""

    items: tuple[bool | None, ...]
    how: str

    @property
    def missing(self) -> int:
        return sum(v is None for v in self.items)


@dataclass(frozen=True)
class ScoreVerdict:
    """A 1–10 score, or None when the reply holds no usable score."""

    score: float | None
    how: str


_NEGATION = re.compile(r"\b(NOT|NO|NEVER|NEITHER|NOR|ISN'T|ISNT)\b")


def normalise_label(value: Any) -> str | None:
    """A pairwise label from the judge's `choice` value, or None.

    Accepted: the whole value is a label once case, spaces, quotes and brackets are dropped
    ("a++", "A = B", "[B+]"), or the value holds exactly one label and no negation
    ("B+ (slightly better)"). Refused, so that a placeholder echoed from the prompt is not read as
    a verdict: several labels ("A++ | A+ | A=B | B+ | B++", "[A++ or A+ or ...]", "A+ or B+") and
    a negated one ("not A+")."""
    if not isinstance(value, str):
        return None
    text = value.strip().upper()
    whole = re.sub(r"[\s\"'`\[\](){}.]", "", text)
    if whole in PAIR_LABELS:
        return whole
    found = {re.sub(r"\s+", "", m) for m in _LABEL_IN_TEXT.findall(text)}
    if len(found) != 1 or _NEGATION.search(text):
        return None
    label = found.pop()
    return label if label in PAIR_LABELS else None


def parse_pair(text: str) -> PairVerdict:
    """The judge's choice: the JSON `choice` field, else a `choice: …` field found in the text."""
    obj = extract_json_object(text)
    if obj is not None:
        label = normalise_label(obj.get("choice"))
        if label:
            return PairVerdict(label, "json")
    label = normalise_label(extract_field(text, "choice"))
    return PairVerdict(label, "fallback") if label else PairVerdict(None, "failed")


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _BOOL_WORDS.get(value.strip().lower())
    return None


def _items_from_json(obj: dict[str, Any], n_items: int) -> list[bool | None] | None:
    items = obj.get("items")
    if not isinstance(items, list):
        return None
    out: list[bool | None] = [None] * n_items
    for pos, entry in enumerate(items):
        if isinstance(entry, dict):
            index, value = entry.get("item", pos + 1), _as_bool(entry.get("satisfied"))
        else:  # a bare list of booleans
            index, value = pos + 1, _as_bool(entry)
        if isinstance(index, str) and index.strip().isdigit():
            index = int(index)
        if isinstance(index, int) and 1 <= index <= n_items and out[index - 1] is None:
            out[index - 1] = value
    return out


def parse_checklist(text: str, n_items: int) -> ChecklistVerdict:
    """Per-item verdicts for a checklist of `n_items` (items the reply skips are None)."""
    obj = extract_json_object(text)
    if obj is not None:
        items = _items_from_json(obj, n_items)
        if items is not None and any(v is not None for v in items):
            return ChecklistVerdict(tuple(items), "json")
    found: list[bool | None] = [None] * n_items
    for index, value in _ITEM_FALLBACK.findall(text or ""):
        i = int(index)
        if 1 <= i <= n_items and found[i - 1] is None:
            found[i - 1] = _BOOL_WORDS[value.lower()]
    if any(v is not None for v in found):
        return ChecklistVerdict(tuple(found), "fallback")
    return ChecklistVerdict((None,) * n_items, "failed")


def _as_score(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        score = float(value)
    elif isinstance(value, str):
        match = re.match(r"\s*(\d+(?:\.\d+)?)", value)
        if not match:
            return None
        score = float(match.group(1))
    else:
        return None
    return score if 1 <= score <= 10 else None


def parse_score(text: str) -> ScoreVerdict:
    """The 1–10 score: the JSON `score` field, else `score: 7` / `Score: 7/10` in the text.
    Scores outside 1–10 count as unparseable."""
    obj = extract_json_object(text)
    if obj is not None:
        score = _as_score(obj.get("score"))
        if score is not None:
            return ScoreVerdict(score, "json")
    score = _as_score(extract_field(text, "score"))
    return ScoreVerdict(score, "fallback") if score is not None else ScoreVerdict(None, "failed")


def _strict_object(text: str) -> dict[str, Any] | None:
    import json

    try:
        obj = json.loads((text or "").strip())
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def parse_pair_strict(text: str) -> PairVerdict:
    """The official reading: the whole reply must be one JSON object (json.loads, no repair) whose
    `choice` is exactly one of the five labels; anything else is dropped ("failed")."""
    obj = _strict_object(text)
    choice = obj.get("choice") if obj is not None else None
    if isinstance(choice, str) and choice.strip() in PAIR_LABELS:
        return PairVerdict(choice.strip(), "json")
    return PairVerdict(None, "failed")


def parse_score_strict(text: str) -> ScoreVerdict:
    """The official reading of a score reply: one JSON object whose `score` converts with float()
    (no range check, as the official tables); anything else is dropped ("failed")."""
    obj = _strict_object(text)
    if obj is None or isinstance(obj.get("score"), bool):
        return ScoreVerdict(None, "failed")
    try:
        return ScoreVerdict(float(obj.get("score")), "json")
    except (TypeError, ValueError):
        return ScoreVerdict(None, "failed")
