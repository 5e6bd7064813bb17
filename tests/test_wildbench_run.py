"""`wildsim eval wildbench` end to end against a scripted OpenAI-compatible server on loopback:
both models and every judge are served by it, so verdicts, swaps, the K rule, empty responses,
macro weights and the judge cache are checked on hand-computed values."""

from __future__ import annotations

import json
import re

import pytest

from eval import wildbench
from tests.eval_fixtures import ScriptedChatServer

TAGS = {"q1": "Coding & Debugging", "q2": "Math", "q3": "Creative Writing", "q4": "Planning",
        "q5": "Information seeking"}
TEST_ANSWERS = {"q1": "TEST answer one", "q2": "TEST answer two", "q3": "TEST " + "x" * 700,
                "q4": "", "q5": "TEST answer five"}


def _record(query: str, checklist: list[str]) -> dict:
    turn = {"content": query, "language": "English", "redacted": False, "role": "user",
            "toxic": False}
    history = [dict(turn, content="earlier question"), dict(turn, role="assistant", content="earlier answer")]
    return {"id": query, "session_id": f"s-{query}", "conversation_input": [*history, turn],
            "references": {"gpt-4": "ref"}, "checklist": checklist, "length": 3,
            "primary_tag": TAGS.get(query, "Math"), "secondary_tags": [], "intent": "help",
            "appropriate": "yes"}


def _block(text: str, name: str) -> str:
    return re.search(rf"=== BEGIN {name} ===\n(.*?)\n=== END {name} ===", text, re.S).group(1)


def _pair_label(query: str, a_is_test: bool) -> str:
    """The scripted judge: q1 test much better; q2 always 'A+' (pure position bias); q3 test
    slightly better (and 700+ chars longer); q5 unparseable when the test is shown first, else
    the reference (shown as A) is much better."""
    if query == "q1":
        return "A++" if a_is_test else "B++"
    if query == "q2":
        return "A+"
    if query == "q3":
        return "A+" if a_is_test else "B+"
    if query == "q5":
        return "garbage" if a_is_test else "A++"
    if query.startswith("p"):  # pure position bias, whatever the order
        return "A+"
    raise AssertionError(f"the judge was called for {query}")


def _reply(body: dict) -> str:
    text = body["messages"][-1]["content"]
    if body["model"] == "test-model":
        return TEST_ANSWERS.get(text, f"TEST answer to {text}")
    if body["model"] == "ref-model":
        return f"REF answer to {text}"
    query = _block(text, "QUERY")
    if "=== BEGIN RESPONSE A ===" in text:
        label = _pair_label(query, _block(text, "RESPONSE A").startswith("TEST"))
        return "I cannot decide." if label == "garbage" else json.dumps(
            {"analysis_a": "...", "analysis_b": "...", "reasons": "...", "choice": label})
    response = _block(text, "RESPONSE")
    if '"items"' in text:  # checklist: judges j1..j3 vote per item (see test_checklist_mode)
        judge = "j1" if body["model"] == "judge" else body["model"]
        votes = CHECKLIST_VOTES[(judge, query, response.startswith("TEST"))]
        return json.dumps({"items": [{"item": i + 1, "analysis": "-", "satisfied": v}
                                     for i, v in enumerate(votes)]})
    return json.dumps({"strengths": "-", "weaknesses": "-",
                       "score": 8 if response.startswith("TEST") else 4})


CHECKLIST_VOTES = {
    # c1: test majority [T, T, F] = 2 satisfied; reference majority [T, F, F] = 1 -> test wins
    ("j1", "c1", True): [True, True, False], ("j2", "c1", True): [True, False, False],
    ("j3", "c1", True): [True, True, True],
    ("j1", "c1", False): [True, False, False], ("j2", "c1", False): [False, False, False],
    ("j3", "c1", False): [True, False, True],
    # c2: test majority [T, F, F], reference majority [F, T, F]: 1 each -> tie
    ("j1", "c2", True): [True, False, False], ("j2", "c2", True): [True, False, False],
    ("j3", "c2", True): [False, False, False],
    ("j1", "c2", False): [False, True, False], ("j2", "c2", False): [False, True, True],
    ("j3", "c2", False): [False, False, False],
}


@pytest.fixture()
def server():
    with ScriptedChatServer(_reply) as srv:
        yield srv


