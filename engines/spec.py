"""Engine specs: the strings a person types to name a generation backend, and the loaders.

Forms (see docs/engines.md):

    builtin:smollm2-135m-instruct             the embedded SmolLM2-135M-Instruct (CPU demo)
    hf:<path or hub id>[@lora=<adapter dir>]  local transformers model, optional peft LoRA adapter
    vllm:<path or hub id>[@lora=<adapter dir>] vLLM offline engine (GPU), optional LoRA adapter
    openai:<base_url>[,<base_url>…]#<model>   OpenAI-compatible server(s) (vLLM, SGLang, hosted)

A spec may name environment variables as `${NAME}` or `${NAME:-default}` (expanded when parsed),
so a preset can point at a server whose address is set once per machine, e.g.
`openai:${WILDSIM_SIMULATOR_URL:-http://localhost:8003/v1}#Qwen/Qwen2.5-14B-Instruct`
(the variables the shipped presets read are listed in docs/engines.md).

`load_chat_engine(spec, **opts)` and `load_token_engine(spec, **opts)` build engines; local models
are cached per process, so two roles naming the same spec (and options) share one loaded model.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Any

BACKENDS = ("builtin", "hf", "vllm", "openai")
ADAPTER_MARK = "@lora="

VALID_FORMS = (
    "valid engine specs:\n"
    "  builtin:smollm2-135m-instruct\n"
    "  hf:<path or hub id>            e.g. hf:/models/qwen3-0.6b, hf:Qwen/Qwen3-0.6B\n"
    "  hf:<path or id>@lora=<adapter dir>\n"
    "  vllm:<path or hub id>[@lora=<adapter dir>]\n"
    "  openai:<base_url>#<model>      e.g. openai:http://localhost:8000/v1#Qwen/Qwen3-8B\n"
    "  openai:<url1>,<url2>#<model>   several endpoints, balanced"
)

#: Options each backend's loader accepts (anything else is an error naming these).
BACKEND_OPTIONS = {
    "builtin": ("dtype", "device", "batch_size", "quantize"),
    "hf": ("dtype", "device", "batch_size", "quantize"),
    "vllm": ("dtype", "gpu_memory_utilization", "max_model_len", "max_lora_rank", "seed",
             "tensor_parallel_size", "enforce_eager"),
    "openai": ("api_key_env", "max_concurrency", "timeout", "max_retries", "backoff",
               "max_backoff", "extra_body", "tokenizer"),
}


class SpecError(ValueError):
    """A spec string that does not parse; the message lists the valid forms."""


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(spec: str) -> str:
    """Replace `${NAME}` / `${NAME:-default}` in a spec with the environment's value (or the
    default); an unset variable without a default is a SpecError naming it."""

    def value(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name) or default
        if found is None:
            raise SpecError(f"engine spec {spec!r} reads ${{{name}}}, which is not set; export it "
                            f"or write ${{{name}:-<default>}} in the spec")
        return found

    return _ENV_REF.sub(value, spec)


@dataclass(frozen=True)
class EngineSpec:
    """A parsed engine spec.

    backend:   "builtin", "hf", "vllm" or "openai"
    model:     builtin name, model folder / hub id, or the served model name for openai
    adapter:   LoRA adapter folder riding on an hf/vllm model, else None
    base_urls: the endpoint base URLs of an openai spec (each ends in /v1 or similar), else ()
    """

    backend: str
    model: str
    adapter: str | None = None
    base_urls: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.backend == "openai":
            return f"openai:{','.join(self.base_urls)}#{self.model}"
        lora = f"{ADAPTER_MARK}{self.adapter}" if self.adapter else ""
        return f"{self.backend}:{self.model}{lora}"


def parse_spec(spec: str | EngineSpec) -> EngineSpec:
    """Parse an engine spec string (see the module docstring); raise SpecError with the valid forms."""
    if isinstance(spec, EngineSpec):
        return spec
    if isinstance(spec, str):
        spec = expand_env(spec)
    if not isinstance(spec, str) or ":" not in spec:
        raise SpecError(f"engine spec {spec!r} has no backend prefix.\n{VALID_FORMS}")
    backend, rest = spec.split(":", 1)
    backend, rest = backend.strip().lower(), rest.strip()
    if backend not in BACKENDS:
        raise SpecError(f"engine spec {spec!r}: unknown backend {backend!r} "
                        f"(known: {', '.join(BACKENDS)}).\n{VALID_FORMS}")
    if not rest:
        raise SpecError(f"engine spec {spec!r} names no model.\n{VALID_FORMS}")
    if backend == "openai":
        return _parse_openai(spec, rest)
    model, adapter = rest, None
    if ADAPTER_MARK in rest:
        model, adapter = rest.rsplit(ADAPTER_MARK, 1)
        if not model or not adapter:
            raise SpecError(f"engine spec {spec!r}: write the adapter as "
                            f"{backend}:<model>@lora=<adapter dir>.\n{VALID_FORMS}")
    if "@" in model:
        raise SpecError(f"engine spec {spec!r}: unexpected '@' (the only suffix is "
                        f"'@lora=<adapter dir>').\n{VALID_FORMS}")
    if backend == "builtin":
        if adapter:
            raise SpecError(f"engine spec {spec!r}: builtin models take no adapter; use "
                            f"hf:<converted folder>@lora=<adapter dir>.\n{VALID_FORMS}")
        from engines.builtin import BUILTIN_MODELS

        if model not in BUILTIN_MODELS:
            raise SpecError(f"engine spec {spec!r}: unknown builtin model {model!r} "
                            f"(known: {', '.join(BUILTIN_MODELS)}).")
    return EngineSpec(backend=backend, model=model, adapter=adapter)


def _parse_openai(spec: str, rest: str) -> EngineSpec:
    if "#" not in rest:
        raise SpecError(f"engine spec {spec!r}: an openai spec needs '#<model>' after the base URL "
                        f"(the model name the server serves).\n{VALID_FORMS}")
    urls, model = rest.rsplit("#", 1)
    base_urls = tuple(u.strip().rstrip("/") for u in urls.split(",") if u.strip())
    bad = [u for u in base_urls if not u.startswith(("http://", "https://"))]
    if not base_urls or bad or not model.strip():
        raise SpecError(f"engine spec {spec!r}: base URLs must start with http:// or https:// and "
                        f"a model must follow '#'.\n{VALID_FORMS}")
    return EngineSpec(backend="openai", model=model.strip(), base_urls=base_urls)


_CACHE: dict[tuple, Any] = {}
_CACHE_LOCK = threading.Lock()


def load_chat_engine(spec: str | EngineSpec, **opts: Any):
    """Build (or reuse) a ChatEngine for a spec. Options depend on the backend (BACKEND_OPTIONS)."""
    return _load(parse_spec(spec), opts)


def load_token_engine(spec: str | EngineSpec, **opts: Any):
    """Build (or reuse) a TokenEngine for a spec. openai specs are refused: the policy's engine
    must follow the trainer's weights, which a server does not (a served simulator uses the
    openai engine's `generate` through load_chat_engine(spec, tokenizer=...))."""
    parsed = parse_spec(spec)
    if parsed.backend == "openai":
        raise SpecError(f"engine spec {str(parsed)!r}: an OpenAI-compatible server does not follow "
                        "the trainer's weight updates; use a builtin:, hf: or vllm: spec for the "
                        "policy.")
    return _load(parsed, opts)


