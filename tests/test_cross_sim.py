"""The cross-simulator matrix on tiny models: two assistants (hf:<dir> specs) × two scripted zoo
simulators, scored by the training JudgeReward whose judge is a scripted loopback server."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from corpora.tasks import write_tasks
from corpora.types import Task
from eval import cross_sim, stats
from rewards.judge import judge_prompt
from simulators.base import SIMULATOR_KINDS, UserTurn
from tests.eval_fixtures import ScriptedChatServer


@SIMULATOR_KINDS.register("eval-test-scripted")
class ScriptedUser:
    """Opens with the task's opening; ends after `turns` assistant turns; deterministic."""

    def __init__(self, name: str, turns: int):
        self.name, self.turns = name, turns

    @classmethod
    def from_zoo(cls, entry, load, seed):
        return cls(entry.name, int(entry.options["turns"]))

    def open(self, episodes):
        return [ep.task.opening for ep in episodes]

    def reply(self, episodes):
        return [UserTurn("thanks", ends=True) if ep.assistant_turns >= self.turns
                else UserTurn(f"more please ({ep.assistant_turns})") for ep in episodes]


def judge_score(prompt_text: str) -> int:
    """The scripted judge's 0–10 score: a deterministic function of what it is shown."""
    return sum(map(ord, prompt_text)) % 11


def _judge_reply(body: dict) -> str:
    text = body["messages"][-1]["content"]
    return json.dumps({"rationale": "scripted", "score": judge_score(text)})


@pytest.fixture(scope="module")
def second_model(tmp_path_factory):
    from engines.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny2"), seed=1)