def _data(tmp_path, queries, checklist=("Is it right?",)):
    path = tmp_path / "wb.jsonl"
    path.write_text("".join(json.dumps(_record(q, list(checklist))) + "\n" for q in queries))
    return str(path)


def _run(server, data, out, *extra):
    argv = ["--model-a", server.spec("test-model"), "--model-b", server.spec("ref-model"),
            "--judge", server.spec("judge"), "--data", data, "--out", str(out), *extra]
    assert wildbench.main(argv) == 0
    return json.loads((out / "wildbench.json").read_text())


def test_reward_mode_hand_computed(server, tmp_path):
    result = _run(server, _data(tmp_path, TAGS), tmp_path / "out", "--mode", "reward")
    ref = result["references"][server.spec("ref-model")]
    rewards = {t["session_id"]: t["reward"] for t in ref["tasks"]}
    # q1 +1 both orders; q2 +0.5 and -0.5 (position bias cancels); q3 slight wins of a 700-char
    # longer answer become ties; q4 empty test response loses; q5 only the swapped verdict parses
    assert rewards == {"s-q1": 1.0, "s-q2": 0.0, "s-q3": 0.0, "s-q4": -1.0, "s-q5": -1.0}
    s = ref["summary"]
    assert s["mean"]["mean"] == pytest.approx(-0.2)
    # (1.25*1 + 1.0*0 + 0.5*0 + 1.25*(-1) + 0.75*(-1)) / (1.25 + 1 + 0.5 + 1.25 + 0.75)
    assert s["task_macro"] == pytest.approx(-0.75 / 4.75)
    assert result["mix"]["task_macro"] == pytest.approx(-0.75 / 4.75)
    assert (s["win_rate"]["wins"], s["win_rate"]["ties"], s["win_rate"]["losses"]) == (1, 2, 2)
    assert s["parse"] == {"json": 7, "failed": 1}
    assert s["length_penalised"] == 2 and s["n_empty_rule"] == 1
    q4 = next(t for t in ref["tasks"] if t["session_id"] == "s-q4")
    assert q4["rule"] == "empty" and q4["calls"] == []
    assert server.calls["judge"] == 8  # 4 judged tasks x 2 orders; the empty one never asked
    report = (tmp_path / "out" / "report.md").read_text()
    assert "WB-Reward" in report and (tmp_path / "out" / "wildbench.png").stat().st_size > 0
    assert result["command"].startswith("wildsim eval wildbench")


def test_length_penalty_off_and_one_order(server, tmp_path):
    result = _run(server, _data(tmp_path, ["q3"]), tmp_path / "out", "--K", "-1")
    [task] = result["references"][server.spec("ref-model")]["tasks"]
    assert task["reward"] == 0.5


def test_one_order_draws_the_side_per_task_from_the_seed(server, tmp_path):
    from eval.wb_protocol import draw_test_first

    queries = [f"p{i}" for i in range(8)]
    result = _run(server, _data(tmp_path, queries), tmp_path / "out", "--one-order")
    tasks = result["references"][server.spec("ref-model")]["tasks"]
    sides = [t["calls"][0]["test_shown_as_a"] for t in tasks]
    # the model under test is not always shown as A: its side is drawn per task (seed 42) ...
    assert sides == draw_test_first(8, 42) and 0 < sum(sides) < 8
    # ... so a judge that always answers "A+" gives +0.5 where the test was A, else -0.5
    assert [t["reward"] for t in tasks] == [0.5 if s else -0.5 for s in sides]
    assert all(len(t["calls"]) == 1 for t in tasks)
    again = _run(server, _data(tmp_path, queries), tmp_path / "out2", "--one-order")
    assert [t["calls"][0]["test_shown_as_a"]
            for t in again["references"][server.spec("ref-model")]["tasks"]] == sides


def test_judge_cache_resumes_without_repeating_calls(server, tmp_path):
    data, out = _data(tmp_path, TAGS), tmp_path / "out"
    _run(server, data, out, "--limit", "3")       # a run stopped after three tasks
    assert server.calls["judge"] == 6 and server.calls["test-model"] == 3
    _run(server, data, out)                       # resumed: only the two new tasks are asked
    assert server.calls["judge"] == 6 + 2         # q4 is empty (no call), q5 two orders
    assert server.calls["test-model"] == 5
    result = _run(server, data, out)              # a finished run repeats nothing at all
    assert server.calls["judge"] == 8 and server.calls["test-model"] == 5
    assert result["judge_calls"][server.spec("judge")] == {"cached": 8, "new": 0}


