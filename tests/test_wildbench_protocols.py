"""WildBench protocols (wildsim / official / paper) and the three parsing/ordering/checklist fixes,
on hand-computed values; two short end-to-end runs against a scripted loopback server."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter

import pytest

from engines.base import Sampling
from eval import wb_aggregate as agg
from eval import wb_protocol as wbp
from eval import wildbench
from eval.wb_judge import RewardTask, ScoreTask, TaskMeta, checklist_tasks
from eval.wb_official_prompts import PAIR_KEYS, official_pairwise_prompt, official_score_prompt
from eval.wb_prompts import JudgeContext, checklist_prompt
from eval.wb_summary import checklist_summary, reward_summary, score_summary
from eval.wb_verdicts import (normalise_label, parse_pair, parse_pair_strict, parse_score_strict)
from tests.eval_fixtures import ScriptedChatServer

OFFICIAL, PAPER, WILDSIM = (wbp.PROTOCOLS[n] for n in ("official", "paper", "wildsim"))


# --- bug: a placeholder echoed from the prompt is not a verdict ---------------------------------
@pytest.mark.parametrize("value", ["A++ | A+ | A=B | B+ | B++", "[A++ or A+ or A=B or B+ or B++]",
                                   "[A++ or A+ or …]", "A+ or B+", "not A+", "A++/B++"])
def test_placeholder_echoes_and_hedges_do_not_parse(value):
    assert normalise_label(value) is None
    verdict = parse_pair(json.dumps({"analysis of A": "[...]", "choice": value}))
    assert (verdict.label, verdict.how) == (None, "failed")


@pytest.mark.parametrize("value,label", [("A++", "A++"), ("a = b", "A=B"), ("[B+]", "B+"),
                                         ('"A+"', "A+"), ("B++ (much better)", "B++")])
def test_a_single_label_still_parses(value, label):
    assert normalise_label(value) == label


# --- bug: checklist mode leaves out tasks without a checklist and items without a verdict ------
def test_checklist_leaves_out_missing_checklists_and_unparsed_items():
    meta = [TaskMeta(f"s{i}", "Math", ("Math & Data Analysis",)) for i in range(3)]
    two = {"j": [True, None]}       # the test reply's second item failed to parse
    ref_two = {"j": [False, True]}  # the reference satisfies the second item
    tasks = checklist_tasks(meta, [2, 0, 1], [two, {"j": []}, {"j": [None]}],
                            [ref_two, {"j": []}, {"j": [True]}])
    # s0: only item 1 is compared (1 vs 0): the test wins; before, the unparsed item counted as
    # "not satisfied" and the task was a tie. s1 has no checklist, s2 no comparable item.
    assert [(t.status, t.outcome, t.left_out_items) for t in tasks] == [
        ("scored", 1.0, 1), ("no_checklist", None, 0), ("no_comparable_items", None, 1)]
    s = checklist_summary(tasks, Counter(), WILDSIM, 0.95, 50, 0)
    assert s["win_rate"]["n"] == 1 and s["win_rate"]["ties"] == 0      # no phantom ties
    assert (s["n_without_checklist"], s["n_no_comparable_items"], s["left_out_items"]) == (1, 1, 2)


def test_paper_checklist_two_of_three_and_incomplete():
    assert agg.item_two_of_three([True, True, False]) is True
    assert agg.item_two_of_three([True, False, False]) is False
    assert agg.item_two_of_three([True, True, None]) is None
    with pytest.raises(ValueError, match="exactly 3"):
        agg.item_two_of_three([True, True])
    meta = [TaskMeta("s", "Math", ("Math & Data Analysis",))]
    test = [{"a": [True, True], "b": [True, None], "c": [False, True]}]
    ref = [{"a": [False, False], "b": [False, False], "c": [False, False]}]
    [task] = checklist_tasks(meta, [2], test, ref, PAPER)
    assert (task.status, task.outcome, task.test_satisfied) == ("incomplete", None, 1)
    assert "clearly and sufficiently" in checklist_prompt(JudgeContext((), "q", ("x",)), "r", True)


# --- official aggregation ------------------------------------------------------------------------
def test_official_multi_tag_example_by_hand():
    """Coding+[Math] = 8, Creative+[Info] = 6, Info = 4. Rescaled 6, 2, -2. All tags: Coding 6,
    Math 6, Creative 2, Info (2 - 2)/2 = 0 → (1.25·6 + 1·6 + 0.5·2 + 0.75·0) / 4.75 × 10 = 30.53.
    Primary only, over the present weights: (1.25·6 + 0.5·2 + 0.75·(−2)) / 2.5 × 10 = 28.0."""
    tags = [("Coding & Debugging", ["Math"]), ("Creative Writing", ["Information seeking"]),
            ("Information seeking", [])]
    raw = [8, 6, 4]

    def tasks(all_tags):
        return [ScoreTask(f"s{i}", p, agg.task_groups(p, sec, all_tags), {"j": s},
                          agg.rescale_score(s)) for i, ((p, sec), s) in enumerate(zip(tags, raw))]

    official = score_summary(tasks(True), Counter(), OFFICIAL, 0.95, 50, 0)
    assert official["task_macro"] == pytest.approx(14.5 / 4.75 * 10)
    assert round(official["task_macro"], 1) == 30.5
    primary = score_summary(tasks(False), Counter(), dataclasses.replace(WILDSIM, score_scale=10.0),
                            0.95, 50, 0)
    assert primary["task_macro"] == pytest.approx(28.0)
    assert official["mean"]["mean"] == pytest.approx((6 + 2 - 2) / 3 * 10)


def test_official_reward_skips_keep_the_denominator_and_tags_count_twice():
    def task(sid, groups, rule, reward):
        return RewardTask(sid, "", groups, 1, 1, rule, reward)

    tasks = [task("a", ("Coding & Debugging", "Math & Data Analysis"), "judge", 1.0),
             task("b", ("Creative Tasks",), "judge", -0.5),
             task("c", ("Creative Tasks",), "skipped", None),     # empty or truncated: skipped
             task("d", ("Coding & Debugging",), "judge", None)]   # unparsed: dropped entirely
    s = reward_summary(tasks, OFFICIAL, 0.95, 50, 0)
    assert s["reward"] == pytest.approx((1.0 - 0.5) / 3 * 100)    # skipped stays in the total
    assert s["mean"]["mean"] == pytest.approx(s["reward"])
    # groups: Coding 100, Math 100, Creative -50 → (125 + 100 - 25) / 4.75
    assert s["task_macro"] == pytest.approx(200 / 4.75)
    assert s["outcomes"] == {"win_much": 1, "win": 0, "tie": 0, "lose": 1, "lose_much": 0}
    assert (s["n_skipped"], s["n_unscored"], s["wins_over_n"]) == (1, 1, 0.5)


def test_truncation_marker_skip_rule_and_length_rule():
    long = " ".join(["w"] * 1001)
    assert wbp.cut_pieces(long) == " ".join(["w"] * 1000) + wbp.TRUNCATION_MARKER
    assert wbp.cut_pieces("a  b", 2) == "a " + wbp.TRUNCATION_MARKER  # split on single spaces
    assert wbp.shown_response("  hi  ") == "hi" and wbp.shown_response(" ") == wbp.EMPTY_PLACEHOLDER
    assert wbp.is_skipped(wbp.shown_response(long)) and wbp.is_skipped(wbp.EMPTY_PLACEHOLDER)
    assert not wbp.is_skipped("fine")
    # K = 0 is active (the official tables test K >= 0); only a negative K disables the rule
    assert agg.length_penalised("A+", 11, 10, 0) == "A=B"
    assert agg.length_penalised("A+", 11, 10, -1) == "A+"
    assert agg.length_penalised("A+", 510, 10, 500) == "A+"        # strictly more than K


def test_official_prompts_and_strict_parsing():
    ctx = JudgeContext((), "q " * 1200, ("is it right?",))
    text = official_pairwise_prompt(ctx, "resp A", "resp B")
    assert all(f'"{k}"' in text for k in PAIR_KEYS)
    order = [text.index(s) for s in ("## History", "## Current user query", "## Response A",
                                     "## Response B", "## Checklist", "## Rules", "## Output")]
    assert order == sorted(order) and wbp.TRUNCATION_MARKER in text
    assert wbp.TRUNCATION_MARKER not in official_score_prompt(ctx, "r")   # score: nothing cut
    assert parse_pair_strict('{"choice": "B+"}').label == "B+"
    assert parse_pair_strict('```json\n{"choice": "B+"}\n```').label is None
    assert parse_pair_strict('{"choice": "B+ (slightly)"}').label is None
    assert parse_score_strict('{"score": "8"}').score == 8.0
    assert parse_score_strict('{"score": 11}').score == 11.0                # no range check
    assert parse_score_strict('{"score": "[1~10]"}').score is None


def test_official_mix_and_seeded_orders_and_retry_schedule():
    macros = {"gpt-4-turbo-2024-04-09": 30.0, "claude-3-haiku-20240307": 12.0}
    assert wbp.official_mix(macros) == pytest.approx(42.0 / 3)            # Llama missing: 0
    assert wbp.draw_test_first(20, 42) == wbp.draw_test_first(20, 42)
    assert wbp.draw_test_first(20, 42) != wbp.draw_test_first(20, 7)
    base = wbp.retry_sampling(Sampling(temperature=0.7, max_tokens=5), 0)
    assert base.temperature == 0.0
    later = wbp.retry_sampling(base, 3)
    assert (later.temperature, later.seed) == (0.3, 3)


def test_paper_pairwise_failure_in_either_order_drops_the_task():
    tasks = [RewardTask("a", "", ("Creative Tasks",), 1, 1, "dropped", None),
             RewardTask("b", "", ("Creative Tasks",), 1, 1, "judge", 0.5),
             RewardTask("c", "", ("Creative Tasks",), 1, 1, "judge", 0.0)]
    s = reward_summary(tasks, PAPER, 0.95, 50, 0)
    assert s["mean"]["mean"] == pytest.approx(25.0) and s["n_dropped"] == 1
    assert s["wins_over_n"] == 0.5 and s["win_rate"]["rate"] == 0.75


# --- end to end on a scripted loopback server ----------------------------------------------------
def _record(query, primary, secondary):
    turn = {"content": query, "language": "English", "redacted": False, "role": "user",
            "toxic": False}
    return {"id": query, "session_id": f"s-{query}", "conversation_input": [turn],
            "references": {}, "checklist": ["ok?"], "length": 1, "primary_tag": primary,
            "secondary_tags": secondary, "intent": "help", "appropriate": "yes"}


def _official_reply(body):
    text = body["messages"][-1]["content"]
    if body["model"] == "test-model":
        return "" if text == "e1" else f"TEST {text}"
    if body["model"] == "ref-model":
        return f"REF {text}"
    a = re.search(r"<\|begin_of_response_A\|>\n\n(.*?)\n\n<\|end", text, re.S).group(1)
    if "t3" in text:  # a fenced reply: the official strict parser drops it
        return '```json\n{"choice": "A++"}\n```'
    return json.dumps({k: "-" for k in PAIR_KEYS[:-1]} | {"choice": "A++" if a.startswith("TEST")
                                                          else "B++"})


def test_official_reward_run_end_to_end(tmp_path):
    records = [_record("t1", "Coding & Debugging", ["Math"]), _record("t2", "Planning", []),
               _record("t3", "Editing", []), _record("e1", "Planning", [])]
    data = tmp_path / "wb.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    with ScriptedChatServer(_official_reply) as srv:
        code = wildbench.main(["--model-a", srv.spec("test-model"), "--model-b",
                               srv.spec("ref-model"), "--judge", srv.spec("judge"), "--data",
                               str(data), "--out", str(tmp_path / "out"), "--protocol", "official"])
        assert code == 0 and srv.calls["judge"] == 3           # e1 (empty) is skipped unjudged
    result = json.loads((tmp_path / "out" / "wildbench.json").read_text())
    s = result["references"][srv.spec("ref-model")]["summary"]
    assert result["protocol"] == "official" and s["protocol"] == "official"
    # t1, t2 won much (+100 each); t3 dropped (fenced JSON); e1 skipped but in the denominator
    assert s["reward"] == pytest.approx(200 / 3) and (s["n_skipped"], s["n_unscored"]) == (1, 1)
    # groups: Coding 100, Math 100 (t1's secondary tag), Planning 100 → (1.25+1+1.25)·100/4.75
    assert s["task_macro"] == pytest.approx(350 / 4.75)
    sides = [t["calls"][0]["test_shown_as_a"] for t in
             result["references"][srv.spec("ref-model")]["tasks"] if t["calls"]]
    assert sides == [s for i, s in enumerate(wbp.draw_test_first(4, 42)) if i < 3]
    assert "protocol: `official`" in (tmp_path / "out" / "report.md").read_text()


def test_paper_retries_unparsed_replies_then_counts_them(tmp_path):
    """The judge answers garbage at temperature 0 and a verdict at 0.3: the paper protocol asks
    again (one retry per task), the wildsim protocol does not."""
    def reply(body):
        if body["model"] in ("test-model", "ref-model"):
            return f"{body['model']} answer"
        if body.get("temperature", 0) == 0:
            return "let me think"
        return json.dumps({"analysis_a": "-", "analysis_b": "-", "reasons": "-", "choice": "A=B"})

    data = tmp_path / "wb.jsonl"
    data.write_text(json.dumps(_record("t1", "Math", [])) + "\n")
    with ScriptedChatServer(reply) as srv:
        argv = ["--model-a", srv.spec("test-model"), "--model-b", srv.spec("ref-model"),
                "--judge", srv.spec("judge"), "--data", str(data), "--n-boot", "20"]
        assert wildbench.main([*argv, "--out", str(tmp_path / "w")]) == 0
        assert wildbench.main([*argv, "--out", str(tmp_path / "p"), "--protocol", "paper"]) == 0
        assert srv.calls["judge"] == 2 + 4                     # wildsim 2; paper 2 + 2 retries
    wild = json.loads((tmp_path / "w" / "wildbench.json").read_text())
    paper = json.loads((tmp_path / "p" / "wildbench.json").read_text())
    assert wild["references"][srv.spec("ref-model")]["summary"]["n_scored"] == 0
    ps = paper["references"][srv.spec("ref-model")]["summary"]
    assert (ps["n_scored"], ps["retried_calls"], ps["mean"]["mean"]) == (1, 2, 0.0)
    assert paper["judge_settings"]["max_tokens"] == 16384 and paper["protocol"] == "paper"


def test_stored_responses_from_a_file(tmp_path):
    from corpora.records import DataError
    from eval.wb_run import file_responses

    meta = [TaskMeta("s1", "Math", ()), TaskMeta("s2", "Math", ()), TaskMeta("s3", "Math", ())]
    path = tmp_path / "gpt-4-turbo-2024-04-09.json"
    path.write_text(json.dumps([{"session_id": "s1", "output": ["first"]},
                                {"session_id": "s2", "output": "second"}]))
    assert file_responses(f"file:{path}", meta) == (["first", "second", ""], 1)
    path.write_text('{"session_id": "s1"}\n')
    with pytest.raises(DataError, match="record 0"):
        file_responses(f"file:{path}", meta)


def _checklist_reply(body):
    """j1 and j2 answer every item; j3 never answers item 2 (its reply is always incomplete)."""
    text = body["messages"][-1]["content"]
    if body["model"] in ("test-model", "ref-model"):
        return f"{body['model']} says hi"
    items = [{"item": 1, "analysis": "-", "satisfied": True}]
    if body["model"] != "j3":
        items.append({"item": 2, "analysis": "-", "satisfied": "test-model" in text})
    return json.dumps({"items": items})


def test_paper_checklist_incomplete_stops_or_is_reported(tmp_path, capsys):
    record = _record("t1", "Math", [])
    record["checklist"] = ["one?", "two?"]
    data = tmp_path / "wb.jsonl"
    data.write_text(json.dumps(record) + "\n")
    with ScriptedChatServer(_checklist_reply) as srv:
        argv = ["--model-a", srv.spec("test-model"), "--model-b", srv.spec("ref-model"),
                "--data", str(data), "--mode", "checklist", "--protocol", "paper",
                "--judge-tries", "2", "--n-boot", "20",
                *[a for j in ("j1", "j2", "j3") for a in ("--judge", srv.spec(j))]]
        assert wildbench.main([*argv, "--out", str(tmp_path / "stop")]) == 3
        assert "incomplete" in capsys.readouterr().err
        assert srv.calls["j3"] == 4 and srv.calls["j1"] == 2  # j3 retried once per response
        assert wildbench.main([*argv, "--out", str(tmp_path / "rep"),
                               "--on-incomplete", "report"]) == 0
    result = json.loads((tmp_path / "rep" / "wildbench.json").read_text())
    s = result["references"][srv.spec("ref-model")]["summary"]
    assert (s["n_incomplete"], s["n_scored"], result["incomplete"]) == (1, 0, 1)
    assert "INCOMPLETE" in (tmp_path / "rep" / "report.md").read_text()
    with pytest.raises(SystemExit):
        wildbench.parse_args([*argv[:-6], "--judge", srv.spec("j1")])   # 2-of-3 needs 3 judges


def test_loopback_rule_judge_answers_both_prompt_families():
    from eval.wb_loopback import coverage, judge_reply, pair_label
    from eval.wb_prompts import pairwise_prompt, score_prompt

    ctx = JudgeContext((), "sort a list", ("Does it sort the list?", "Is Python used?"))
    # content words (4+ letters): does, sort, list, python, used; found: python, list
    assert coverage("python sorts the list", ctx.checklist) == pytest.approx(2 / 5)
    assert [pair_label(0.5, 0.0), pair_label(0.1, 0.0), pair_label(0.0, 0.01)] == ["A++", "A+", "A+"]
    reply = json.loads(judge_reply(official_pairwise_prompt(ctx, "hello", "sort the list in python")))
    assert reply["choice"] == "B++" and set(reply) == set(PAIR_KEYS)
    assert parse_pair(judge_reply(pairwise_prompt(ctx, "sort the list in python", "hi"))).label == "A++"
    # 3 of 5 words: round(1 + 9 · 0.6) = 6, sent as a string under the official keys
    assert parse_score_strict(judge_reply(official_score_prompt(ctx, "sort list python"))).score == 6
    assert json.loads(judge_reply(score_prompt(ctx, "nothing")))["score"] == 1
