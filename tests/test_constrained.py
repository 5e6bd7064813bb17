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
from engines.hf import HFEngine, load_hf

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


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    model, tokenizer = load_hf(str(tiny_model_dir), dtype="float32", device="cpu")
    return HFEngine(model, tokenizer, batch_size=8)


@pytest.fixture(scope="module")
def prompts(engine):
    texts = ["hello world please", "a", "write code python function error fix", "json",
             "tell me a story", "b c d"]
    return [engine.tokenizer.encode(t) for t in texts]


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
