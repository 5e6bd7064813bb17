"""WildChat conversations: the typed record, its validation, and the loader.

A source is one of
  - "sample": the WildChat-schema sample bundled with wildsim (corpora/data/wildchat_sample.jsonl,
    conversations written for this project);
  - a hub dataset name: "allenai/WildChat-1M" or "allenai/WildChat-4.8M" (split "train"; loaded
    with `datasets.load_dataset`, so it needs the hub);
  - a local JSON / JSONL / Parquet file, or a folder of them, in the WildChat schema.

Validation requires only what wildsim uses:
  - `conversation`: a list of utterances, each with a `role` ("user" or "assistant") and a string
    `content`;
  - `hashed_ip` (top level): the user identity of the split.
Every other field of reference/formats.md is optional: checked for type when present (a wrong
type names the record and field), and given a documented default when absent (see `DEFAULTS`;
notably a record without `language` and without per-utterance languages has language None, which
the English filter keeps; without `toxic` it counts as not toxic; without `conversation_hash` its
hash is the MD5 of its roles and contents). The names of the absent optional fields are kept on
the conversation (`missing`) so `wildsim data prepare` can count them. Extra fields (WildChat-4.8M's
per-turn `created`, `usage`…, or an added `intent`) are allowed.

    from corpora.wildchat import iter_wildchat, to_messages
    for conv in iter_wildchat("sample"):
        print(conv.conversation_hash, conv.user_key, len(to_messages(conv)))
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
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
#: the fields validation requires (everything else is optional)
REQUIRED = ("conversation", "hashed_ip", "conversation[].role", "conversation[].content")
#: optional top-level field -> (allowed types, may be null)
RECORD_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "conversation_hash": (_STR, False), "model": (_STR, True), "timestamp": (_TIME, True),
    "turn": (_INT, False), "language": (_STR, True), "toxic": (_BOOL, False),
    "redacted": (_BOOL, False), "state": (_STR, True), "country": (_STR, True),
    "header": (_DICT, True), "openai_moderation": (_LIST, True),
    "detoxify_moderation": (_LIST, True),
}
#: optional fields of every utterance
UTTERANCE_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "language": (_STR, True), "toxic": (_BOOL, False), "redacted": (_BOOL, False),
    "turn_identifier": (_INT, False),
}
#: optional extra fields of user utterances (the hub's null is allowed: real records have gaps)
USER_FIELDS = {"hashed_ip": (_STR, True), "state": (_STR, True), "country": (_STR, True),
               "header": (_DICT, True)}
#: optional extra fields of assistant utterances
ASSISTANT_FIELDS = {"timestamp": (_TIME, True)}
#: what an absent optional field means (documented in docs/data.md)
DEFAULTS = {
    "conversation_hash": "MD5 of the roles and contents (so duplicates still collapse)",
    "turn": "the number of user utterances",
    "language": "the most frequent utterance language; None (kept by the English filter) "
                "when no utterance has one",
    "toxic": "false (unless an utterance says toxic)",
    "redacted": "false", "conversation[].toxic": "false", "conversation[].redacted": "false",
    "conversation[].turn_identifier": "the utterance's position",
}


@dataclass(frozen=True)
class Utterance:
    """One turn of a WildChat conversation (fields absent from the record are None / defaults)."""

    role: str
    content: str
    language: str | None = None
    toxic: bool = False
    redacted: bool = False
    turn_identifier: int = 0
    hashed_ip: str | None = None
    state: str | None = None
    country: str | None = None
    header: dict[str, Any] | None = None
    timestamp: str | datetime | None = None


@dataclass
class WildChatConversation:
    """One WildChat record. `record` is the record exactly as read (written back unchanged by
    `wildsim data prepare`); `where` names it in messages; `missing` lists the optional fields
    the record lacks (utterance fields as "conversation[].name"), for the prepare report."""

    conversation_hash: str
    hashed_ip: str
    utterances: tuple[Utterance, ...]
    model: str | None = None
    timestamp: str | datetime | None = None
    turn: int = 0
    language: str | None = None
    toxic: bool = False
    redacted: bool = False
    state: str | None = None
    country: str | None = None
    header: dict[str, Any] | None = None
    openai_moderation: list[Any] | None = None
    detoxify_moderation: list[Any] | None = None
    record: dict[str, Any] = field(repr=False, default_factory=dict)
    where: str = ""
    missing: tuple[str, ...] = ()

    @property
    def user_key(self) -> str:
        """The user identity of the split: hashed_ip alone (one IP seen in two countries is one
        user, so it cannot land in two splits)."""
        return self.hashed_ip

    def user_turns(self) -> list[str]:
        return [u.content for u in self.utterances if u.role == "user"]

    def first_user_turn(self) -> str | None:
        return next((u.content for u in self.utterances if u.role == "user"), None)


def _check(where: str, data: dict[str, Any], name: str,
           spec: tuple[tuple[type, ...], bool], label: str = "") -> Any:
    """The value of present field `name` (None for an allowed null), or SchemaError naming it
    (as `label` when given)."""
    types, nullable = spec
    label = label or name
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


def _optional(where: str, data: dict[str, Any], specs: dict[str, tuple[tuple[type, ...], bool]],
              prefix: str, missing: set[str]) -> dict[str, Any]:
    """The present fields of `specs`, type-checked; absent ones are added to `missing`."""
    values = {}
    for name, spec in specs.items():
        if name in data:
            values[name] = _check(where, data, name, spec, f"{prefix}{name}")
        else:
            missing.add(f"{prefix.split('[')[0] + '[].' if prefix else ''}{name}")
    return values


def _required_str(where: str, data: dict[str, Any], name: str, label: str) -> str:
    if name not in data:
        raise SchemaError(where, label, "is missing")
    return _check(where, data, name, (_STR, False), label)


def parse_utterance(data: Any, where: str, position: int, missing: set[str] | None = None
                    ) -> Utterance:
    """One utterance of `conversation`; errors name it as conversation[position].field."""
    prefix = f"conversation[{position}]"
    missing = set() if missing is None else missing
    if not isinstance(data, dict):
        raise SchemaError(where, prefix, f"should be an object, got {type(data).__name__}")
    role = _required_str(where, data, "role", f"{prefix}.role")
    if role not in ROLES:
        raise SchemaError(where, f"{prefix}.role", f"should be 'user' or 'assistant', got {role!r}")
    content = _required_str(where, data, "content", f"{prefix}.content")
    values = _optional(where, data, UTTERANCE_FIELDS, f"{prefix}.", missing)
    values.update(_optional(where, data, USER_FIELDS if role == "user" else ASSISTANT_FIELDS,
                            f"{prefix}.", missing))
    values.setdefault("turn_identifier", position)
    return Utterance(role=role, content=content, **values)


def content_hash(utterances: tuple[Utterance, ...]) -> str:
    """The default conversation_hash: MD5 of the utterances' roles and contents."""
    text = json.dumps([[u.role, u.content] for u in utterances], ensure_ascii=False)
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _majority_language(utterances: tuple[Utterance, ...]) -> str | None:
    counts = Counter(u.language for u in utterances if u.language)
    return min(counts, key=lambda lang: (-counts[lang], lang)) if counts else None


def parse_conversation(data: dict[str, Any], where: str) -> WildChatConversation:
    """Validate one WildChat record and type it; SchemaError names the record and field."""
    if isinstance(data.get("conversation_hash"), str):
        where = f"{where} (conversation_hash {data['conversation_hash']})"
    if "conversation" not in data:
        raise SchemaError(where, "conversation", "is missing")
    turns = _check(where, data, "conversation", (_LIST, False))
    if "hashed_ip" not in data:
        raise SchemaError(where, "hashed_ip", "is missing")
    hashed_ip = _check(where, data, "hashed_ip", (_STR, False))
    missing: set[str] = set()
    values = _optional(where, data, RECORD_FIELDS, "", missing)
    utterances = tuple(parse_utterance(u, where, i, missing) for i, u in enumerate(turns))
    values.setdefault("conversation_hash", content_hash(utterances))
    values.setdefault("turn", sum(u.role == "user" for u in utterances))
    if values.get("language") is None and "language" in missing:
        values["language"] = _majority_language(utterances)
    return WildChatConversation(hashed_ip=hashed_ip, utterances=utterances, record=data,
                                where=where, missing=tuple(sorted(missing)), **values)


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