def test_checklist_mode_majority_over_three_judges(server, tmp_path):
    data = _data(tmp_path, ["c1", "c2"], checklist=("one?", "two?", "three?"))
    argv = ["--mode", "checklist", "--judge", server.spec("j2"), "--judge", server.spec("j3")]
    result = _run(server, data, tmp_path / "out", *argv)  # judges 'judge' (= j1, from _run), j2, j3
    ref = result["references"][server.spec("ref-model")]
    by_id = {t["session_id"]: t for t in ref["tasks"]}
    assert (by_id["s-c1"]["test_satisfied"], by_id["s-c1"]["ref_satisfied"]) == (2, 1)
    assert (by_id["s-c2"]["test_satisfied"], by_id["s-c2"]["ref_satisfied"]) == (1, 1)
    w = ref["summary"]["win_rate"]
    assert w["rate"] == pytest.approx(0.75)
    # scores (1, 0.5): var = (1 + 0.25)/2 - 0.75^2 = 0.0625, SE = 0.25 / sqrt(2)
    assert w["se"] == pytest.approx(0.25 / 2 ** 0.5)
    assert ref["summary"]["parse"]["json"] == 12


def test_score_mode(server, tmp_path):
    result = _run(server, _data(tmp_path, ["q1", "q2"]), tmp_path / "out", "--mode", "score")
    test = result["models"][server.spec("test-model")]["summary"]
    ref = result["models"][server.spec("ref-model")]["summary"]
    assert test["mean"]["mean"] == pytest.approx((8 - 5) * 2)
    assert ref["mean"]["mean"] == pytest.approx((4 - 5) * 2)
    assert result["references"][server.spec("ref-model")]["summary"]["win_rate"]["rate"] == 1.0


def test_bad_arguments_exit_with_a_message(capsys):
    with pytest.raises(SystemExit) as err:
        wildbench.main(["--model-a", "hf:x", "--judge", "hf:y"])
    assert err.value.code == 2
    assert "--model-b" in capsys.readouterr().err


def test_bad_data_file_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "1", "session_id": "s1"}) + "\n")
    code = wildbench.main(["--model-a", "hf:x", "--model-b", "hf:y", "--judge", "hf:z",
                           "--data", str(bad), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "s1" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["wildbench_demo.yaml", "wildbench_gpu.yaml",
                                  "wildbench_official.yaml", "wildbench_paper.yaml"])
def test_shipped_configs_parse(name, tmp_path):
    from pathlib import Path

    path = Path(__file__).parents[1] / "configs" / "eval" / name
    cfg = wildbench.parse_args(["--config", str(path), "--out", str(tmp_path)])
    assert cfg.model_a and cfg.model_b and cfg.judges and cfg.out == str(tmp_path)


def test_dataset_reference_responses_as_model_b(server, tmp_path):
    records = [_record("q1", ["ok?"]), dict(_record("q2", ["ok?"]), references={})]
    data = tmp_path / "wb.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = _run(server, str(data), tmp_path / "out", "--mode", "score", "--model-b", "ref:gpt-4")
    assert result["missing_dataset_references"] == {"ref:gpt-4": 1}
    ref = result["models"]["ref:gpt-4"]["summary"]
    # q1: the stored reference "ref" scores 4 -> -2; q2 has none: empty, scored 1 -> -8
    assert ref["mean"]["mean"] == pytest.approx((-2 - 8) / 2)
    assert server.calls["ref-model"] == 2 and "ref:gpt-4" not in server.calls


def test_no_parsed_verdict_is_reported_not_hidden(tmp_path):
    def reply(body):
        return "TEST x" if body["model"] == "test-model" else (
            "REF y" if body["model"] == "ref-model" else "I like both.")

    with ScriptedChatServer(reply) as srv:
        result = _run(srv, _data(tmp_path, ["q1", "q2"]), tmp_path / "out")
    s = result["references"][srv.spec("ref-model")]["summary"]
    assert (s["n_scored"], s["n_unscored"], s["parse"]) == (0, 2, {"failed": 4})
    assert s["mean"]["mean"] is None and s["task_macro"] is None
    assert "No task against" in (tmp_path / "out" / "report.md").read_text()
