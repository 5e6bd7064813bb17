"""Structured output on local engines (engines/constrained.py through HFEngine): a tiny random
model, the hardest case since it has no idea of JSON, always produces documents that parse and
match the schema, and rows without a schema in the same batch are decoded as if alone."""

from __future__ import annotations

import json
import re

import pytest
import torch

from corpora.types import Message
from engines.base import Sampling
from tests.constrained_fixtures import engine, prompts  # noqa: F401 (fixtures)

torch.set_num_threads(1)

# Every string is bounded (a pattern): a random model almost never samples the closing quote of a
# free string, so a free string would run into max_tokens; bounded ones must close in time.
SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
        "ok": {"type": "boolean"},
        "kind": {"enum": ["ask", "end", "clarify"]},
        "note": {"type": "string", "pattern": "^[a-z ]{0,12}$"},
        "tags": {"type": "array", "items": {"enum": ["x", "y"]}, "maxItems": 3},
    },
    "required": ["score", "ok", "kind", "note", "tags"],
}


def matches(doc: object) -> bool:
    """Whether `doc` matches SCHEMA (written out by hand: no validator library is installed)."""
    return (isinstance(doc, dict) and list(doc) == list(SCHEMA["properties"])
            and type(doc["score"]) is int and 0 <= doc["score"] <= 10
            and type(doc["ok"]) is bool and doc["kind"] in ("ask", "end", "clarify")
            and isinstance(doc["note"], str) and re.fullmatch("[a-z ]{0,12}", doc["note"]) is not None
            and isinstance(doc["tags"], list) and len(doc["tags"]) <= 3
            and all(t in ("x", "y") for t in doc["tags"]))


def test_random_model_always_produces_schema_valid_json(engine, prompts):
    outputs = []
    for seed in range(8):
        sampling = Sampling(temperature=1.0, max_tokens=120, seed=seed, json_schema=SCHEMA)
        outputs += engine.generate(prompts, sampling)
    greedy = Sampling(temperature=0.0, max_tokens=120, json_schema=SCHEMA)
    outputs += engine.generate(prompts, greedy)
    for out in outputs:
        text = engine.tokenizer.decode(out.ids, skip_special_tokens=True)
        assert out.finish == "stop" and out.ids[-1] in engine.eos_token_ids, text
        assert matches(json.loads(text)), text
        assert all(lp <= 0 for lp in out.logprobs)
    assert len({engine.tokenizer.decode(o.ids) for o in outputs}) > len(outputs) // 2  # it samples


def test_unconstrained_rows_in_a_mixed_batch_are_unaffected(engine, prompts):
    sampling = Sampling(temperature=1.0, max_tokens=100, seed=3)
    schemas = [SCHEMA if i % 2 == 0 else None for i in range(len(prompts))]
    mixed = engine.generate(prompts, sampling, json_schemas=schemas)
    free = engine.generate(prompts, sampling)
    for i, (m, f) in enumerate(zip(mixed, free)):
        text = engine.tokenizer.decode(m.ids, skip_special_tokens=True)
        if schemas[i] is None:
            assert m.ids == f.ids and m.finish == f.finish
            assert m.logprobs == pytest.approx(f.logprobs, abs=1e-5)
        else:
            assert matches(json.loads(text)), text


def test_chat_honours_sampling_json_schema(engine):
    convs = [[Message("user", "rate this")], [Message("user", "another one please")]]
    replies = engine.chat(convs, Sampling(temperature=0.7, max_tokens=120, seed=0,
                                          json_schema=SCHEMA))
    assert all(matches(json.loads(r)) for r in replies), replies


def test_bad_schema_and_schema_count_fail_clearly(engine, prompts):
    with pytest.raises(ValueError, match="json_schemas has 1 entries for 6 prompts"):
        engine.generate(prompts, Sampling(max_tokens=4), json_schemas=[SCHEMA])
    with pytest.raises(ValueError, match="cannot compile json_schema"):
        engine.generate(prompts[:1], Sampling(max_tokens=4, json_schema={"type": "nonsense"}))


def test_fit_schema_shares_the_budget_in_proportion_to_the_caps():
    from engines.constrained import fit_schema

    schema = {"type": "object", "required": ["thought", "response"],
              "properties": {"thought": {"type": "string", "maxLength": 300},
                             "response": {"type": "string", "maxLength": 2000}}}
    fitted = fit_schema(schema, 48, chars_per_token=3)   # budget (48 - 2 - 4*2) * 3 = 114 chars
    assert fitted["properties"]["thought"]["maxLength"] == 114 * 300 // 2300 == 14
    assert fitted["properties"]["response"]["maxLength"] == 114 * 2000 // 2300 == 99
    default = fit_schema(schema, 48)   # 2 characters per token: (48 - 10) * 2 = 76
    assert [default["properties"][k]["maxLength"] for k in ("thought", "response")] == [9, 66]
    assert fitted["required"] == ["thought", "response"]
    assert schema["properties"]["thought"]["maxLength"] == 300  # the input is not changed
    assert fit_schema(schema, 1200) == schema                    # (1200 - 10) * 2 >= 2300


def test_fit_schema_counts_non_string_fields_and_caps_uncapped_strings():
    from engines.constrained import fit_schema

    verdict = {"type": "object", "properties": {"rationale": {"type": "string"},
                                                "score": {"type": "integer", "minimum": 0}}}
    fitted = fit_schema(verdict, 40)  # overhead 2 + 4*2 + 4*1 = 14 -> (40 - 14) * 2 = 52 chars
    assert fitted["properties"]["rationale"]["maxLength"] == 52
    assert fitted["properties"]["score"] == {"type": "integer", "minimum": 0}
    assert fit_schema({"type": "object", "properties": {"n": {"type": "integer"}}}, 5) == \
        {"type": "object", "properties": {"n": {"type": "integer"}}}


def test_a_fitted_schema_caps_what_the_engine_writes(engine):
    """The fitted caps are enforced by the grammar: every string closes at its cap and the row ends
    with a complete document. (Whether 3 characters per token holds is a property of the real
    tokenizers: the demo's json_fallbacks figure measures it on the builtin model; the tiny test
    tokenizer spends several tokens on one character.)"""
    from engines.constrained import fit_schema

    schema = fit_schema({"type": "object", "required": ["thought", "response"],
                         "properties": {"thought": {"type": "string", "maxLength": 300},
                                        "response": {"type": "string", "maxLength": 2000}}}, 24)
    caps = {k: v["maxLength"] for k, v in schema["properties"].items()}
    assert caps == {"thought": 3, "response": 24}
    outs = engine.generate([engine.tokenizer.encode("hello there")] * 4,
                           Sampling(temperature=1.0, max_tokens=200, seed=5, json_schema=schema))
    for out in outs:
        assert out.finish == "stop"
        # strict=False: the tiny model samples raw control characters, which the grammar allows
        doc = json.loads(engine.tokenizer.decode(out.ids, skip_special_tokens=True), strict=False)
        assert all(len(doc[k]) <= cap for k, cap in caps.items())
