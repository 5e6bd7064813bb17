"""GRPO with two real training processes: `accelerate launch` + DeepSpeed ZeRO-2 / ZeRO-3 over gloo
on CPU, a tiny policy and a local (`hf:`) simulator.

The two tasks are built so that the two ranks' episodes end at different turns: one task's
opening is so long that its episodes hit the length cap after the first assistant turn, the
other's runs on for more turns. Each step's group of one task lands on one rank, so from the second
turn on one rank has no live episode (it makes dummy policy calls) while the other still calls the
simulator. A simulator that took part in collectives there would leave the ranks waiting on each
other: the launch runs in its own process group with a timeout that kills the whole group, so a
hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from corpora.types import Task
from tests.test_resume_grpo import RULE_REWARD

REPO = Path(__file__).resolve().parents[1]
LONG = " ".join(["please help me fix the python function error in this data file"] * 12)


def run_group(cmd: list[str], *, timeout: int, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """Run `cmd` in a new session; on timeout kill its whole process group and fail the test."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(cmd[:6])} … did not finish in {timeout} s (a hang between ranks?);"
                    f" last output:\n{out[-4000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def _write_inputs(tmp_path: Path, model_dir: Path) -> tuple[Path, Path]:
    from corpora.tasks import write_tasks

    tasks = [Task(task_id="long", intent="You want the function fixed", opening=LONG),
             Task(task_id="short", intent="You want a short poem", opening="write a poem")]
    write_tasks(tasks, tmp_path / "tasks.jsonl")
    (tmp_path / "zoo.yaml").write_text(
        "simulators:\n  tiny-roleplay:\n    kind: roleplay\n"
        f"    engine: hf:{model_dir}\n"
        "    sampling: {temperature: 1.0, max_tokens: 6}\n"
        "    options: {opening: real, protocol: project}\n")  # plain replies: a tiny model writes no JSON
    return tmp_path / "tasks.jsonl", tmp_path / "zoo.yaml"


@pytest.mark.multiproc
@pytest.mark.parametrize("zero_stage,gather", [(2, True), (3, True), (3, False)],
                         ids=["zero2", "zero3", "zero3-partitioned-generation"])
def test_two_processes_with_episodes_ending_at_different_turns(zero_stage, gather, tiny_model_dir,
                                                              tmp_path, deepspeed_ops_built):
    """zero3-partitioned-generation: ds3_gather_for_generation false and every parameter
    partitioned (DeepSpeed keeps parameters under stage3_param_persistence_threshold, here all of
    the tiny model's, whole on every rank: the threshold is set to 0), so every policy forward pass
    is a collective; the rank making 1-token dummy calls must make as many passes as the rank
    still decoding (engines/hf.py), else the ranks crash or hang."""
    pytest.importorskip("deepspeed", reason="DeepSpeed is not installed")
    tasks, zoo = _write_inputs(tmp_path, tiny_model_dir)
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
           "ACCELERATE_USE_CPU": "0"}
    if gather:
        deepspeed = ["--zero_stage", str(zero_stage)]
    else:
        ds_config = tmp_path / "zero3_partitioned.json"
        ds_config.write_text(json.dumps({
            "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0},
            "train_micro_batch_size_per_gpu": "auto", "train_batch_size": "auto",
            "gradient_accumulation_steps": "auto", "gradient_clipping": "auto"}))
        deepspeed = ["--deepspeed_config_file", str(ds_config)]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--use_deepspeed", *deepspeed,
           "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no",
           str(REPO / "trainers" / "train_rl.py"),
           "--config", str(REPO / "configs/experiments/demo_cpu.yaml"),
           "--policy.model", str(tiny_model_dir), "--simulator.name", "tiny-roleplay",
           "--simulator.zoo", str(zoo), "--simulator.max_tokens", "6",
           "--simulator.quantize", "null", "--reward", RULE_REWARD,
           "--data.source", str(tasks), "--grpo.steps", "2", "--grpo.prompts_per_step", "2",
           "--grpo.num_generations", "2", "--grpo.per_device_batch_size", "2",
           "--rollout.max_turns", "3", "--rollout.max_tokens", "4",
           "--rollout.max_total_tokens", "100", "--threads", "1", "--out", str(out),
           "--grpo.ds3_gather_for_generation", str(gather).lower()]
    proc = run_group(cmd, timeout=300, env=env, cwd=REPO)  # the op is already built (fixture)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "trained 2 GRPO steps" in proc.stdout
    records = [json.loads(x) for x in (out / "transcripts.jsonl").read_text().splitlines()]
    assert len(records) == 8  # 2 steps × 2 tasks × 2 episodes, gathered from both ranks
    turns = {r["task_id"]: set() for r in records}
    for r in records:
        turns[r["task_id"]].add((r["end_reason"], sum(m["role"] == "assistant" for m in r["messages"])))
    # the long task ends at the length cap after one turn; the short one lives on for at least one
    # more turn (to the turn cap of 3, or the length cap once its turns add up)
    assert turns["long"] == {("length_cap", 1)}
    assert turns["short"] and all(n >= 2 for _reason, n in turns["short"]), turns
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "reward/mean" in r] == [0, 1]
    # the main process held the long task at least once (seeded order): it padded with dummy calls
    assert any(r.get("rollout/dummy_calls", 0) > 0 for r in rows)
