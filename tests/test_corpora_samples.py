"""The bundled samples: every record has every schema field with the right type, the sample
has the variety it promises, and the files are what the generator writes."""

import json
from collections import Counter

from corpora import samplegen
from corpora.filters import first_reason
from corpora.tasks import read_tasks
from corpora.wildbench import CHECKLIST_RANGE, SAMPLE_PATH as WB_PATH, load_wildbench
from corpora.wildchat import (RECORD_FIELDS, SAMPLE_PATH, USER_FIELDS, UTTERANCE_FIELDS,
                              iter_wildchat)

HEADER_KEYS = {"accept-language", "user-agent"}


def sample_records():
    return [json.loads(line) for line in SAMPLE_PATH.read_text().splitlines()]


def test_every_wildchat_record_has_exactly_the_schema_fields():
    for record in sample_records():
        assert set(record) == set(RECORD_FIELDS) | {"conversation", "hashed_ip"}
        assert set(record["header"]) == HEADER_KEYS
        n = len(record["conversation"])
        assert len(record["openai_moderation"]) == len(record["detoxify_moderation"]) == n
        for mod in record["openai_moderation"]:
            assert set(mod) == {"categories", "category_scores", "flagged"}
        for utt in record["conversation"]:
            assert set(UTTERANCE_FIELDS) | set(USER_FIELDS) | {"timestamp", "role", "content"} == set(utt)
            if utt["role"] == "user":
                assert utt["hashed_ip"] == record["hashed_ip"] and set(utt["header"]) == HEADER_KEYS
            else:
                assert isinstance(utt["timestamp"], str)
        assert record["turn"] == sum(u["role"] == "user" for u in record["conversation"])
    ids = [u["turn_identifier"] for r in sample_records() for u in r["conversation"]]
    assert len(ids) == len(set(ids))


def test_wildchat_sample_validates_and_has_variety():
    convs = list(iter_wildchat("sample"))  # raises on any schema error
    clean = [c for c in convs if first_reason(c) is None]
    assert len(clean) >= 220
    turns = Counter(c.turn for c in clean)
    assert set(turns) == {1, 2, 3, 4, 5, 6}
    per_user = Counter(c.user_key for c in clean)
    assert len(per_user) >= 40 and sum(n >= 3 for n in per_user.values()) >= 15
    assert len({c.country for c in clean}) >= 10
    categories = Counter(t.metadata["category"] for t in read_tasks("sample"))
    assert categories["coding"] >= 60 and categories["writing"] >= 60
    firsts = [c.first_user_turn() for c in clean]
    assert sum(f == f.lower() for f in firsts) >= 50  # many users type in lower case
    assert any("Traceback" in t for c in clean for t in c.user_turns())


def test_wildbench_sample_validates_and_spans_the_tag_groups():
    tasks = load_wildbench("sample")
    assert len(tasks) >= 30
    for task in tasks:
        assert CHECKLIST_RANGE[0] <= len(task.checklist) <= CHECKLIST_RANGE[1]
        assert set(task.references) == {"gpt-4"} and task.references["gpt-4"]
        assert task.length == len(task.conversation_input) and task.intent
    assert sum(len(t.history) > 0 for t in tasks) >= 4
    records = [json.loads(line) for line in WB_PATH.read_text().splitlines()]
    assert all(set(r) == {"id", "session_id", "conversation_input", "references", "checklist",
                          "length", "primary_tag", "secondary_tags", "intent", "appropriate"}
               for r in records)
    from eval.wb_aggregate import GROUP_WEIGHTS, is_known_tag, tag_group  # evaluation's groups
    assert all(is_known_tag(t.primary_tag) for t in tasks)
    assert {tag_group(t.primary_tag) for t in tasks} == set(GROUP_WEIGHTS)


def test_committed_samples_match_the_generator():
    assert samplegen.main(["--check"]) == 0
