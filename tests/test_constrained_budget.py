"""Closing mode (engines/constrained.py): a constrained row finishes a complete, schema-valid JSON
document within its own max_tokens, even from a tiny random model (it has no idea of JSON and
almost never closes a free string on its own), and rows without a schema are untouched.

The tiny model's tokenizer spells JSON punctuation and keys one character per token, so each
budget here is the shortest document's length in characters plus the end-of-turn token plus a
few tokens: tight enough that every row must close early."""

from __future__ import annotations

import json

import pytest
import torch

from engines.base import Sampling
from tests.constrained_fixtures import engine, prompts  # noqa: F401 (fixtures)

torch.set_num_threads(1)

TWO_STRINGS = {"type": "object", "required": ["t", "r"],
               "properties": {"t": {"type": "string"},
                              "r": {"type": "string", "maxLength": 2000}}}
VERDICT = {"type": "object", "required": ["s", "n"],
           "properties": {"s": {"type": "string"},
                          "n": {"type": "integer", "minimum": 0, "maximum": 10}}}
MIXED = {"type": "object", "required": ["a", "n", "b"],
         "properties": {"a": {"type": "string", "minLength": 3},
                        "n": {"type": "integer"},
                        "b": {"type": "string"}}}
#: the shortest document of each schema, as the grammar writes it (", " and ": " separators)
SHORTEST = {"two_strings": '{"t": "", "r": ""}', "verdict": '{"s": "", "n": 0}',
            "mixed": '{"a": "aaa", "n": 0, "b": ""}'}
# Every property is required: closing mode's guarantee (optional properties and arrays can grow
# a document faster than it looks ahead; see engines/constrained.py).
SCHEMAS = {"two_strings": TWO_STRINGS, "verdict": VERDICT, "mixed": MIXED}


def valid(doc: object, schema: dict) -> bool:
    """Whether `doc` matches `schema` (the keywords used above; jsonschema is not installed)."""
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return (isinstance(doc, dict) and set(doc) <= set(props)
                and all(k in doc for k in schema.get("required", []))
                and all(valid(v, props[k]) for k, v in doc.items()))
    if kind == "string":
        return (isinstance(doc, str) and len(doc) >= schema.get("minLength", 0)
                and len(doc) <= schema.get("maxLength", len(doc)))
    if kind == "integer":
        return (type(doc) is int and doc >= schema.get("minimum", doc)
                and doc <= schema.get("maximum", doc))
    raise AssertionError(f"valid() does not know {schema}")


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_every_row_closes_a_valid_document_within_max_tokens(engine, prompts, name):
    schema, floor = SCHEMAS[name], len(SHORTEST[name]) + 1  # + the end-of-turn token
    rows = 0
    for extra in (0, 2, 5, 9):
        max_tokens = floor + extra
        for seed in range(4):
            outs = engine.generate(prompts, Sampling(temperature=1.0, max_tokens=max_tokens,
                                                     seed=seed, json_schema=schema))
            for out in outs:
                text = engine.tokenizer.decode(out.ids, skip_special_tokens=True)
                assert len(out.ids) <= max_tokens
                assert out.finish == "stop" and out.ids[-1] in engine.eos_token_ids, (max_tokens, text)
                assert valid(json.loads(text), schema), text
                rows += 1
    assert rows == 4 * 4 * len(prompts)


def test_greedy_rows_close_in_budget_and_repeat(engine, prompts):
    sampling = Sampling(temperature=0.0, max_tokens=len(SHORTEST["verdict"]) + 4, json_schema=VERDICT)
    first = engine.generate(prompts, sampling)
    again = engine.generate(prompts, sampling)
    assert [o.ids for o in first] == [o.ids for o in again]
    for out in first:
        assert valid(json.loads(engine.tokenizer.decode(out.ids, skip_special_tokens=True)), VERDICT)


def test_unconstrained_rows_are_untouched_by_closing_mode(engine, prompts):
    """Rows without a schema, batched with rows that close their documents, sample exactly what
    they sample in a batch with no schema at all."""
    sampling = Sampling(temperature=1.0, max_tokens=len(SHORTEST["two_strings"]) + 3, seed=5)
    schemas = [TWO_STRINGS if i % 2 == 0 else None for i in range(len(prompts))]
    mixed = engine.generate(prompts, sampling, json_schemas=schemas)
    free = engine.generate(prompts, sampling)
    for i, (m, f) in enumerate(zip(mixed, free)):
        if schemas[i] is None:
            assert m.ids == f.ids and m.finish == f.finish
            assert m.logprobs == pytest.approx(f.logprobs, abs=1e-5)
        else:
            text = engine.tokenizer.decode(m.ids, skip_special_tokens=True)
            assert m.finish == "stop" and valid(json.loads(text), TWO_STRINGS), text


def test_closing_mode_waits_for_the_end_of_the_budget(engine, prompts):
    """With room to spare the strings are not cut at once: closing mode starts near the end."""
    sampling = Sampling(temperature=1.0, max_tokens=60, seed=0, json_schema=TWO_STRINGS)
    outs = engine.generate(prompts, sampling)
    texts = [engine.tokenizer.decode(o.ids, skip_special_tokens=True) for o in outs]
    assert all(valid(json.loads(t), TWO_STRINGS) for t in texts), texts
    assert sum(len(o.ids) for o in outs) > len(outs) * 40, texts  # most rows use their budget
