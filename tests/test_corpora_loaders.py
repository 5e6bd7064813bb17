"""WildChat / WildBench loaders: validation errors name the record and field; files of each
format load; unreadable files and wrong schemas are clear errors."""

import json
import random
from datetime import datetime, timezone

import pytest

from corpora.records import DataError, SchemaError, iter_records
from corpora.samplegen import Turn, User, build_record
from corpora.wildbench import load_wildbench, parse_wildbench
from corpora.wildchat import iter_wildchat, parse_conversation, to_messages

USER = User("ab" * 32, "Canada", "Ontario", {"accept-language": "en-CA", "user-agent": "x"},
            "casual", 0.5)


def record(*texts: str, **overrides):
    """A schema-exact WildChat record alternating user/assistant over `texts`."""
    turns = [Turn("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(texts)]
    data = build_record(random.Random(0), USER, turns, datetime(2023, 5, 1, tzinfo=timezone.utc),
                        [100])
    data.update(overrides)
    return data


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_valid_record_parses_and_converts_to_messages():
    conv = parse_conversation(record("hi can u help", "Sure!", "thx", "You're welcome."), "x")
    assert conv.user_key == "ab" * 32  # hashed_ip alone
    assert conv.missing == ()  # a schema-exact record lacks no optional field
    assert conv.turn == 2 and conv.first_user_turn() == "hi can u help"
    assert [(m.role, m.content) for m in to_messages(conv)] == [
        ("user", "hi can u help"), ("assistant", "Sure!"), ("user", "thx"),
        ("assistant", "You're welcome.")]
    assert conv.utterances[0].country == "Canada" and conv.utterances[1].timestamp is not None


def test_missing_field_names_line_hash_and_field(tmp_path):
    bad = record("a", "b")
    del bad["hashed_ip"]
    path = write_jsonl(tmp_path / "d.jsonl", [record("ok", "ok"), bad])
    with pytest.raises(SchemaError) as err:
        list(iter_wildchat(str(path)))
    message = str(err.value)
    assert "d.jsonl line 2" in message and bad["conversation_hash"] in message
    assert "'hashed_ip' is missing" in message


@pytest.mark.parametrize("field,value,expected", [
    ("turn", "2", "field 'turn' should be int, got str"),
    ("toxic", 0, "field 'toxic' should be bool, got int"),
    ("turn", True, "field 'turn' should be int, got bool"),
    ("conversation", {}, "field 'conversation' should be list"),
    ("redacted", None, "field 'redacted' is null"),
    ("header", [], "field 'header' should be dict, got list"),
])
def test_wrong_types_are_named(field, value, expected):
    with pytest.raises(SchemaError, match=expected):
        parse_conversation(record("a", "b", **{field: value}), "line 7")


def test_utterance_errors_name_the_position():
    bad = record("a", "b")
    bad["conversation"][1]["role"] = "system"
    with pytest.raises(SchemaError, match=r"conversation\[1\].role"):
        parse_conversation(bad, "line 1")
    bad = record("a", "b")
    del bad["conversation"][0]["content"]  # role and content are required
    with pytest.raises(SchemaError, match=r"conversation\[0\].content' is missing"):
        parse_conversation(bad, "line 1")
    bad = record("a", "b")
    bad["conversation"][1]["turn_identifier"] = "12"
    with pytest.raises(SchemaError, match=r"conversation\[1\].turn_identifier' should be int"):
        parse_conversation(bad, "line 1")


def test_bad_json_line_is_reported_and_stream_continues(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(record("a", "b")) + "\n{not json\n[1, 2]\n" +
                    json.dumps(record("c", "d")) + "\n")
    raws = list(iter_records(path))
    assert [r.data is None for r in raws] == [False, True, True, False]
    assert raws[1].where == "d.jsonl line 2" and "not valid JSON" in raws[1].problem
    assert "expected a JSON object" in raws[2].problem
    with pytest.raises(DataError, match="d.jsonl line 2: not valid JSON"):
        list(iter_wildchat(str(path)))


def test_unreadable_and_unknown_files_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        list(iter_wildchat(str(tmp_path / "missing.jsonl")))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="unknown file type '.txt'"):
        list(iter_wildchat(str(tmp_path / "notes.txt")))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read as Parquet"):
        list(iter_wildchat(str(tmp_path / "bad.parquet")))
    (tmp_path / "latin.jsonl").write_bytes(b'{"a": "caf\xe9"}\n')
    with pytest.raises(DataError, match="not UTF-8"):
        list(iter_wildchat(str(tmp_path / "latin.jsonl")))


def test_wrong_schema_names_the_first_missing_field(tmp_path):
    path = write_jsonl(tmp_path / "other.jsonl", [{"prompt": "hi", "response": "hello"}])
    with pytest.raises(SchemaError, match="other.jsonl line 1: field 'conversation' is missing"):
        list(iter_wildchat(str(path)))


def test_json_array_and_parquet_and_folder_load(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [record("one", "1"), record("two", "2")]
    (tmp_path / "a.json").write_text(json.dumps(records))
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "b.parquet")
    assert [c.first_user_turn() for c in iter_wildchat(str(tmp_path / "a.json"))] == ["one", "two"]
    assert [c.first_user_turn() for c in iter_wildchat(str(tmp_path / "b.parquet"))] == ["one", "two"]
    assert len(list(iter_wildchat(str(tmp_path)))) == 4  # a folder: every record file in it
    assert len(list(iter_wildchat("sample", limit=5))) == 5


def wildbench_record(**overrides):
    data = {"id": "t1", "session_id": "s1",
            "conversation_input": [{"content": "hi", "language": "English", "redacted": False,
                                    "role": "user", "toxic": False}],
            "references": {"gpt-4": "hello"}, "checklist": ["Is it polite?"] * 5, "length": 1,
            "primary_tag": "Others", "secondary_tags": [], "intent": "greet",
            "appropriate": "1.0"}
    data.update(overrides)
    return data


def test_wildbench_validation_names_record_and_field(tmp_path):
    task = parse_wildbench(wildbench_record(), "line 1")
    assert task.query == "hi" and task.history == ()
    with pytest.raises(SchemaError, match=r"line 3 \(session_id s1\): field 'checklist' should be list"):
        parse_wildbench(wildbench_record(checklist="x"), "line 3")
    bad = wildbench_record()
    del bad["conversation_input"][0]["role"]
    with pytest.raises(SchemaError, match=r"conversation_input\[0\].role' is missing"):
        parse_wildbench(bad, "line 1")
    with pytest.raises(SchemaError, match="must end with the user's query"):
        parse_wildbench(wildbench_record(conversation_input=[
            {"content": "x", "language": "English", "redacted": False, "role": "assistant",
             "toxic": False}]), "line 1")
    path = write_jsonl(tmp_path / "wb.jsonl", [wildbench_record(), {"id": "t2"}])
    with pytest.raises(SchemaError, match="wb.jsonl line 2: field 'references' is missing"):
        load_wildbench(str(path))
