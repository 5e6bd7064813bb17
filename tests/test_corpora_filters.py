"""Each filter on hand-made records, and the 7-gram rule on a hand-built corpus."""

import random
from datetime import datetime, timezone

from corpora import filters
from corpora.samplegen import Turn, User, build_record
from corpora.wildchat import parse_conversation

USER = User("cd" * 32, "India", None, {"accept-language": "en-IN", "user-agent": "x"}, "terse", 0.5)


def conv(*turns: Turn, **overrides):
    data = build_record(random.Random(1), USER, list(turns),
                        datetime(2023, 6, 1, tzinfo=timezone.utc), [0])
    data.update(overrides)
    return parse_conversation(data, "test")


def u(text, **kw):
    return Turn("user", text, **kw)


def a(text, **kw):
    return Turn("assistant", text, **kw)


def test_clean_conversation_passes_every_filter():
    c = conv(u("fix my code"), a("Sure."), u("thx"), a("Welcome!"))
    assert filters.first_reason(c) is None


def test_non_english():
    assert filters.non_english(conv(u("hola"), a("hola"), language="Spanish")) == filters.NON_ENGLISH
    assert filters.non_english(conv(u("hi"), a("hello"))) is None


def test_toxic_record_or_utterance():
    assert filters.toxic(conv(u("rude words", toxic=True), a("ok"))) == filters.TOXIC
    assert filters.toxic(conv(u("hi"), a("ok"), toxic=True)) == filters.TOXIC
    assert filters.toxic(conv(u("hi"), a("ok"))) is None


def test_empty_turn_user_or_assistant():
    assert filters.empty_turn(conv(u("hi"), a("ok"), u("  \n"), a("?"))) == filters.EMPTY_TURN
    assert filters.empty_turn(conv(u("hi"), a(""))) == filters.EMPTY_TURN
    assert filters.empty_turn(conv(u("hi"), a("ok"))) is None


def test_roles_must_alternate_starting_with_user():
    assert filters.roles_not_alternating(conv(u("a"), u("b"), a("c"))) == filters.ROLES_NOT_ALTERNATING
    assert filters.roles_not_alternating(conv(a("hello"), u("hi"), a("x"))) == filters.ROLES_NOT_ALTERNATING
    assert filters.roles_not_alternating(conv(u("a"), a("b"), a("c"))) == filters.ROLES_NOT_ALTERNATING
    assert filters.roles_not_alternating(conv()) == filters.ROLES_NOT_ALTERNATING
    assert filters.roles_not_alternating(conv(u("a"), a("b"), u("c"))) is None  # unanswered last turn


def test_first_reason_follows_filter_order():
    c = conv(u("", toxic=True), a("x"), language="German")
    assert filters.first_reason(c) == filters.NON_ENGLISH


def test_ngram_keys_count_distinct_lowercased_word_windows():
    assert filters.ngram_keys("one two three four five six") == set()  # 6 tokens: no 7-gram
    assert len(filters.ngram_keys("one two three four five six seven eight")) == 2
    # punctuation and case don't matter; a repeated phrase inside one turn counts once
    assert filters.ngram_keys("One, two three four five six SEVEN!") == \
        filters.ngram_keys("one two three four five six seven")
    assert len(filters.ngram_keys("a b c d e f g a b c d e f g")) == 7


def test_seven_gram_rule_on_a_hand_built_corpus():
    template = "please act as a prompt writer for an image model and describe "
    turns = [template + topic for topic in ("a cat", "a dog", "a ship")]  # the 7-grams occur 3x
    turns += ["how do i sort a list in python by the second item",
              "how do i sort a list in python by length",  # shares 7-grams twice only
              "short one", None]
    assert filters.frequent_ngrams(turns, max_repeats=3) == set()  # > 3 needed, 3 is not enough
    frequent = filters.frequent_ngrams(turns, max_repeats=2)
    # only the shared template 7-grams (up to "… describe a") recur more than 2 times
    assert frequent == filters.ngram_keys(template + "a")
    templated = conv(u(template + "a horse"), a("ok"))
    assert filters.templated_first_turn(templated, frequent) == filters.TEMPLATED_FIRST_TURN
    sort_turn = conv(u("how do i sort a list in python by the second item"), a("ok"))
    assert filters.templated_first_turn(sort_turn, frequent) is None
    assert filters.templated_first_turn(templated, set()) is None


def test_repeats_inside_one_turn_do_not_count_as_recurrence():
    turn = "the same seven words are here now " * 5
    assert filters.frequent_ngrams([turn], max_repeats=1) == set()
    assert filters.frequent_ngrams([turn, turn], max_repeats=1) == filters.ngram_keys(turn)
