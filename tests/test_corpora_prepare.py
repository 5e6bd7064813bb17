"""`wildsim data prepare` end to end on the bundled sample and on small bad files."""

import json
from collections import defaultdict

from corpora import prepare
from corpora.wildbench import load_wildbench
from corpora.wildchat import SAMPLE_PATH, iter_wildchat, parse_conversation


def read_split(folder, name):
    return [json.loads(line) for line in (folder / f"{name}.jsonl").read_text().splitlines()]


def run(tmp_path, *extra):
    out = tmp_path / "out"
    code = prepare.main(["--source", "sample", "--out", str(out), *extra])
    return code, out


def test_prepare_sample_counts_add_up_and_users_do_not_cross(tmp_path):
    code, out = run(tmp_path, "--max-ngram-repeats", "15")
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    total = sum(1 for line in SAMPLE_PATH.read_text().splitlines() if line.strip())
    assert report["read"] == total
    assert report["kept"] + sum(report["dropped"].values()) == report["read"]
    assert len(report["skipped"]) == sum(report["dropped"].values())
    # the sample's deliberately filterable conversations, each dropped for its reason
    assert report["dropped"] == {"duplicate_conversation_hash": 13, "non_english": 6, "toxic": 3, "empty_turn": 3,
                                 "roles_not_alternating": 4, "templated_first_turn": 20}
    splits = {name: read_split(out, name) for name in ("train", "validation", "test")}
    assert {k: len(v) for k, v in splits.items()} == report["splits"]
    assert all(len(v) > 0 for v in splits.values())
    seen = defaultdict(set)
    for name, records in splits.items():
        for r in records:
            seen[r["hashed_ip"]].add(name)
    assert all(len(names) == 1 for names in seen.values())
    # records are written unchanged: the first train record equals its source line
    source = {json.dumps(json.loads(l), sort_keys=True) for l in SAMPLE_PATH.read_text().splitlines()}
    assert all(json.dumps(r, sort_keys=True) in source for r in splits["train"])


def test_default_threshold_keeps_the_template_and_seed_changes_the_split(tmp_path):
    _, out = run(tmp_path)
    report = json.loads((out / "report.json").read_text())
    assert "templated_first_turn" not in report["dropped"]  # 20 repeats < default 100
    other = prepare.main(["--source", "sample", "--out", str(tmp_path / "s7"), "--seed", "7"])
    assert other == 0
    assert read_split(out, "test") != read_split(tmp_path / "s7", "test")


def test_wildbench_sessions_are_forced_into_test(tmp_path):
    code, out = run(tmp_path, "--force-test-from", "sample")
    assert code == 0
    sessions = {t.session_id for t in load_wildbench("sample")}
    users = {c.user_key for c in iter_wildchat("sample") if c.conversation_hash in sessions}
    assert users  # the sample links some sessions to its conversations
    for name in ("train", "validation"):
        assert not any(r["hashed_ip"] in users for r in read_split(out, name))
    assert json.loads((out / "report.json").read_text())["forced_test_users"] == len(users)


def bad_file(tmp_path):
    lines = SAMPLE_PATH.read_text().splitlines()[:6]
    broken = json.loads(lines[2])
    del broken["conversation"][0]["content"]
    lines[2] = json.dumps(broken)
    lines[4] = "{oops"
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, broken["conversation_hash"]


def test_malformed_records_are_skipped_with_reason(tmp_path, capsys):
    path, bad_hash = bad_file(tmp_path)
    assert prepare.main(["--source", str(path), "--out", str(tmp_path / "o")]) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    schema = [s for s in report["skipped"] if s["reason"] == "schema_error"]
    assert [s["where"].split(" (")[0] for s in schema] == ["bad.jsonl line 3", "bad.jsonl line 5"]
    assert bad_hash in schema[0]["where"] and "conversation[0].content" in schema[0]["detail"]
    assert report["read"] == 6 and report["kept"] + sum(report["dropped"].values()) == 6


def test_strict_mode_stops_at_the_first_bad_record(tmp_path, capsys):
    path, bad_hash = bad_file(tmp_path)
    assert prepare.main(["--source", str(path), "--out", str(tmp_path / "o"), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl line 3" in err and bad_hash in err and "Traceback" not in err


def test_unreadable_source_is_a_one_line_error(tmp_path, capsys):
    assert prepare.main(["--source", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such file" in err


def test_limit_reads_only_the_first_records(tmp_path):
    assert prepare.main(["--source", "sample", "--out", str(tmp_path / "o"), "--limit", "40"]) == 0
    assert json.loads((tmp_path / "o" / "report.json").read_text())["read"] == 40


def test_prepared_split_reads_back_as_conversations(tmp_path):
    _, out = run(tmp_path)
    first = read_split(out, "train")[0]
    assert parse_conversation(first, "train.jsonl line 1").conversation_hash == first["conversation_hash"]
