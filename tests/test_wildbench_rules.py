"""WildBench scoring rules, prompts and verdict parsing, on hand-computed values."""

from __future__ import annotations

import pytest

from corpora.types import Message
from eval import wb_aggregate as agg
from eval.wb_prompts import JudgeContext, checklist_prompt, first_words, pairwise_prompt, score_prompt
from eval.wb_verdicts import normalise_label, parse_checklist, parse_pair, parse_score


def test_labels_map_to_rewards_in_both_orders():
    # test model shown as A: the label's own reward
    assert agg.reward_for_test("A++", True, 10, 10, 500) == 1.0
    assert agg.reward_for_test("B+", True, 10, 10, 500) == -0.5
    # swapped: the reference is shown as A, so "A++" means the reference was much better
    assert agg.reward_for_test("A++", False, 10, 10, 500) == -1.0
    assert agg.reward_for_test("B++", False, 10, 10, 500) == 1.0
    assert agg.reward_for_test("B+", False, 10, 10, 500) == 0.5
    assert agg.reward_for_test("A=B", False, 10, 10, 500) == 0.0


def test_length_penalty_turns_long_slight_wins_into_ties():
    # the slight winner is > K characters longer than the loser: tie
    assert agg.length_penalised("A+", 700, 100, 500) == "A=B"
    assert agg.length_penalised("B+", 100, 601, 500) == "A=B"
    # exactly K longer is not *more* than K
    assert agg.length_penalised("A+", 600, 100, 500) == "A+"
    # the loser being longer does not matter; clear wins are never changed
    assert agg.length_penalised("A+", 100, 900, 500) == "A+"
    assert agg.length_penalised("A++", 900, 100, 500) == "A++"
    # K = -1 disables the rule
    assert agg.length_penalised("A+", 9000, 1, -1) == "A+"
    # in the swapped order the test model (shown as B, 1000 chars) wins slightly over a 100-char
    # reference: the penalty applies to B, so the test model's reward is 0, not +0.5
    assert agg.reward_for_test("B+", False, 100, 1000, 500) == 0.0
    assert agg.reward_for_test("B+", False, 100, 1000, -1) == 0.5


def test_empty_rule():
    assert agg.empty_rule("", "an answer") == -1.0
    assert agg.empty_rule("an answer", "  \n") == 1.0
    assert agg.empty_rule(" ", "") == 0.0
    assert agg.empty_rule("x", "y") is None


def test_tag_groups_and_task_macro_by_hand():
    assert agg.tag_group("Coding & Debugging") == "Coding & Debugging"
    assert agg.tag_group("role playing") == "Creative Tasks"
    assert agg.tag_group("Advice seeking") == "Information/Advice seeking"
    assert agg.tag_group("Data Analysis") == "Math & Data Analysis"
    assert agg.tag_group("Something new") == "Creative Tasks"
    values = [("Creative Tasks", 1.0), ("Creative Tasks", 0.0), ("Coding & Debugging", -1.0),
              ("Math & Data Analysis", 0.5), ("Math & Data Analysis", 0.5)]
    means = agg.group_means(values)
    assert [(m.group, m.n, m.mean) for m in means] == [
        ("Creative Tasks", 2, 0.5), ("Math & Data Analysis", 2, 0.5), ("Coding & Debugging", 1, -1.0)]
    # (0.5*0.5 + 1.0*0.5 + 1.25*(-1)) / (0.5 + 1.0 + 1.25) = -0.5 / 2.75
    assert agg.task_macro(means) == pytest.approx(-0.5 / 2.75)
    assert agg.task_macro([]) is None
    counts = agg.tag_group_counts(["Math", "Others", "Nonsense", None])
    assert counts["Math & Data Analysis"] == 1 and counts["Creative Tasks"] == 3
    assert counts["unknown tag"] == 2


def test_checklist_majority_and_ties():
    assert agg.item_majority([True, True, False]) is True
    assert agg.item_majority([True, False, False]) is False
    assert agg.item_majority([True, False]) is False        # even split: not satisfied
    assert agg.item_majority([True, None]) is True          # only the judges that answered vote
    assert agg.item_majority([None, None]) is None
    test = [[True, True, False, None], [True, False, False, None], [False, True, True, None]]
    ref = [[False, None, False, True], [False, None, False, True], [False, None, True, True]]
    # item 2 has no verdict for the reference and item 4 none for the test response: both are
    # left out of BOTH counts (before, they counted as "not satisfied" for the side that failed)
    assert agg.compare_items(test, ref) == (1, 0, 2)


def test_rescale_score():
    assert [agg.rescale_score(s) for s in (1, 5, 7.5, 10)] == [-8.0, 0.0, 5.0, 10.0]


def test_first_words_keeps_formatting():
    text = "one two\n\nthree   four five"
    assert first_words(text, 3) == "one two\n\nthree"
    assert first_words(text, 10) == text
    assert first_words("a " * 1500).count("a") == 1000


def test_prompts_show_history_query_responses_and_checklist():
    ctx = JudgeContext(history=(Message("user", "hi"), Message("assistant", "hello")),
                       query="write a haiku", checklist=("Is it 5-7-5?", "About autumn?"))
    text = pairwise_prompt(ctx, "resp one", "resp two")
    for piece in ("USER: hi", "ASSISTANT: hello", "write a haiku", "=== BEGIN RESPONSE A ===",
                  "resp one", "=== END RESPONSE B ===", "1. Is it 5-7-5?", '"choice"'):
        assert piece in text
    assert text.index("resp one") < text.index("resp two")
    assert "exactly 2 entries" in checklist_prompt(ctx, "r")
    assert '"score"' in score_prompt(ctx, "r")
    assert "no earlier turns" in score_prompt(JudgeContext((), "q"), "r")


def test_parse_pair_json_fallback_and_failure():
    v = parse_pair('```json\n{"analysis_a": "ok", "choice": "B++"}\n```')
    assert (v.label, v.how) == ("B++", "json")
    v = parse_pair('{"analysis_a": "x", "choice": "A+"}')
    assert (v.label, v.how) == ("A+", "json")
    v = parse_pair('analysis... "choice": "A = B"  and then the reply was cut')
    assert (v.label, v.how) == ("A=B", "fallback")
    v = parse_pair("I think both are fine.")
    assert (v.label, v.how) == (None, "failed")
    assert normalise_label("a++") == "A++" and normalise_label("B+ (slightly better)") == "B+"
    assert normalise_label("C") is None and normalise_label(3) is None


def test_parse_checklist_and_score():
    v = parse_checklist('{"items": [{"item": 1, "satisfied": true}, {"item": 3, "satisfied": "no"}]}', 3)
    assert v.items == (True, None, False) and v.how == "json" and v.missing == 1
    assert parse_checklist('{"items": [true, false]}', 2).items == (True, False)
    v = parse_checklist('{"items": [{"item": 1, "analysis": "good", "satisfied": true}, {"item": 2, '
                        '"analysis": "cut off', 2)
    assert v.items[0] is True
    assert parse_checklist("no idea", 2) == parse_checklist("", 2)
    assert parse_checklist("no idea", 2).how == "failed"
    v = parse_score('{"strengths": "a", "score": 8}')
    assert (v.score, v.how) == (8.0, "json")
    v = parse_score("Strengths: ... Score: 7/10")
    assert (v.score, v.how) == (7.0, "fallback")
    assert parse_score('{"score": 11}').score is None
    assert parse_score("nothing").how == "failed"
