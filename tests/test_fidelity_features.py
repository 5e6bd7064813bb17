"""Style features (typo rate, tagger, punctuation, capitalisation, sentiment, length bins, the
style vector) and the facet annotator (parsing, retries, failures counted, cached resume)."""

from __future__ import annotations

import json

import numpy as np

from corpora.types import Message
from eval import style
from eval.facets import FACETS, annotate, parse_annotation


def test_typo_rate_uses_the_bundled_word_list():
    assert len(style.word_list()) > 15_000
    assert style.typo_rate("the quick brown fox jumps over the lazy dog") == 0.0
    bad, judged = style.typo_count("plz fix thsi code, it is brokn")
    assert (bad, judged) == (3, 7)
    assert style.is_known("running") and style.is_known("worried") and style.is_known("buses")
    assert style.typo_candidates("NASA and C3PO ok") == ["and", "ok"]  # acronyms, digits skipped


def test_pos_tags_on_a_sentence():
    assert style.pos_tags("I can quickly write the report in 2 days") == \
        ["PRON", "AUX", "ADV", "VERB", "DET", "NOUN", "ADP", "NUM", "NOUN"]
    assert set(style.pos_tags("The beautiful organisation happily dances")) <= set(style.POS_TAGS)


def test_punctuation_capitalisation_sentiment_length():
    assert style.punctuation("Hi, what's up?!") == {",": 1, "?": 1, "!": 1}
    assert style.punctuation("no marks here") == {"none": 1}
    assert style.capitalisation("Hello WORLD foo iPhone") == {"capitalised": 1, "upper": 1,
                                                             "lower": 1, "mixed": 1}
    assert style.sentiment("thanks, this is great") == "positive"
    assert style.sentiment("this is wrong and broken") == "negative"
    assert style.sentiment("write a poem") == "neutral"
    assert style.length_bin("") == "0" and style.length_bin("one two three") == "1-5"
    assert style.length_bin("w " * 250) == ">200" and style.length_bin("w " * 20) == "11-20"
    assert set(style.LENGTH_CLASSES) >= {"0", "1-5", "101-200", ">200"}


def test_style_vector_and_standardise():
    v = style.style_vector("Could you please help?")
    assert v.shape == (len(style.STYLE_FEATURES),)
    named = dict(zip(style.STYLE_FEATURES, v))
    assert named["is_question"] == 1.0 and named["politeness"] > 0 and named["starts_capital"] == 1.0
    z = style.standardise(np.array([[1.0, 5.0], [3.0, 5.0]]))
    assert np.allclose(z, [[-1.0, 0.0], [1.0, 0.0]])


GOOD = json.dumps({"requests": "Underspecified single-shot request.",
                   "responses": "Accepts outputs silently.", "context": "No context given.",
                   "style": "Terse, informal, no punctuation.",
                   "damsl": ["action directive", "thanking"],
                   "sgd": [["INFORM_INTENT", "REQUEST", "BOGUS"], ["THANK"]]})


def test_parse_annotation_reads_and_normalises():
    a = parse_annotation("Here you go:\n```json\n" + GOOD + "\n```")
    assert a.requests == "Underspecified single-shot request."
    assert a.damsl == "action directive; thanking"
    assert a.sgd == "INFORM_INTENT,REQUEST | THANK"  # unknown label dropped
    assert parse_annotation("not json") is None
    assert parse_annotation(json.dumps({"requests": "x"})) is None


class ScriptedAnnotator:
    """Fails (prose) at temperature 0 for conversations mentioning 'flaky', and always for
    'broken'; otherwise answers GOOD."""

    def __init__(self):
        self.calls = 0

    def chat(self, conversations, sampling):
        self.calls += 1
        out = []
        for conv in conversations:
            text = conv[-1].content
            if "broken" in text or ("flaky" in text and sampling.temperature == 0):
                out.append("I cannot do that.")
            else:
                out.append(GOOD)
        return out


def _convs():
    return [(Message("user", f"{w} request {i}"), Message("assistant", "ok"))
            for i, w in enumerate(["fine", "flaky", "broken", "fine"])]


def test_annotate_retries_then_counts_failures():
    engine = ScriptedAnnotator()
    run = annotate(_convs(), engine, batch_size=3)
    assert run.failures == 1 and run.retried == 2
    assert run.annotations[2] is None and run.annotations[1] is not None
    assert engine.calls == 3  # batch 1 + its retry, batch 2


def test_facet_representation_is_cached_and_resumable(tmp_path):
    from engines.cache import CachedChatEngine
    from eval.representations import represent_facets

    class TinyEmbedder:
        def encode(self, texts, progress=False):
            return np.array([[len(t), t.count(" ") + 1.0] for t in texts]) / 100

    inner = ScriptedAnnotator()
    cached = CachedChatEngine(inner, tmp_path / "ann.jsonl", "facets-test")
    rep = represent_facets(_convs(), cached, TinyEmbedder(), batch_size=2)
    assert rep.n == 3 and rep.skipped["annotation_failed"] == 1
    assert set(rep.views) == set(FACETS) | {"combined"}
    assert rep.views["combined"].shape == (3, 12)
    calls = inner.calls
    again = represent_facets(_convs(), CachedChatEngine(inner, tmp_path / "ann.jsonl", "facets-test"),
                             TinyEmbedder(), batch_size=2)
    assert inner.calls == calls and again.n == 3  # every answer came from the cache
