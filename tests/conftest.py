"""Shared test fixtures: one tiny random chat model per test session (built locally, no hub)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A folder holding a tiny Llama-architecture chat model and its tokenizer (engines.tiny);
    load it with `engines.hf.load_hf(str(dir))` or the spec `hf:<dir>`. Do not modify it."""
    from engines.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def deepspeed_ops_built():
    """Build DeepSpeed's CPU shared-memory communication op (what the first `accelerate launch
    --use_deepspeed` on CPU compiles) once, in a subprocess, before any multi-process test launches
    training. A first build takes about a minute on an idle machine and much longer on a busy one;
    doing it here keeps it out of the launches' hang timeouts. Cached in ~/.cache/torch_extensions."""
    import subprocess
    import sys

    pytest.importorskip("deepspeed", reason="DeepSpeed is not installed")
    code = "from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder; ShareMemCommBuilder().load()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"building DeepSpeed's shm op failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
