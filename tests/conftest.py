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
