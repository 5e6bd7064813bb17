"""Kill a GRPO run under `accelerate launch` + DeepSpeed ZeRO-2 (one process, CPU, gloo) with SIGKILL
after its second checkpoint, resume it with `--resume auto`, and compare it with the same launch
left alone: the checkpoint holds DeepSpeed's own optimizer state (global_step* folder), the run log
continues without a gap or a duplicate, and the final adapter equals the uninterrupted run's.
tests/test_resume_grpo.py is the plain single-process version."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_resume_grpo import ENV, REPO, _args, _rows, _weights, write_inputs


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--use_deepspeed", "--zero_stage",
           "2", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(_port()),
           str(REPO / "trainers" / "train_rl.py"), *args]
    return subprocess.Popen(cmd, cwd=REPO, env={**ENV, "ACCELERATE_USE_CPU": "0"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _kill_all(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and every process under it: torch's elastic agent starts the training
    process in a session of its own, out of reach of a kill of the launcher's process group.
    (psutil comes with accelerate.)"""
    import psutil

    launcher = psutil.Process(proc.pid)
    for p in [*launcher.children(recursive=True), launcher]:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def _finish(proc: subprocess.Popen, timeout: int = 300) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_all(proc)
        out, _ = proc.communicate()
        pytest.fail(f"training did not finish in {timeout} s:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.mark.multiproc
def test_deepspeed_zero2_kill_after_second_checkpoint_then_resume(tiny_model_dir, tmp_path,
                                                                   deepspeed_ops_built):
    pytest.importorskip("deepspeed", reason="DeepSpeed is not installed")
    write_inputs(tmp_path, tiny_model_dir)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = _launch(_args(tmp_path, tiny_model_dir, whole))
    victim = _launch(_args(tmp_path, tiny_model_dir, killed))
    marker = killed / "checkpoints" / "checkpoint-2" / "runlog.json"
    deadline = time.monotonic() + 300
    while not marker.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    _kill_all(victim)
    victim_out, _ = victim.communicate()
    assert victim.returncode == -signal.SIGKILL, f"the run ended before it was killed:\n{victim_out[-3000:]}"
    assert marker.exists() and not (killed / "finished.json").exists()
    # DeepSpeed wrote its own engine checkpoint (optimizer partitions) into the Trainer's
    assert list((killed / "checkpoints" / "checkpoint-2").glob("global_step*/*optim_states.pt"))
    _finish(reference)

    resumed = _finish(_launch(_args(tmp_path, tiny_model_dir, killed, "--resume", "auto")))
    assert "resumed at GRPO step 2; trained 1 GRPO steps" in resumed

    ref_rows, got_rows = _rows(whole / "metrics.jsonl"), _rows(killed / "metrics.jsonl")
    assert sum("trl/train_runtime" in r for r in got_rows) == 1 and "trl/train_runtime" in got_rows[-1]
    ref_rows, got_rows = ref_rows[:-1], got_rows[:-1]
    assert [r["step"] for r in got_rows] == [r["step"] for r in ref_rows] == [0, 1, 2]
    assert [r["update"] for r in got_rows] == [1, 2, 3]
    assert [r["reward/mean"] for r in got_rows] == [r["reward/mean"] for r in ref_rows]
    assert [r["loss/total"] for r in got_rows] == pytest.approx([r["loss/total"] for r in ref_rows])
    assert [r["step"] for r in _rows(killed / "transcripts.jsonl")] == \
        [r["step"] for r in _rows(whole / "transcripts.jsonl")]
    # the resumed step started from the checkpoint's weights AND optimizer state: equal results
    ref_w, got_w = _weights(whole / "final"), _weights(killed / "final")
    assert ref_w.keys() == got_w.keys() and ref_w
    for name in ref_w:
        assert (ref_w[name] - got_w[name]).abs().max().item() <= 1e-6, name
    init = _weights(killed / "checkpoints" / "checkpoint-2")
    assert any((init[n] != got_w[n]).any() for n in got_w)  # the resumed step did train
