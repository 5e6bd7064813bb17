"""Fixtures shared by the structured-output tests: an HFEngine on the tiny random model (which
writes JSON about one character per token, the hard case for a token budget) and a few prompts.
Test modules import them by name."""

from __future__ import annotations

import pytest

from engines.hf import HFEngine, load_hf


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    model, tokenizer = load_hf(str(tiny_model_dir), dtype="float32", device="cpu")
    return HFEngine(model, tokenizer, batch_size=8)


@pytest.fixture(scope="module")
def prompts(engine):
    texts = ["hello world please", "a", "write code python function error fix", "json",
             "tell me a story", "b c d"]
    return [engine.tokenizer.encode(t) for t in texts]
