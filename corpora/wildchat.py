"""WildChat conversations: the typed record, its validation, and the loader.

A source is one of
  - "sample": the WildChat-schema sample bundled with wildsim (corpora/data/wildchat_sample.jsonl,
    conversations written for this project);
  - a hub dataset name: "allenai/WildChat-1M" or "allenai/WildChat-4.8M" (split "train"; loaded
    with `datasets.load_dataset`, so it needs the hub);
  - a local JSON / JSONL / Parquet file, or a folder of them, in the WildChat schema.

Validation checks every field of reference/formats.md is present with the right type and names
the record (file line or row, and conversation_hash when known) and the field when it is not.
Extra fields (WildChat-4.8M's per-turn `created`, `usage`…, or an added `intent`) are allowed.

    from corpora.wildchat import iter_wildchat, to_messages
    for conv in iter_wildchat("sample"):
        print(conv.conversation_hash, conv.user_key, len(to_messages(conv)))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from corpora.records import (DataError, RawRecord, SchemaError, iter_hub, iter_records,
                             looks_like_hub_name, record_files)
from corpora.types import Message

SAMPLE_PATH = Path(__file__).parent / "data" / "wildchat_sample.jsonl"
SAMPLE_NAMES = ("sample", "wildchat-sample")
HUB_NAMES = ("allenai/WildChat-1M", "allenai/WildChat-4.8M")
ROLES = ("user", "assistant")

_STR, _INT, _BOOL, _DICT, _LIST = (str,), (int,), (bool,), (dict,), (list,)
_TIME = (str, datetime)
#: top-level field -> (allowed types, may be null)
RECORD_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "conversation_hash": (_STR, False), "model": (_STR, False), "timestamp": (_TIME, False),
    "turn": (_INT, False), "language": (_STR, False), "toxic": (_BOOL, False),
    "redacted": (_BOOL, False), "state": (_STR, True), "country": (_STR, True),
    "hashed_ip": (_STR, False), "header": (_DICT, False), "openai_moderation": (_LIST, False),
    "detoxify_moderation": (_LIST, False), "conversation": (_LIST, False),
}
#: fields of every utterance
UTTERANCE_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "role": (_STR, False), "content": (_STR, False), "language": (_STR, False),
    "toxic": (_BOOL, False), "redacted": (_BOOL, False), "turn_identifier": (_INT, False),
}
#: extra fields of user utterances (the hub's null is allowed: real records have gaps)
USER_FIELDS = {"hashed_ip": (_STR, True), "state": (_STR, True), "country": (_STR, True),
               "header": (_DICT, True)}
#: extra fields of assistant utterances
ASSISTANT_FIELDS = {"timestamp": (_TIME, True)}


@dataclass(frozen=True)
class Utterance:
    """One turn of a WildChat conversation (user-only and assistant-only fields may be None)."""

    role: str
    content: str
    language: str
    toxic: bool
    redacted: bool
    turn_identifier: int
    hashed_ip: str | None = None
    state: str | None = None
    country: str | None = None
    header: dict[str, Any] | None = None
    timestamp: str | datetime | None = None


@dataclass
class WildChatConversation:
    """One WildChat record. `record` is the record exactly as read (written back unchanged by
    `wildsim data prepare`); `where` names it in messages."""

    conversation_hash: str
    model: str
    timestamp: str | datetime
    turn: int
    language: str
    toxic: bool
    redacted: bool
    state: str | None
    country: str | None
    hashed_ip: str
    header: dict[str, Any]
    openai_moderation: list[Any]
    detoxify_moderation: list[Any]
    utterances: tuple[Utterance, ...]
    record: dict[str, Any] = field(repr=False, default_factory=dict)
    where: str = ""

    @property
    def user_key(self) -> str:
        """The user identity of the split: hashed_ip and country."""
        return user_key(self.hashed_ip, self.country)

    def user_turns(self) -> list[str]:
        return [u.content for u in self.utterances if u.role == "user"]

    def first_user_turn(self) -> str | None:
        return next((u.content for u in self.utterances if u.role == "user"), None)


def user_key(hashed_ip: str, country: str | None) -> str:
    """"hashed_ip|country" (country empty when unknown)."""
    return f"{hashed_ip}|{country or ''}"


def _check(where: str, data: dict[str, Any], name: str,
           spec: tuple[tuple[type, ...], bool], label: str = "") -> Any:
    """The value of field `name`, or SchemaError naming it (as `label` when given)."""
    types, nullable = spec
    label = label or name
    if name not in data:
        raise SchemaError(where, label, "is missing")
    value = data[name]
    if value is None:
        if nullable:
            return None
        raise SchemaError(where, label, "is null")
    # bool is an int in Python: a bool where an int is expected is still a type error
    if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
        expected = " or ".join(t.__name__ for t in types)
        raise SchemaError(where, label, f"should be {expected}, got {type(value).__name__}")
    return value


def parse_utterance(data: Any, where: str, position: int) -> Utterance:
    """One utterance of `conversation`; errors name it as conversation[position].field."""
    prefix = f"conversation[{position}]"
    if not isinstance(data, dict):
        raise SchemaError(where, prefix, f"should be an object, got {type(data).__name__}")
    values = {name: _check(where, data, name, spec, f"{prefix}.{name}")
              for name, spec in UTTERANCE_FIELDS.items()}
    if values["role"] not in ROLES:
        raise SchemaError(where, f"{prefix}.role", f"should be 'user' or 'assistant', got "
                                                   f"{values['role']!r}")
    extra = USER_FIELDS if values["role"] == "user" else ASSISTANT_FIELDS
    for name, spec in extra.items():
        values[name] = _check(where, data, name, spec, f"{prefix}.{name}")
    return Utterance(**values)


def parse_conversation(data: dict[str, Any], where: str) -> WildChatConversation:
    """Validate one WildChat record and type it; SchemaError names the record and field."""
    if isinstance(data.get("conversation_hash"), str):
        where = f"{where} (conversation_hash {data['conversation_hash']})"
    values = {name: _check(where, data, name, spec) for name, spec in RECORD_FIELDS.items()}
    utterances = tuple(parse_utterance(u, where, i) for i, u in enumerate(values.pop("conversation")))
    return WildChatConversation(**values, utterances=utterances, record=data, where=where)


def to_messages(conv: WildChatConversation) -> list[Message]:
    """The conversation as Messages (roles and contents only)."""
    return [Message(u.role, u.content) for u in conv.utterances]


def check_source(source: str) -> None:
    """DataError now (before any work starts) when a local source cannot be read."""
    if source not in SAMPLE_NAMES and not looks_like_hub_name(source):
        record_files(Path(source))


def raw_records(source: str, limit: int = 0) -> Iterator[RawRecord]:
    """Raw records of a source ("sample", a hub name, or a local file/folder), up to `limit`."""
    if source in SAMPLE_NAMES:
        stream = iter_records(SAMPLE_PATH)
    elif looks_like_hub_name(source):
        stream = iter_hub(source, split=f"train[:{limit}]" if limit else "train")
    else:
        stream = iter_records(source)
    for count, raw in enumerate(stream):
        if limit and count >= limit:
            return
        yield raw


def parse_raw(raw: RawRecord) -> WildChatConversation:
    """Type one raw record; DataError (SchemaError for a field) when it is not a WildChat record."""
    if raw.data is None:
        raise DataError(f"{raw.where}: {raw.problem}")
    return parse_conversation(raw.data, raw.where)


def iter_wildchat(source: str, limit: int = 0) -> Iterator[WildChatConversation]:
    """Every conversation of a source, validated; the first bad record raises DataError."""
    for raw in raw_records(source, limit):
        yield parse_raw(raw)
