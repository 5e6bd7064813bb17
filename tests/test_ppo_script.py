"""The PPO entry script: --help and config errors (in process), a tiny `wildsim train ppo` run,
and real 2-process accelerate + DeepSpeed ZeRO-2 and ZeRO-3 runs of the script on CPU (gloo)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from corpora.types import Task

REPO = Path(__file__).resolve().parents[1]
SCRIPT = str(REPO / "trainers" / "train_ppo.py")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1",
       "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _run(cmd: list[str], timeout: int) -> subprocess.CompletedProcess:
    """Run in its own process group; on timeout kill the whole group (launcher and ranks) and
    fail with what it printed: a hang is a failure."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"{cmd[:6]} did not finish in {timeout} s (hang?):\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _setup(tmp_path: Path, tiny_model_dir: Path) -> list[str]:
    from corpora.tasks import write_tasks

    tasks = [Task(task_id=f"t{i}", intent=f"You want help with item {i}",
                  opening=f"hello can you help me with item {i}") for i in range(4)]
    write_tasks(tasks, tmp_path / "tasks.jsonl")
    (tmp_path / "zoo.yaml").write_text(
        "simulators:\n  tiny-roleplay:\n    kind: roleplay\n"
        f"    engine: hf:{tiny_model_dir}\n"
        "    sampling: {temperature: 0.7, top_p: 0.9, max_tokens: 6}\n"
        "    options: {opening: real}\n")
    return ["--config", str(REPO / "configs/experiments/ppo_demo_cpu.yaml"),
            "--policy.model", str(tiny_model_dir), "--simulator.name", "tiny-roleplay",
            "--simulator.zoo", str(tmp_path / "zoo.yaml"), "--simulator.max_tokens", "6",
            "--data.source", str(tmp_path / "tasks.jsonl"), "--rollout.max_tokens", "5",
            "--ppo.prompts_per_step", "2", "--ppo.samples_per_prompt", "2",
            "--ppo.minibatch_size", "2", "--ppo.ppo_epochs", "1"]


def test_help_and_config_errors(capsys):
    """In process (the CLI's wiring and the script run by path are what the launches below run):
    --help lists the PPO options, a bad value exits 2 naming the rule."""
    from trainers.train_ppo import main

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    help_text = capsys.readouterr().out
    for flag in ("--ppo.gamma", "--ppo.lam", "--ppo.vf_coef", "--ppo.kl_coef", "--ppo.target_kl",
                 "--ppo.clip_range_value", "--ppo.whiten_advantages", "--ppo.samples_per_prompt",
                 "--ppo.value_learning_rate", "--ppo.value_head_init", "--resume"):
        assert flag in help_text, flag
    with pytest.raises(SystemExit) as done:
        main(["--ppo.lam", "1.5"])
    assert done.value.code == 2
    assert "ppo.gamma and ppo.lam must lie in [0, 1]" in capsys.readouterr().err


def test_wildsim_train_ppo_runs_tiny_ppo(tiny_model_dir, tmp_path):
    """`wildsim train ppo` (the CLI's dispatch) trains one single-process step, 2 turns."""
    out = tmp_path / "run"
    proc = _run([sys.executable, "-m", "wildsim", "train", "ppo", *_setup(tmp_path, tiny_model_dir),
                 "--ppo.steps", "1", "--rollout.max_turns", "2", "--out", str(out)], 300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trained 1 PPO steps" in proc.stdout
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert row["episode/count"] == 4 and "ppo/value_loss" in row
    assert (out / "final" / "adapter_config.json").exists() and (out / "final" / "value_head.pt").exists()


@pytest.mark.multiproc
@pytest.mark.parametrize("zero_stage", [2, 3])
def test_two_process_deepspeed_ppo(zero_stage, tiny_model_dir, tmp_path, deepspeed_ops_built):
    """ZeRO-2 and ZeRO-3 (weights, LoRA and value head partitioned; generation on gathered
    weights, so the rollout makes no collectives beyond any_live) with 2 processes, the script
    run by path. ZeRO-3 runs 2 steps (a rollout on weights gathered after a partitioned
    update); ZeRO-2, whose weights every rank holds whole, 1."""
    launcher = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if launcher is None:
        pytest.skip("accelerate's launcher is not installed in this environment")
    out = tmp_path / "run"
    steps = 2 if zero_stage == 3 else 1
    # one assistant turn per episode: every rank plays the same number of turns
    cmd = [launcher, "launch", "--use_deepspeed", "--zero_stage", str(zero_stage),
           "--num_processes", "2", "--mixed_precision", "no",
           "--main_process_port", str(29515 + zero_stage), SCRIPT,
           *_setup(tmp_path, tiny_model_dir), "--ppo.steps", str(steps), "--rollout.max_turns", "1",
           "--ppo.samples_per_prompt", "2", "--out", str(out)]
    proc = _run(cmd, 420)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert f"trained {steps} PPO steps" in proc.stdout
    assert [r["step"] for r in rows] == list(range(steps))
    assert all(r["episode/count"] == 4 and "ppo/value_loss" in r for r in rows)  # 2 per process, gathered
    records = (out / "transcripts.jsonl").read_text().splitlines()
    assert len(records) == 4 * steps
    assert (out / "final" / "adapter_model.safetensors").exists() and (out / "final" / "value_head.pt").exists()
