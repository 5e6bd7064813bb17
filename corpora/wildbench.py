"""WildBench tasks: the typed record (v2 schema), its validation, and the loader.

A source is one of
  - "sample": the WildBench-schema sample bundled with wildsim (corpora/data/wildbench_sample.jsonl,
    tasks written for this project);
  - "allenai/WildBench" (config "v2", split "test"), or "allenai/WildBench:v2-hard" for another
    config; loaded with `datasets.load_dataset`, so it needs the hub;
  - a local JSON / JSONL / Parquet file, or a folder of them, in the same schema.

    from corpora.wildbench import iter_wildbench
    for task in iter_wildbench("sample"):
        print(task.session_id, task.primary_tag, task.query[:60])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from corpora.records import (DataError, RawRecord, SchemaError, iter_hub, iter_records,
                             looks_like_hub_name)
from corpora.types import Message, Task

SAMPLE_PATH = Path(__file__).parent / "data" / "wildbench_sample.jsonl"
SAMPLE_NAMES = ("sample", "wildbench-sample")
HUB_NAME = "allenai/WildBench"
DEFAULT_CONFIG, DEFAULT_SPLIT = "v2", "test"
CHECKLIST_RANGE = (5, 10)  # usual checklist length in v2 (checked on the bundled sample only)
TURN_FIELDS = {"content": str, "language": str, "redacted": bool, "role": str, "toxic": bool}


@dataclass(frozen=True)
class WildBenchTurn:
    """One entry of conversation_input."""

    role: str
    content: str
    language: str
    redacted: bool
    toxic: bool


@dataclass
class WildBenchTask:
    """One WildBench task. The last conversation_input entry is the current user query; earlier
    ones are the history the evaluated model continues."""

    id: str
    session_id: str
    conversation_input: tuple[WildBenchTurn, ...]
    references: dict[str, str]
    checklist: tuple[str, ...]
    length: int
    primary_tag: str
    secondary_tags: tuple[str, ...]
    intent: str
    appropriate: str
    record: dict[str, Any] = field(repr=False, default_factory=dict)
    where: str = ""

    @property
    def history(self) -> tuple[Message, ...]:
        """The turns before the current query."""
        return tuple(Message(t.role, t.content) for t in self.conversation_input[:-1])

    @property
    def query(self) -> str:
        """The current user query (the last entry of conversation_input)."""
        return self.conversation_input[-1].content


def wildbench_messages(task: WildBenchTask) -> list[Message]:
    """History and query as Messages: what the evaluated assistant is given."""
    return [Message(t.role, t.content) for t in task.conversation_input]


def wildbench_to_task(task: WildBenchTask) -> Task:
    """A Task for rollouts: the WildBench intent, the history + query as the real conversation."""
    messages = tuple(wildbench_messages(task))
    return Task(f"wildbench-{task.session_id}", task.intent or "", task.query, messages,
                {"session_id": task.session_id, "primary_tag": task.primary_tag,
                 "secondary_tags": list(task.secondary_tags), "source": "wildbench"})


def _field(where: str, data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in data:
        raise SchemaError(where, name, "is missing")
    value = data[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
        names = " or ".join(k.__name__ for k in kinds)
        raise SchemaError(where, name, f"should be {names}, got {type(value).__name__}")
    return value


def _turns(where: str, items: list[Any]) -> tuple[WildBenchTurn, ...]:
    if not items:
        raise SchemaError(where, "conversation_input", "is empty (the last entry is the query)")
    turns = []
    for i, item in enumerate(items):
        label = f"conversation_input[{i}]"
        if not isinstance(item, dict):
            raise SchemaError(where, label, f"should be an object, got {type(item).__name__}")
        values = {}
        for name, kind in TURN_FIELDS.items():
            if not isinstance(item.get(name), kind):
                problem = "is missing" if name not in item else f"should be {kind.__name__}"
                raise SchemaError(where, f"{label}.{name}", problem)
            values[name] = item[name]
        turns.append(WildBenchTurn(**values))
    if turns[-1].role != "user":
        raise SchemaError(where, "conversation_input", "must end with the user's query")
    return tuple(turns)


def parse_wildbench(data: dict[str, Any], where: str) -> WildBenchTask:
    """Validate one WildBench v2 record and type it; SchemaError names the record and field."""
    if isinstance(data.get("session_id"), str):
        where = f"{where} (session_id {data['session_id']})"
    references = _field(where, data, "references", dict)
    if not all(isinstance(v, str) for v in references.values()):
        raise SchemaError(where, "references", "should map model names to response texts")
    checklist = _field(where, data, "checklist", list)
    if not all(isinstance(item, str) for item in checklist):
        raise SchemaError(where, "checklist", "should be a list of question strings")
    tags = _field(where, data, "secondary_tags", list)
    return WildBenchTask(
        id=str(_field(where, data, "id", (str, int))),
        session_id=_field(where, data, "session_id", str),
        conversation_input=_turns(where, _field(where, data, "conversation_input", list)),
        references=dict(references), checklist=tuple(checklist),
        length=_field(where, data, "length", int),
        primary_tag=_field(where, data, "primary_tag", str),
        secondary_tags=tuple(str(t) for t in tags),
        intent=_field(where, data, "intent", str),
        appropriate=str(data.get("appropriate") or ""),  # absent from some v2 exports
        record=data, where=where)


def _raw(source: str) -> Iterator[RawRecord]:
    if source in SAMPLE_NAMES:
        return iter_records(SAMPLE_PATH)
    name, _, config = source.partition(":")
    if name == HUB_NAME or (looks_like_hub_name(name) and not Path(source).exists()):
        return iter_hub(name, split=DEFAULT_SPLIT, config=config or DEFAULT_CONFIG)
    return iter_records(source)


def iter_wildbench(source: str = "sample", limit: int | None = None) -> Iterator[WildBenchTask]:
    """Every task of a source, validated; the first bad record raises DataError."""
    for count, raw in enumerate(_raw(source)):
        if limit and count >= limit:
            return
        if raw.data is None:
            raise DataError(f"{raw.where}: {raw.problem}")
        yield parse_wildbench(raw.data, raw.where)


def load_wildbench(source: str = "sample", limit: int | None = None) -> list[WildBenchTask]:
    """All tasks of a source (see iter_wildbench)."""
    return list(iter_wildbench(source, limit))
