"""The facet annotator's tolerant-but-honest parsing and its reply budget: near-JSON that says
what was asked is read; replies without a description in every facet stay failures; a request
(and so its cache key) does not depend on how conversations were batched."""

from __future__ import annotations

import json

from corpora.types import Message
from eval.facets import (REPLY_BASE_TOKENS, REPLY_TOKENS_PER_USER_MESSAGE, annotate,
                         diagnose_annotation, parse_annotation, reply_budget)

FIELDS = {"requests": "Asks for one thing, fully specified.", "responses": "Accepts silently.",
          "context": "Gives the data up front.", "style": "Formal and polite.",
          "damsl": ["information request", "thanking"], "sgd": [["REQUEST"], ["THANK"]]}


def _reply(**changes) -> str:
    return json.dumps({**FIELDS, **changes})


def test_near_json_that_answers_the_question_is_read():
    a = parse_annotation(_reply(requests=["Asks for one thing.", "Then refines it."]))
    assert a.requests == "Asks for one thing. Then refines it."
    assert parse_annotation(_reply(sgd="REQUEST, INFORM | thank")).sgd == "INFORM,REQUEST | THANK"
    assert parse_annotation(_reply(sgd=["REQUEST", "THANK"])).sgd == "REQUEST | THANK"
    assert parse_annotation(_reply(damsl="statement")).damsl == "statement"
    upper = {k.capitalize(): v for k, v in FIELDS.items()}
    assert parse_annotation(json.dumps(upper)).style == "Formal and polite."
    single_quotes = "{" + ", ".join(f"'{k}': {v!r}" for k, v in FIELDS.items()) + ",}"
    assert parse_annotation("Sure!\n" + single_quotes).damsl == "information request; thanking"


def test_replies_without_a_description_stay_failures():
    assert parse_annotation(_reply(context="...")) is None
    assert parse_annotation(_reply(style="<tone, length, politeness>")) is None
    assert parse_annotation(_reply(requests="   ")) is None
    assert parse_annotation(_reply(requests={"responses": {"damsl": "plain text"}})) is None
    assert parse_annotation(_reply(damsl=[1, 2])) is None
    assert parse_annotation(_reply(sgd=[])) is None
    missing = dict(FIELDS)
    del missing["responses"]
    assert parse_annotation(json.dumps(missing)) is None
    assert parse_annotation('{"users": [{"id": 123, "name": "Mike"}]}') is None
    # an object cut off by the token limit is not completed
    assert parse_annotation(_reply()[:-20]) is None


def _conv(n_user: int) -> tuple[Message, ...]:
    turns = []
    for i in range(n_user):
        turns += [Message("user", f"question {i}"), Message("assistant", "answer")]
    return tuple(turns)


def test_reply_budget_grows_with_user_messages_up_to_the_cap():
    assert reply_budget(_conv(1), 1200) == REPLY_BASE_TOKENS + REPLY_TOKENS_PER_USER_MESSAGE
    assert reply_budget(_conv(5), 1200) == REPLY_BASE_TOKENS + 5 * REPLY_TOKENS_PER_USER_MESSAGE
    assert reply_budget(_conv(100), 1200) == 1200


class RecordingAnnotator:
    """Answers every conversation well and records (conversation, max_tokens) of each request."""

    def __init__(self):
        self.requests = []

    def chat(self, conversations, sampling):
        self.requests += [(c[-1].content, sampling.max_tokens) for c in conversations]
        return [_reply() for _ in conversations]


def test_requests_do_not_depend_on_batching():
    convs = [_conv(n) for n in (3, 1, 2, 1, 3, 2, 1)]
    runs = []
    for batch in (1, 3, 16):
        engine = RecordingAnnotator()
        run = annotate(convs, engine, batch_size=batch)
        assert run.failures == 0 and all(a is not None for a in run.annotations)
        runs.append(sorted(engine.requests))
    assert runs[0] == runs[1] == runs[2]
    budgets = {n: reply_budget(_conv(n), 1200) for n in (1, 2, 3)}
    assert sorted(b for _, b in runs[0]) == sorted(budgets[n] for n in (3, 1, 2, 1, 3, 2, 1))


def test_a_failure_says_why():
    assert diagnose_annotation("I cannot help with that.") == (None, "no JSON object")
    missing = {k: v for k, v in FIELDS.items() if k not in ("sgd", "context")}
    assert diagnose_annotation(json.dumps(missing)) == (None, "missing: context, sgd")
    assert diagnose_annotation(_reply(style="...", damsl=[1, 2])) == (None, "unusable: style, damsl")
    assert diagnose_annotation(json.dumps({**missing, "style": ""})) == (None, "missing: context, sgd")
    annotation, why = diagnose_annotation(_reply())
    assert why is None and annotation.sgd == "REQUEST | THANK"


class FlakyAnnotator:
    """Answers conversation i with scripted replies: `script[i]` is (first reply, retry reply)."""

    def __init__(self, script):
        self.script, self.calls = script, {}

    def chat(self, conversations, sampling):
        out = []
        for c in conversations:
            i = int(c[-1].content.split("question ")[1].split()[0])
            n = self.calls[i] = self.calls.get(i, 0) + 1
            out.append(self.script[i][n - 1])
        return out


def test_annotate_counts_retries_and_failure_reasons():
    convs = [(Message("user", f"question {i}"), Message("assistant", "answer")) for i in range(5)]
    good, prose = _reply(), "Here is my analysis of the user."
    no_sgd = json.dumps({k: v for k, v in FIELDS.items() if k != "sgd"})
    script = {0: (good,), 1: (prose, good), 2: (prose, prose), 3: (good,), 4: (no_sgd, no_sgd)}
    engine = FlakyAnnotator(script)
    run = annotate(convs, engine, batch_size=2)
    assert [a is not None for a in run.annotations] == [True, True, False, True, False]
    assert engine.calls == {0: 1, 1: 2, 2: 2, 3: 1, 4: 2}
    assert (run.failures, run.retried) == (2, 3)
    assert run.reasons == {"no JSON object": 1, "missing: sgd": 1}
    assert run.summary() == {"annotated": 3, "failed": 2, "retried": 3,
                             "failure_reasons": {"missing: sgd": 1, "no JSON object": 1}}
