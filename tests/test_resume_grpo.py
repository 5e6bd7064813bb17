"""Kill a GRPO run with SIGKILL after its second checkpoint, resume it, and compare it with the same
run left alone: per-step rewards, transcripts and final weights must match (CPU, one thread, same
seed). Also: resuming a finished run trains 0 steps, a checkpoint from another config is refused,
and at most save_total_limit checkpoints are kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainers.checkpoint import config_differences

REPO = Path(__file__).resolve().parents[1]
#: the demo preset's weighted judge reward would load the builtin judge; these runs use its rule
RULE_REWARD = "{kind: rule, rule: length_band, lo: 3, hi: 12}"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1",
       "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _args(tmp_path: Path, model_dir: Path, out: Path, *extra: str) -> list[str]:
    return ["--config", str(REPO / "configs/experiments/demo_cpu.yaml"),
            "--policy.model", str(model_dir), "--simulator.name", "tiny-roleplay",
            "--simulator.zoo", str(tmp_path / "zoo.yaml"), "--simulator.max_tokens", "6",
            "--simulator.quantize", "null", "--reward", RULE_REWARD,
            "--data.source", str(tmp_path / "tasks.jsonl"), "--grpo.steps", "3",
            "--grpo.prompts_per_step", "2", "--grpo.num_generations", "2",
            "--grpo.per_device_batch_size", "2", "--grpo.learning_rate", "0.01",
            "--rollout.max_turns", "2", "--rollout.max_tokens", "6", "--save_every", "1",
            "--save_total_limit", "2", "--threads", "1", "--seed", "7", "--out", str(out), *extra]


def write_inputs(tmp_path: Path, model_dir: Path) -> None:
    """The runs' 4 tasks (tmp_path/tasks.jsonl) and a zoo with the tiny role-play simulator."""
    from benchmarks.resume import write_inputs as write

    write(tmp_path, model_dir, max_tokens=6)


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "trainers" / "train_rl.py"), *args],
                            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _finish(proc: subprocess.Popen, timeout: int = 240) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"training did not finish in {timeout} s:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-4000:]
    return out


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.mark.slow
def test_kill_after_second_checkpoint_then_resume_matches_an_uninterrupted_run(
        tiny_model_dir, tmp_path, capsys):
    write_inputs(tmp_path, tiny_model_dir)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = _start(_args(tmp_path, tiny_model_dir, whole))
    victim = _start(_args(tmp_path, tiny_model_dir, killed))
    marker = killed / "checkpoints" / "checkpoint-2" / "runlog.json"
    deadline = time.monotonic() + 240
    while not marker.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(victim.pid, signal.SIGKILL)
    victim_out, _ = victim.communicate()
    assert victim.returncode == -signal.SIGKILL, f"the run ended before it was killed:\n{victim_out[-3000:]}"
    assert marker.exists() and not (killed / "finished.json").exists()
    _finish(reference)

    resumed = _finish(_start(_args(tmp_path, tiny_model_dir, killed, "--resume", "auto")))
    assert "resumed at GRPO step 2; trained 1 GRPO steps" in resumed

    # per-step rewards and metrics rows: each step exactly once, equal to the uninterrupted run
    ref_rows, got_rows = _rows(whole / "metrics.jsonl"), _rows(killed / "metrics.jsonl")
    summary = [r for r in got_rows if "trl/train_runtime" in r]  # the end-of-run summary row
    assert len(summary) == 1 and got_rows[-1] is summary[0]
    ref_rows, got_rows = ref_rows[:-1], got_rows[:-1]
    assert [r["step"] for r in got_rows] == [r["step"] for r in ref_rows] == [0, 1, 2]
    assert [r["reward/mean"] for r in got_rows] == [r["reward/mean"] for r in ref_rows]
    assert [r["loss/total"] for r in got_rows] == pytest.approx([r["loss/total"] for r in ref_rows])
    strip = (lambda r: (r["step"], r["group_id"], r["sample"], r["messages"], r["reward"]))
    assert [strip(r) for r in _rows(killed / "transcripts.jsonl")] == \
        [strip(r) for r in _rows(whole / "transcripts.jsonl")]
    ref_w, got_w = _weights(whole / "final"), _weights(killed / "final")
    assert ref_w.keys() == got_w.keys() and ref_w
    for name in ref_w:
        assert (ref_w[name] - got_w[name]).abs().max().item() <= 1e-6, name
    init = _weights(killed / "checkpoints" / "checkpoint-2")
    assert any((init[n] != got_w[n]).any() for n in got_w)  # the resumed step did train
    # save_total_limit 2: the two newest checkpoints only
    kept = sorted(p.name for p in (whole / "checkpoints").iterdir() if p.name.startswith("checkpoint-"))
    assert kept == ["checkpoint-2", "checkpoint-3"]

    from trainers.train_rl import main

    # a finished run: 0 steps, said so, nothing rewritten
    assert main(_args(tmp_path, tiny_model_dir, killed, "--resume", "auto")) == 0
    said = capsys.readouterr().out
    assert "already finished its 3 GRPO steps" in said and "trained 0 GRPO steps" in said
    assert len(_rows(killed / "metrics.jsonl")) == 4
    # a checkpoint written under another config is refused, naming the difference
    ckpt = killed / "checkpoints" / "checkpoint-3"
    assert main(_args(tmp_path, tiny_model_dir, killed, "--resume", str(ckpt),
                      "--grpo.learning_rate", "0.02")) == 2
    err = capsys.readouterr().err
    assert "another config" in err and "grpo.learning_rate: 0.01 -> 0.02" in err
    # a fresh run into a folder with checkpoints is refused rather than mixed in
    assert main(_args(tmp_path, tiny_model_dir, killed)) == 2
    assert "--resume auto" in capsys.readouterr().err


def test_config_differences_by_hand():
    saved = {"grpo": {"learning_rate": 0.01, "steps": 3}, "out": "a", "seed": 1}
    now = {"grpo": {"learning_rate": 0.02, "steps": 3}, "out": "b", "seed": 1, "extra": True}
    assert config_differences(saved, now) == ["extra: (absent) -> True",
                                              "grpo.learning_rate: 0.01 -> 0.02"]
    assert config_differences(saved, saved) == []