def _setup(tmp_path, server, model_a, model_b):
    tasks = [Task(f"t{i}", f"get help with thing {i}", f"please help me with thing {i}")
             for i in range(3)]
    write_tasks(tasks, tmp_path / "tasks.jsonl")
    zoo = {"simulators": {
        "short": {"kind": "eval-test-scripted", "options": {"turns": 1}},
        "long": {"kind": "eval-test-scripted", "options": {"turns": 2}}}}
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump(zoo))
    config = {
        "assistants": {"base": f"hf:{model_a}", "other": f"hf:{model_b}"},
        "simulators": ["short", "long"], "zoo": str(tmp_path / "zoo.yaml"),
        "tasks": str(tmp_path / "tasks.jsonl"), "samples": 1,
        "rollout": {"max_turns": 3, "max_tokens": 6, "max_total_tokens": 512},
        "reward": {"kind": "judge", "judges": [server.spec("judge")]},
        "out": str(tmp_path / "out"), "n_boot": 200,
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "cfg.yaml"


def test_cross_sim_matrix_with_training_judge(tmp_path, tiny_model_dir, second_model):
    import torch

    torch.set_num_threads(1)
    with ScriptedChatServer(_judge_reply) as server:
        cfg_path = _setup(tmp_path, server, tiny_model_dir, second_model)
        assert cross_sim.main(["--config", str(cfg_path)]) == 0
        out = tmp_path / "out"
        result = json.loads((out / "cross_sim.json").read_text())
        assert server.calls["judge"] == 12          # 2 assistants x 2 simulators x 3 tasks
        cells = {(c["assistant"], c["simulator"]): c for c in result["cells"]}
        assert set(cells) == {("base", "short"), ("base", "long"), ("other", "short"),
                              ("other", "long")}
        for (assistant, sim), cell in cells.items():
            records = [json.loads(line) for line in
                       cross_sim.cell_path(out, assistant, sim).read_text().splitlines()]
            assert len(records) == cell["n"] == 3
            turns = 1 if sim == "short" else 2
            for r in records:
                # the simulator ends after `turns` assistant turns; the judge reward of training
                # scored the whole conversation: score / 10
                assert r["end_reason"] == "user_ended"
                assert sum(m["role"] == "assistant" for m in r["messages"]) == turns
                prompt = judge_prompt(r["intent"], [_msg(m) for m in r["messages"]])
                assert r["reward"] == pytest.approx(judge_score(prompt[-1].content) / 10)
                assert r["reward_details"]["judges"][0]["score"] is not None
            assert cell["reward"]["mean"] == pytest.approx(sum(r["reward"] for r in records) / 3)
            assert cell["judge_parse_failures"] == 0
        _check_comparisons(result, out)
        assert (out / "cross_sim.png").stat().st_size > 0
        assert "| base |" in (out / "report.md").read_text()

        # resume: a finished run reuses every cell; a lost cell is replayed and its judge
        # verdicts all come from the disk cache (greedy rollouts repeat exactly)
        cross_sim.cell_path(out, "other", "long").unlink()
        assert cross_sim.main(["--config", str(cfg_path)]) == 0
        assert server.calls["judge"] == 12
        again = json.loads((out / "cross_sim.json").read_text())
        assert again["cells"] == result["cells"]
        assert again["judge_calls"] == {f"judge|{server.spec('judge')}": {"cached": 3, "new": 0}}


def _msg(m):
    from corpora.types import Message

    return Message(m["role"], m["content"])


def _check_comparisons(result, out):
    [short, long] = [p for p in result["comparisons"]]
    assert (short["a"], short["b"]) == ("other", "base")
    for pair in (short, long):
        a = _task_rewards(cross_sim.cell_path(out, "other", pair["simulator"]))
        b = _task_rewards(cross_sim.cell_path(out, "base", pair["simulator"]))
        expected = [stats.outcome(a[t], b[t]) for t in sorted(a)]
        assert pair["rate"] == pytest.approx(sum(expected) / len(expected))
        w, t, l = stats.count_outcomes(expected)
        assert (pair["wins"], pair["ties"], pair["losses"]) == (w, t, l)
        assert pair["sign_test_p"] == pytest.approx(stats.sign_test(w, l))


def _task_rewards(path):
    return {r["task_id"]: r["reward"] for r in map(json.loads, path.read_text().splitlines())}


def test_rule_reward_and_config_errors(tmp_path, tiny_model_dir):
    with ScriptedChatServer(_judge_reply) as server:
        cfg_path = _setup(tmp_path, server, tiny_model_dir, tiny_model_dir)
    data = yaml.safe_load(cfg_path.read_text())
    data["reward"] = {"kind": "rule", "rule": "user_thanks"}
    data["simulators"] = ["long"]
    data["assistants"] = {"base": data["assistants"]["base"]}
    cfg = cross_sim.CrossSimConfig(**{**data, "rollout": cross_sim.RolloutConfig(**data["rollout"])})
    path = cross_sim.run_cross_sim(cfg)
    result = json.loads(path.read_text())
    [cell] = result["cells"]
    assert cell["reward"]["mean"] == 1.0            # the scripted user always thanks at the end
    assert result["comparisons"] == []
    with pytest.raises(ValueError, match="compare entry"):
        cross_sim.CrossSimConfig(**{**data, "compare": [["base", "nobody"]]})
    with pytest.raises(SystemExit):
        cross_sim.main(["--config", str(cfg_path), "--simulators", "[]"])
    # the scripted users have no sampling settings: a cap on them is refused, naming the option
    with pytest.raises(ValueError, match="sim_max_tokens: simulator 'long' has no sampling"):
        cross_sim.run_cross_sim(cross_sim.CrossSimConfig(**{
            **data, "sim_max_tokens": 8, "out": str(tmp_path / "capped"),
            "rollout": cross_sim.RolloutConfig(**data["rollout"])}))


def test_count_in_details_finds_nested_judge_failures():
    details = {"components": {"judge": {"value": 0.5, "weight": 1.0,
                                        "details": {"parse_failures": 2, "fallback_used": True}},
                              "len": {"value": 1.0, "weight": 0.2, "details": {"rule": "x"}}}}
    assert cross_sim.count_in_details(details, "parse_failures") == 2
    assert cross_sim.count_in_details(details, "fallback_used") == 1
    assert cross_sim.count_in_details({"parse_failures": 1}, "parse_failures") == 1
    assert re.fullmatch(r"[A-Za-z0-9._-]+", cross_sim._slug("hf:/x/y@lora=z"))


@pytest.mark.parametrize("name", ["cross_sim_demo.yaml", "cross_sim_gpu.yaml"])
def test_shipped_configs_parse(name):
    from pathlib import Path

    from foundation.config import from_dict

    data = yaml.safe_load((Path(__file__).parents[1] / "configs" / "eval" / name).read_text())
    cfg = from_dict(cross_sim.CrossSimConfig, data)
    assert cfg.assistants and cfg.simulators and cfg.reward["kind"] == "judge"
    from simulators.zoo import known_simulators

    assert set(cfg.simulators) <= set(known_simulators())
