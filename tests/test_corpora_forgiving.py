"""The WildChat loader requires only what wildsim uses; `prepare` counts absent optional fields,
names every bad record with its reason, drops repeated conversation hashes, and splits by
hashed_ip alone (stratified by each user's most frequent country)."""

import json
import random
from datetime import datetime, timezone

from corpora import prepare
from corpora.prepare import KeptUsers
from corpora.samplegen import Turn, User, build_record
from corpora.splits import assign_users
from corpora.wildchat import (ASSISTANT_FIELDS, RECORD_FIELDS, USER_FIELDS, UTTERANCE_FIELDS,
                              content_hash, parse_conversation)

USER = User("cd" * 32, "Canada", "Ontario", {"accept-language": "en-CA", "user-agent": "x"},
            "casual", 0.5)


def full_record(i: int, ip: str = "cd" * 32, country: str = "Canada") -> dict:
    """A schema-exact WildChat record with its own text (so hashes differ)."""
    turns = [Turn("user", f"please help me plan trip number {i}"), Turn("assistant", "Sure."),
             Turn("user", "make it cheaper"), Turn("assistant", "Done.")]
    user = User(ip, country, None, USER.header, "casual", 0.5)
    return build_record(random.Random(i), user, turns, datetime(2023, 5, 1, tzinfo=timezone.utc), [10 * i])


def minimal(ip: str, text: str, country: str | None = None) -> dict:
    """Only the required fields (plus a country when given)."""
    record = {"hashed_ip": ip, "conversation": [{"role": "user", "content": text},
                                                {"role": "assistant", "content": "ok"}]}
    if country:
        record["country"] = country
    return record


def run_prepare(tmp_path, lines: list[str], *extra: str) -> dict:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    assert prepare.main(["--source", str(path), "--out", str(tmp_path / "out"), *extra]) == 0
    return json.loads((tmp_path / "out" / "report.json").read_text())


def stripped_records() -> tuple[list[dict], dict[str, int]]:
    """One record per optional field with that field removed (utterance fields from every
    utterance that has them), plus one record with nothing optional; the expected counts."""
    records, expected = [], {}
    utterance_fields = {**UTTERANCE_FIELDS, **USER_FIELDS, **ASSISTANT_FIELDS}
    for i, name in enumerate(list(RECORD_FIELDS) + [f"conversation[].{n}" for n in utterance_fields]):
        record = full_record(i)
        if name.startswith("conversation[]."):
            for utt in record["conversation"]:
                utt.pop(name.split(".", 1)[1], None)
        else:
            del record[name]
        records.append(record)
        expected[name] = 1
    bare = full_record(99)
    records.append({"hashed_ip": bare["hashed_ip"],
                    "conversation": [{"role": u["role"], "content": u["content"]}
                                     for u in bare["conversation"]]})
    expected = {name: n + 1 for name, n in expected.items()}  # the bare record lacks them all
    return records, expected


def test_records_stripped_of_each_optional_field_are_all_kept(tmp_path):
    records, expected = stripped_records()
    report = run_prepare(tmp_path, [json.dumps(r) for r in records])
    assert report["read"] == report["kept"] == len(records) == 12 + 9 + 1
    assert report["dropped"] == {}
    assert report["missing_optional"] == expected


def test_defaults_of_absent_fields():
    bare = {"hashed_ip": "ip1", "conversation": [
        {"role": "user", "content": "hola", "language": "Spanish"},
        {"role": "assistant", "content": "hola!", "language": "Spanish"},
        {"role": "user", "content": "thanks", "language": "English"}]}
    conv = parse_conversation(bare, "line 1")
    assert conv.language == "Spanish"          # most frequent utterance language
    assert conv.toxic is False and conv.turn == 2 and conv.country is None
    assert [u.turn_identifier for u in conv.utterances] == [0, 1, 2]
    assert conv.conversation_hash == content_hash(conv.utterances)
    assert len(conv.conversation_hash) == 32
    no_language = parse_conversation(minimal("ip2", "hi"), "line 2")
    assert no_language.language is None       # kept by the English filter (documented)


def test_bad_records_are_named_with_their_reason(tmp_path):
    empty = minimal("ip", "fine")
    empty["conversation"][1]["content"] = "  "
    broken = minimal("ip", "first")
    broken["conversation"].append({"role": "assistant", "content": "again"})
    lines = [json.dumps(minimal("ip", "good one")),
             json.dumps({**minimal("ip", "typed"), "turn": "2"}),                 # wrong type
             json.dumps({"hashed_ip": "ip", "conversation": [{"role": "system", "content": "x"}]}),
             json.dumps(empty), json.dumps(broken), "{not json",
             json.dumps(minimal("ip", "good one")),                               # repeat hash
             json.dumps({"conversation": [{"role": "user", "content": "who?"}]})]  # no hashed_ip
    report = run_prepare(tmp_path, lines)
    why = {(s["where"].split(" (")[0], s["reason"]) for s in report["skipped"]}
    assert why == {("in.jsonl line 2", "schema_error"), ("in.jsonl line 3", "schema_error"),
                   ("in.jsonl line 4", "empty_turn"), ("in.jsonl line 5", "roles_not_alternating"),
                   ("in.jsonl line 6", "schema_error"),
                   ("in.jsonl line 7", "duplicate_conversation_hash"),
                   ("in.jsonl line 8", "schema_error")}
    details = {s["where"].split(" (")[0]: s["detail"] for s in report["skipped"]}
    assert "field 'turn' should be int, got str" in details["in.jsonl line 2"]
    assert "conversation[0].role" in details["in.jsonl line 3"]
    assert "not valid JSON" in details["in.jsonl line 6"]
    assert "field 'hashed_ip' is missing" in details["in.jsonl line 8"]
    assert report["kept"] == 1 and report["dropped"]["duplicate_conversation_hash"] == 1


def test_home_country_is_the_most_frequent_one():
    kept = KeptUsers()
    kept.countries = {"a": {"France": 2, "Spain": 1}, "b": {"Peru": 1, "Chile": 1}, "c": {}}
    assert kept.home_countries() == {"a": "France", "b": "Chile", "c": None}


def test_one_ip_in_two_countries_stays_in_one_split(tmp_path):
    lines = []
    for u in range(60):   # background users, so every split gets some
        lines.append(json.dumps(minimal(f"user{u:02d}", f"question {u}", ["France", "Peru"][u % 2])))
    for k in range(6):    # the planted IP: 4 conversations from France, 2 from Peru
        lines.append(json.dumps(minimal("traveller", f"travel question {k}",
                                        "France" if k < 4 else "Peru")))
    report = run_prepare(tmp_path, lines)
    assert report["kept"] == 66 and report["users"]["test"] > 0 and report["users"]["validation"] > 0
    splits = {name: [json.loads(l) for l in (tmp_path / "out" / f"{name}.jsonl").read_text().splitlines()]
              for name in ("train", "validation", "test")}
    homes = {name for name, records in splits.items()
             for r in records if r["hashed_ip"] == "traveller"}
    assert len(homes) == 1 and sum(r["hashed_ip"] == "traveller" for rs in splits.values() for r in rs) == 6
    assert sum(report["users"].values()) == 61  # users are IPs, not (IP, country) pairs
    # stratified by the home country: the traveller counts as a French user
    users = {f"user{u:02d}": ["France", "Peru"][u % 2] for u in range(60)} | {"traveller": "France"}
    assert assign_users(users)["traveller"] == homes.pop()
