"""`wildsim simulate` writes conversations that the WildChat loader validates, with end reasons."""

from __future__ import annotations

import json

import yaml

from corpora.tasks import write_tasks
from corpora.types import Task
from corpora.wildchat import iter_wildchat
from eval import simulate
from simulators.base import SIMULATOR_KINDS, UserTurn


@SIMULATOR_KINDS.register("simulate-test-scripted")
class LeavingUser:
    """Opens with the task's opening; task 't0' leaves after one answer, others keep asking."""

    def __init__(self, name: str):
        self.name = name

    @classmethod
    def from_zoo(cls, entry, load, seed):
        return cls(entry.name)

    def open(self, episodes):
        return [ep.task.opening for ep in episodes]

    def reply(self, episodes):
        return [UserTurn("ok thanks, bye", ends=True) if ep.task.task_id == "t0"
                else UserTurn("and then?") for ep in episodes]


def test_simulate_writes_valid_wildchat_jsonl(tmp_path, tiny_model_dir, capsys):
    import torch

    torch.set_num_threads(1)
    write_tasks([Task(f"t{i}", f"goal {i}", f"hello number {i}") for i in range(3)],
                tmp_path / "tasks.jsonl")
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump(
        {"simulators": {"leaver": {"kind": "simulate-test-scripted"}}}))
    out = tmp_path / "sim" / "leaver.jsonl"
    code = simulate.main(["--simulator", "leaver", "--assistant", f"hf:{tiny_model_dir}",
                          "--tasks", str(tmp_path / "tasks.jsonl"), "--zoo", str(tmp_path / "zoo.yaml"),
                          "--out", str(out), "--max-turns", "2", "--max-tokens", "5", "--batch", "2"])
    assert code == 0
    convs = list(iter_wildchat(str(out)))          # the WildChat schema validator accepts them
    assert len(convs) == 3
    records = {r["task_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["t0"]["end_reason"] == "user_ended"
    assert [u["role"] for u in records["t0"]["conversation"]] == ["user", "assistant", "user"]
    assert records["t0"]["conversation"][-1]["content"] == "ok thanks, bye"
    assert records["t1"]["end_reason"] == "turn_cap"
    assert [u["role"] for u in records["t1"]["conversation"]] == ["user", "assistant"] * 2
    assert records["t1"]["conversation"][0]["content"] == "hello number 1"
    assert {r["simulator"] for r in records.values()} == {"leaver"}
    assert len({r["conversation_hash"] for r in records.values()}) == 3
    assert "user_ended 1" in capsys.readouterr().out


def test_simulate_unknown_simulator_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump(
        {"simulators": {"leaver": {"kind": "simulate-test-scripted"}}}))
    write_tasks([Task("t0", "g", "hi")], tmp_path / "tasks.jsonl")
    code = simulate.main(["--simulator", "lever", "--assistant", "hf:/nowhere",
                          "--tasks", str(tmp_path / "tasks.jsonl"), "--zoo", str(tmp_path / "zoo.yaml"),
                          "--out", str(tmp_path / "x.jsonl")])
    assert code == 2
    assert "leaver" in capsys.readouterr().err
