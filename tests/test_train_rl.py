"""The training entry script run as a subprocess on the tiny model, its config errors, and the run log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from corpora.types import Episode, Message, Task
from tests.test_resume_grpo import RULE_REWARD
from trainers.runlog import RunLog, moving_average, rename_trl_metrics, transcripts_html
from trainers.train_rl import TrainRLConfig, policy_model_dir
from foundation.config import ConfigError, from_dict

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1",
       "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def _script(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "trainers" / "train_rl.py"), *args],
                          cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout)


def test_script_trains_tiny_model_and_writes_outputs(tiny_model_dir, tmp_path):
    from corpora.tasks import write_tasks

    tasks = [Task(task_id=f"t{i}", intent=f"You want help with item {i}",
                  opening=f"hello can you help me with item {i}", metadata={"split": "train"})
             for i in range(4)]
    write_tasks(tasks, tmp_path / "tasks.jsonl")
    (tmp_path / "zoo.yaml").write_text(
        "simulators:\n  tiny-roleplay:\n    kind: roleplay\n"
        f"    engine: hf:{tiny_model_dir}\n"
        "    sampling: {temperature: 0.7, top_p: 0.9, max_tokens: 8}\n"
        "    options: {opening: real}\n")
    out = tmp_path / "run"
    proc = _script("--config", str(REPO / "configs/experiments/demo_cpu.yaml"),
                   "--policy.model", str(tiny_model_dir), "--simulator.name", "tiny-roleplay",
                   "--simulator.zoo", str(tmp_path / "zoo.yaml"), "--simulator.quantize", "null",
                   "--reward", RULE_REWARD,
                   "--data.source", str(tmp_path / "tasks.jsonl"), "--grpo.steps", "2",
                   "--grpo.prompts_per_step", "2", "--grpo.num_generations", "2",
                   "--grpo.per_device_batch_size", "2", "--rollout.max_tokens", "6",
                   "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trained 2 GRPO steps" in proc.stdout
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "reward/mean" in r] == [0, 1]
    records = [json.loads(x) for x in (out / "transcripts.jsonl").read_text().splitlines()]
    assert len(records) == 8 and {r["simulator"] for r in records} == {"tiny-roleplay"}
    assert all(r["end_reason"] in ("user_ended", "turn_cap", "length_cap") for r in records)
    saved = (out / "config.yaml").read_text()
    assert "tiny-roleplay" in saved and "length_band" in saved
    assert (out / "final" / "adapter_config.json").exists()  # LoRA from the demo config
    assert (out / "transcripts.html").exists() and (out / "reward_curve.png").exists()


def test_script_help_and_bad_config_errors(tmp_path):
    proc = _script("--help", timeout=120)
    assert proc.returncode == 0 and "--grpo.num_generations" in proc.stdout
    proc = _script("--grpo.num_gens", "4", timeout=120)
    assert proc.returncode == 2 and "unrecognized arguments: --grpo.num_gens" in proc.stderr
    proc = _script("--data.split", "nosuchsplit", timeout=120)
    assert proc.returncode == 2 and "0 training tasks" in proc.stderr
    proc = _script("--grpo.num_generations", "1", timeout=120)
    assert proc.returncode == 2 and "num_generations must be >= 2" in proc.stderr


def test_config_validation_messages():
    with pytest.raises(ValueError, match="kind"):
        from_dict(TrainRLConfig, {"reward": {"rule": "length_band"}})
    with pytest.raises(ConfigError, match="unknown config key"):
        from_dict(TrainRLConfig, {"rollout": {"max_turn": 3}})
    with pytest.raises(ConfigError, match="adapter"):
        policy_model_dir("hf:/models/base@lora=/adapters/x")


def test_moving_average_by_hand():
    assert moving_average([1, 2, 3, 6], 3) == [2.0, 11 / 3]


def test_trl_metric_names_are_namespaced():
    renamed = rename_trl_metrics({"loss": 0.5, "kl": 0.1, "epoch": 1.0, "grad_norm": 2.0,
                                  "note": "text", "reward/mean": 0.3})
    assert renamed == {"loss/total": 0.5, "loss/kl": 0.1, "trl/epoch": 1.0,
                       "optim/grad_norm": 2.0, "reward/mean": 0.3}


def test_run_log_writes_escaped_page_and_curve(tmp_path):
    log = RunLog(tmp_path)
    ep = Episode(task=Task(task_id="x", intent="goal <b>"), simulator="s", reward=0.25,
                 messages=[Message("user", "<script>alert(1)</script>"), Message("assistant", "hi")],
                 end_reason="turn_cap")
    log.episodes(0, [ep])
    log.metrics(0, {"reward/mean": 0.25, "reward/std": 0.1})
    for step in range(1, 6):
        log.metrics(step, {"reward/mean": 0.1 * step, "reward/std": 0.1})
    log.finish()
    page = (tmp_path / "transcripts.html").read_text()
    assert "&lt;script&gt;" in page and "<script>" not in page and "reward 0.250" in page
    assert (tmp_path / "reward_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert transcripts_html([]).count("class='ep'") == 0


def test_reward_curve_title_names_the_reward():
    from trainers.runlog import reward_curve_title

    assert reward_curve_title("length_band rule (lo=3, hi=12)").splitlines() == [
        "Episode reward during training", "length_band rule (lo=3, hi=12)"]
    assert reward_curve_title() == "Episode reward during training"
