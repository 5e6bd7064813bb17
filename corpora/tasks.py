"""From WildChat conversations to Tasks, and Task files that commands pass to each other.

`conversation_to_task(conv)` builds a Task:
  - task_id:  "<conversation_hash>-<turn_identifier of the first utterance>" (hashes are not
              unique in WildChat; turn identifiers are);
  - intent:   the record's `intent` field when present (written by `wildsim data intents`),
              otherwise a stand-in built from the real first turn:
              "You are a user chatting with an assistant language model to get help with a
              <category> task. You open with a request like: <first 40 words of the first turn>"
  - opening:  the first user turn; conversation: all its messages;
  - metadata: conversation_hash, user_key, hashed_ip, country, state, language, model,
              category ("coding" / "writing" / "other", a keyword heuristic on the user turns),
              turns (user turns), and split when known.

`read_tasks(path, split=None)` reads a Task JSONL (as written by `write_tasks`), a WildChat-schema
file (JSON/JSONL/Parquet), or a folder of them (e.g. the output of `wildsim data prepare` or of
`wildsim data intents`); "sample" names the bundled WildChat sample.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Iterator

from corpora.records import DataError, RawRecord, dumps, iter_records
from corpora.splits import SPLITS
from corpora.types import Message, Task
from corpora.wildchat import (SAMPLE_NAMES, SAMPLE_PATH, WildChatConversation, parse_raw,
                              to_messages)

INTENT_PREFIX = "You are a user chatting with an assistant language model to"
OPENING_WORDS = 40
CATEGORIES = ("coding", "writing", "other")

_CODING = re.compile(
    r"\b(code|coding|python|javascript|typescript|java|c\+\+|c#|rust|golang|sql|html|css|react|"
    r"django|flask|api|function|class|bug|error|exception|traceback|compile|script|regex|json|"
    r"docker|git|bash|linux|pandas|numpy|array|loop|variable|database|query|debug|stack ?trace|"
    r"program|algorithm|kotlin|swift|php|node|npm|pip|unity|excel formula|vba)\b", re.I)
_WRITING = re.compile(
    r"\b(write|rewrite|essay|story|poem|letter|email|paraphrase|summar\w*|proofread|grammar|"
    r"article|blog|caption|cover letter|resume|cv|speech|paragraph|sentence|tone|draft|"
    r"introduction|conclusion|slogan|lyrics|script for|character|chapter|novel|bio|"
    r"linkedin|post|reword|edit)\b", re.I)


def task_category(texts: Iterable[str]) -> str:
    """"coding" when coding keywords outnumber writing ones in `texts` (a code fence counts
    three), "writing" when writing keywords win, "other" when neither appears."""
    coding = writing = 0
    for text in texts:
        coding += len(_CODING.findall(text)) + 3 * text.count("```")
        writing += len(_WRITING.findall(text))
    if coding == 0 and writing == 0:
        return "other"
    return "coding" if coding >= writing else "writing"


def opening_snippet(text: str, max_words: int = OPENING_WORDS) -> str:
    """The first `max_words` words of `text` on one line, with "…" when cut."""
    words = text.split()
    snippet = " ".join(words[:max_words])
    return snippet + (" …" if len(words) > max_words else "")


def stand_in_intent(first_turn: str, category: str) -> str:
    """The intent used until an LLM-written one exists (see the module docstring)."""
    kind = {"coding": "a coding", "writing": "a writing"}.get(category, "an everyday")
    return (f"{INTENT_PREFIX} get help with {kind} task. You open with a request like: "
            f"{opening_snippet(first_turn)}")


def conversation_to_task(conv: WildChatConversation, split: str | None = None) -> Task:
    """The Task of one WildChat conversation (see the module docstring for each field)."""
    messages = tuple(to_messages(conv))
    user_turns = [m.content for m in messages if m.role == "user"]
    opening = user_turns[0] if user_turns else None
    category = task_category(user_turns)
    intent = conv.record.get("intent")
    if not isinstance(intent, str) or not intent.strip():
        intent = stand_in_intent(opening or "", category)
    first_id = conv.utterances[0].turn_identifier if conv.utterances else 0
    metadata: dict[str, Any] = {
        "conversation_hash": conv.conversation_hash, "user_key": conv.user_key,
        "hashed_ip": conv.hashed_ip, "country": conv.country, "state": conv.state,
        "language": conv.language, "model": conv.model, "category": category,
        "turns": len(user_turns)}
    if split:
        metadata["split"] = split
    return Task(f"{conv.conversation_hash}-{first_id}", intent, opening, messages, metadata)


def task_to_record(task: Task) -> dict[str, Any]:
    """A Task as a JSON-able record (the Task JSONL format)."""
    return {"task_id": task.task_id, "intent": task.intent, "opening": task.opening,
            "conversation": [m.as_dict() for m in task.conversation],
            "metadata": task.metadata}


def task_from_record(data: dict[str, Any], where: str) -> Task:
    """A Task from a Task JSONL record; DataError names the record and field."""
    for name, kind in (("task_id", str), ("intent", str), ("conversation", list)):
        if not isinstance(data.get(name), kind):
            raise DataError(f"{where}: field '{name}' should be {kind.__name__}")
    messages = []
    for i, m in enumerate(data["conversation"]):
        if not (isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
                and isinstance(m.get("content"), str)):
            raise DataError(f"{where}: field 'conversation[{i}]' needs a role "
                            f"(system/user/assistant) and a string content")
        messages.append(Message(m["role"], m["content"]))
    opening = data.get("opening")
    return Task(data["task_id"], data["intent"], opening if isinstance(opening, str) else None,
                tuple(messages), dict(data.get("metadata") or {}))


def write_tasks(tasks: Iterable[Task], path: str | Path) -> int:
    """Write Tasks as JSONL (one record per line); returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for task in tasks:
            handle.write(dumps(task_to_record(task)) + "\n")
            count += 1
    return count


def _task_files(path: Path, split: str | None) -> list[Path]:
    if path.is_dir() and split and (path / f"{split}.jsonl").exists():
        return [path / f"{split}.jsonl"]
    if path.is_dir():
        return sorted(p for p in path.iterdir()
                      if p.suffix in (".jsonl", ".json", ".parquet") and p.stem != "report")
    return [path]


def _record_task(raw: RawRecord, file_split: str | None) -> Task:
    if raw.data is None:
        raise DataError(f"{raw.where}: {raw.problem}")
    record_split = raw.data.get("split") if isinstance(raw.data.get("split"), str) else None
    if "task_id" in raw.data and "conversation_hash" not in raw.data:
        task = task_from_record(raw.data, raw.where)
        if record_split or file_split:
            task.metadata.setdefault("split", record_split or file_split)
        return task
    return conversation_to_task(parse_raw(raw), split=record_split or file_split)


def iter_tasks(path: str | Path, split: str | None = None) -> Iterator[Task]:
    """Tasks of a file or folder, streamed; `split` keeps those whose split (the record's `split`
    field, else the file name train/validation/test) equals it."""
    path = SAMPLE_PATH if str(path) in SAMPLE_NAMES else Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    for file in _task_files(path, split):
        file_split = file.stem if file.stem in SPLITS else None
        for raw in iter_records(file):
            task = _record_task(raw, file_split)
            if split is None or task.metadata.get("split") == split:
                yield task


def read_tasks(path: str | Path, split: str | None = None) -> list[Task]:
    """All Tasks of a file or folder (see iter_tasks); the first bad record raises DataError."""
    return list(iter_tasks(path, split))