def clear_engine_cache() -> None:
    """Forget every cached engine (their models are freed once nothing else refers to them)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _load(spec: EngineSpec, opts: dict[str, Any]):
    allowed = BACKEND_OPTIONS[spec.backend]
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise SpecError(f"engine spec {str(spec)!r}: unknown option(s) {', '.join(unknown)} for the "
                        f"{spec.backend} backend (accepted: {', '.join(allowed)}).")
    key = (spec, tuple(sorted((k, repr(v)) for k, v in opts.items())))
    with _CACHE_LOCK:  # one load at a time, so two roles never load the same model twice
        if key not in _CACHE:
            _CACHE[key] = _build(spec, opts)
        return _CACHE[key]


def _build(spec: EngineSpec, opts: dict[str, Any]):
    if spec.backend == "openai":
        from engines.http import OpenAIChatEngine

        return OpenAIChatEngine(spec.base_urls, spec.model, **opts)
    if spec.backend == "vllm":
        from engines.vllm_engine import VLLMEngine

        return VLLMEngine(spec.model, adapter=spec.adapter, name=str(spec), **opts)
    from engines.hf import HFEngine, load_hf

    batch_size = opts.pop("batch_size", 64)
    if spec.backend == "builtin":
        from engines.builtin import load_builtin

        model, tokenizer = load_builtin(spec.model, **opts)
    else:
        model, tokenizer = load_hf(spec.model, adapter=spec.adapter, **opts)
    return HFEngine(model, tokenizer, batch_size=batch_size, name=str(spec))
