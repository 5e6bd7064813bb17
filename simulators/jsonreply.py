"""Reading a prompted simulator's reply: JSON first, then tolerant fallbacks, counted.

Role-play simulators are asked to answer with `{"thought": ..., "response": ...}` (the
`current_answer` field of the published prompt format is accepted too and recorded, never said).
Only `response` is what the user says. A reply is read in three steps, and the step that
succeeded is reported so fallbacks can be counted:

1. "json":  the first JSON object of the reply has a response field (engines.jsonparse);
2. "field": a response field read out of text that is not a parseable object;
3. "raw":   the reply itself, stripped of obvious wrappers (code fences, a "User:" label, a
            continuation that starts speaking as the assistant, surrounding quotes, a reply that
            is only a parenthesised stage direction).
`drop_echoes` removes lines that copy the simulator's instructions (a common small-model failure).

Ending. The user ends the conversation by writing the sentinel `<END>` (any case) in the
response, alone or after a last message ("thanks, that's all <END>"). The sentinel is removed
from the said text; `ParsedReply.ends` is true when it was present.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engines.jsonparse import extract_field, extract_json_object, strip_code_fences

END_SENTINEL = "<END>"
#: Keys read as the said text, in order of preference.
RESPONSE_KEYS = ("response", "reply", "message", "utterance")
METHODS = ("json", "field", "raw")

_USER_LABEL = re.compile(r"^\s*(?:\*\*)?(?:user|me|human|response|reply|message)\s*(?:\*\*)?\s*:\s*(?:\*\*)?\s*",
                         re.I)
_STAGE_DIRECTION = re.compile(r"\([^()]*\)", re.S)
_OTHER_SPEAKER = re.compile(r"^\s*(?:\*\*)?(?:assistant|ai|bot|system|chatbot)\s*(?:\*\*)?\s*:", re.I | re.M)


@dataclass(frozen=True)
class ParsedReply:
    """What a simulator reply says.

    response: the said text, sentinel removed and whitespace stripped (may be empty)
    ends:     the sentinel was present
    method:   "json", "field" or "raw" (see the module docstring); anything but "json" is a fallback
    thought / current_answer: the JSON fields of those names, when present
    """

    response: str
    ends: bool
    method: str
    thought: str | None = None
    current_answer: str | None = None

    @property
    def fallback(self) -> bool:
        return self.method != "json"


def split_sentinel(text: str, sentinel: str = END_SENTINEL) -> tuple[str, bool]:
    """(text without the sentinel, whether it was there); case-insensitive."""
    pattern = re.compile(re.escape(sentinel), re.I)
    if not pattern.search(text):
        return text.strip(), False
    return re.sub(r"[ \t]{2,}", " ", pattern.sub(" ", text)).strip(), True


def strip_wrappers(text: str) -> str:
    """The reply without code fences, a leading speaker label, anything from a line where the
    model starts speaking as the assistant, and one pair of surrounding quotes."""
    text = strip_code_fences(text).strip()
    text = _USER_LABEL.sub("", text, count=1)
    other = _OTHER_SPEAKER.search(text)
    if other:
        text = text[: other.start()]
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    if _STAGE_DIRECTION.fullmatch(text):  # "(I will now greet the assistant.)" is not said
        return ""
    return text


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def drop_echoes(text: str, source: str, min_chars: int = 12) -> tuple[str, int]:
    """(text without the lines that copy `source`, number of lines dropped). A line is an echo
    when, lower-cased with punctuation removed, it has at least `min_chars` characters and occurs
    in `source` (small models often repeat their instructions instead of playing the user)."""
    source_norm, kept, dropped = _norm(source), [], 0
    for line in text.split("\n"):
        norm = _norm(line)
        if len(norm) >= min_chars and f" {norm} " in f" {source_norm} ":
            dropped += 1
        else:
            kept.append(line)
    return "\n".join(kept).strip(), dropped


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _from_json(text: str) -> tuple[str, dict] | None:
    obj = extract_json_object(text)
    if obj is None:
        return None
    lowered = {str(k).lower(): v for k, v in obj.items()}
    for key in RESPONSE_KEYS:
        if lowered.get(key) is not None:
            return _as_text(lowered[key]), lowered
    return None


def parse_user_reply(text: str, sentinel: str = END_SENTINEL) -> ParsedReply:
    """Read a simulator reply (see the module docstring). Never raises; the response may be ''
    (an empty reply, or a reply that is only unparseable JSON), which the caller must handle."""
    text = text or ""
    found = _from_json(text)
    if found is not None:
        said, fields = found
        response, ends = split_sentinel(said, sentinel)
        return ParsedReply(response, ends, "json", _as_text(fields.get("thought")),
                           _as_text(fields.get("current_answer")))
    for key in RESPONSE_KEYS:
        said = extract_field(text, key)
        if said is not None:
            response, ends = split_sentinel(said, sentinel)
            return ParsedReply(strip_wrappers(response), ends, "field", extract_field(text, "thought"))
    raw, ends = split_sentinel(text, sentinel)
    raw = strip_wrappers(raw)
    if raw.startswith("{"):  # JSON-looking text with no response field: nothing sayable in it
        raw = ""
    return ParsedReply(raw, ends, "raw")


@dataclass
class ReplyStats:
    """Counters over every reply a simulator has read (its metrics; see `as_metrics`).

    echo_lines: lines dropped because they copied the simulator's own instructions
    empty_retries: replies resampled because they said nothing without ending
    empty_defaults: replies still empty after the resample, replaced by a stock user turn
    failed_tries: paper protocol: replies that broke the protocol and were retried or given up on
    ended_on_failure: paper protocol: turns that ended the conversation after every try failed
    opening_fallbacks: paper protocol: openings that failed every try (real or stock opening used)
    """

    replies: int = 0
    methods: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METHODS, 0))
    ends: int = 0
    echo_lines: int = 0
    empty_retries: int = 0
    empty_defaults: int = 0
    failed_tries: int = 0
    ended_on_failure: int = 0
    opening_fallbacks: int = 0

    def add(self, parsed: ParsedReply) -> None:
        self.add_parsed(parsed.ends, parsed.method)

    def add_parsed(self, ends: bool, method: str = "json") -> None:
        """Count one reply read by `method` (a paper-protocol reply is always "json")."""
        self.replies += 1
        self.methods[method] += 1
        self.ends += ends

    @property
    def json_fallbacks(self) -> int:
        return self.replies - self.methods["json"]

    def as_metrics(self, prefix: str = "sim") -> dict[str, float]:
        """Namespaced figures: counts, and the fallback rate = non-JSON replies / replies."""
        rate = self.json_fallbacks / self.replies if self.replies else 0.0
        out = {f"{prefix}/replies": float(self.replies), f"{prefix}/json_fallback_rate": rate,
               f"{prefix}/json_fallbacks": float(self.json_fallbacks),
               f"{prefix}/echo_lines": float(self.echo_lines),
               f"{prefix}/empty_retries": float(self.empty_retries),
               f"{prefix}/empty_defaults": float(self.empty_defaults),
               f"{prefix}/failed_tries": float(self.failed_tries),
               f"{prefix}/ended_on_failure": float(self.ended_on_failure),
               f"{prefix}/opening_fallbacks": float(self.opening_fallbacks)}
        out.update({f"{prefix}/parsed_{m}": float(n) for m, n in self.methods.items()})
        return out
