"""Tasks from WildChat conversations, Task JSONL round trips, prepared folders as tasks."""

import json

import pytest

from corpora import prepare
from corpora.records import DataError
from corpora.tasks import (INTENT_PREFIX, conversation_to_task, read_tasks, stand_in_intent,
                           task_category, write_tasks)
from corpora.types import Message, Task
from corpora.wildchat import iter_wildchat


def test_conversation_to_task_fields():
    conv = next(c for c in iter_wildchat("sample") if c.turn >= 2 and c.language == "English")
    task = conversation_to_task(conv, split="train")
    first = conv.utterances[0]
    assert task.task_id == f"{conv.conversation_hash}-{first.turn_identifier}"
    assert task.opening == first.content and task.intent.startswith(INTENT_PREFIX)
    assert [m.content for m in task.conversation] == [u.content for u in conv.utterances]
    assert task.metadata["user_key"] == conv.user_key and task.metadata["turns"] == conv.turn
    assert task.metadata["country"] == conv.country and task.metadata["split"] == "train"
    assert task.metadata["category"] in ("coding", "writing", "other")


def test_task_ids_are_unique_although_hashes_repeat():
    tasks = read_tasks("sample")
    hashes = [t.metadata["conversation_hash"] for t in tasks]
    assert len(set(hashes)) < len(hashes)  # the sample has re-submitted conversations
    assert len({t.task_id for t in tasks}) == len(tasks)


def test_intent_field_is_used_when_present(tmp_path):
    line = json.loads(next(iter(open(_sample_path()))))
    line["intent"] = f"{INTENT_PREFIX} fix a bug."
    (tmp_path / "x.jsonl").write_text(json.dumps(line) + "\n")
    assert read_tasks(tmp_path / "x.jsonl")[0].intent == f"{INTENT_PREFIX} fix a bug."


def test_stand_in_intent_is_built_from_the_first_turn():
    words = " ".join(f"w{i}" for i in range(50))
    intent = stand_in_intent(words, "coding")
    assert intent.startswith(f"{INTENT_PREFIX} get help with a coding task.")
    assert intent.endswith("w39 …") and "w40" not in intent


@pytest.mark.parametrize("texts,expected", [
    (["my python function throws a KeyError"], "coding"),
    (["write a cover letter for a nurse job"], "writing"),
    (["what should i cook tonight"], "other"),
    (["write a function in javascript", "```js\nx\n```"], "coding"),
])
def test_task_category(texts, expected):
    assert task_category(texts) == expected


def test_task_jsonl_round_trip(tmp_path):
    tasks = [Task("t1", f"{INTENT_PREFIX} plan a trip.", "hi",
                  (Message("user", "hi"), Message("assistant", "hello")), {"country": "Kenya"}),
             Task("t2", "goal", None, (), {})]
    assert write_tasks(tasks, tmp_path / "tasks.jsonl") == 2
    assert read_tasks(tmp_path / "tasks.jsonl") == tasks


def test_bad_task_record_names_line_and_field(tmp_path):
    (tmp_path / "t.jsonl").write_text(json.dumps({"task_id": "a", "intent": 3, "conversation": []}))
    with pytest.raises(DataError, match="t.jsonl line 1: field 'intent' should be str"):
        read_tasks(tmp_path / "t.jsonl")


def test_prepared_folder_reads_as_tasks_by_split(tmp_path):
    out = tmp_path / "prep"
    assert prepare.main(["--source", "sample", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    test_tasks = read_tasks(out, split="test")
    assert len(test_tasks) == report["splits"]["test"]
    assert {t.metadata["split"] for t in test_tasks} == {"test"}
    assert len(read_tasks(out)) == report["kept"]  # the whole folder, report.json left out
    # a file with a `split` field per record is filtered on it
    lines = (out / "train.jsonl").read_text().splitlines()[:3]
    tagged = [dict(json.loads(l), split=s) for l, s in zip(lines, ("train", "test", "train"))]
    (tmp_path / "mixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in tagged))
    assert len(read_tasks(tmp_path / "mixed.jsonl", split="train")) == 2


def _sample_path():
    from corpora.wildchat import SAMPLE_PATH
    return SAMPLE_PATH
