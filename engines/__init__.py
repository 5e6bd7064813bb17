"""engines: text generation behind two small interfaces, and the backends that implement them.

- ChatEngine.chat(conversations, sampling) -> list[str]            (simulators, judges)
- TokenEngine.generate(prompt_ids, sampling) -> list[TokenOutput]  (the policy in rollouts)
Backends: HFEngine (local transformers, also wraps a live policy model), the builtin SmolLM2
model, vLLM offline, and OpenAI-compatible HTTP servers. `load_chat_engine(spec)` /
`load_token_engine(spec)` build one from a spec string such as `builtin:smollm2-135m-instruct`,
`hf:/models/x@lora=/adapters/y`, `vllm:Qwen/Qwen3-8B` or `openai:http://host:8000/v1#model`
(see docs/engines.md). CachedChatEngine puts a resumable disk cache in front of a ChatEngine.
Depends on corpora only. Heavy modules (torch, transformers) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from engines.base import ChatEngine, Sampling, TokenEngine, TokenOutput

_LAZY = {
    "HFEngine": "engines.hf",
    "load_hf": "engines.hf",
    "EngineSpec": "engines.spec",
    "parse_spec": "engines.spec",
    "load_chat_engine": "engines.spec",
    "load_token_engine": "engines.spec",
    "CachedChatEngine": "engines.cache",
}

__all__ = ["Sampling", "TokenOutput", "ChatEngine", "TokenEngine", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'engines' has no attribute {name!r}")
