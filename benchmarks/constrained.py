"""What JSON-schema constrained decoding costs on a local engine, and how the libraries compare.

    python benchmarks/constrained.py                 # HFEngine tokens/s with and without the schema
    python benchmarks/constrained.py --compare       # + per-library compile and per-step mask cost

Engine mode: the builtin SmolLM2-135M (float32, CPU) decodes `--batch` judge prompts greedily
for `--max-tokens` tokens, once free and once under the judge's verdict schema
(rewards.judge.VERDICT_SCHEMA); prints generated tokens/s of each and their ratio.

Protocols mode (--protocols N): the builtin role-play simulator (zoo entry roleplay2-cpu, its user
turns capped at `--sim-max-tokens`; float32 + torch int8 as the zoo entry says) replies once to N
bundled-sample conversations (opening + one canned assistant turn), and the builtin judge
(rewards.judge.JudgeReward, float32 + int8 as in the CPU demo, its verdicts capped at
`--judge-max-tokens`) scores them, each with `json_schema` off and on (`--schema-only`: on only);
prints the simulator's JSON fallbacks (replies not read as a JSON object) and the judge's parsed
verdicts. The CPU demo's settings: `--protocols 32 --sim-max-tokens 40 --judge-max-tokens 32`.

Mask-cost mode (--mask-cost): the same judge prompts decoded greedily under the verdict schema,
once without and once with closing mode (engines/constrained.py); prints the time per decoding
step spent in the constraint's mask (grammar fills, closing walks), the walks made and the steps
spent closing.

Compare mode (--compare): for each library that imports (xgrammar; outlines_core and
lm-format-enforcer when installed, e.g. `pip install --target DIR outlines_core
lm-format-enforcer interegular` and PYTHONPATH=DIR), on the builtin tokenizer (49k tokens):
the time to compile the verdict schema, and the time per decoding step to compute the allowed-
token mask for `--batch` rows and advance them by one token, stepping through the tokens of a
fixed valid verdict (teacher forcing, so every library walks the same path). Prints the 1-minute
load average with the figures: on a shared machine they are inflated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DOC = {"rationale": "The assistant answered the question directly, with one clear example, and "
                    "asked nothing it did not need.", "score": 7}


def _load_avg() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"


def engine_speed(batch: int, max_tokens: int) -> dict[str, float]:
    """Generated tokens/s of the builtin model, free and under the verdict schema."""
    from corpora.types import Message
    from engines.base import Sampling
    from engines.spec import load_chat_engine
    from rewards.judge import VERDICT_SCHEMA

    engine = load_chat_engine("builtin:smollm2-135m-instruct", dtype="float32")
    prompts = [engine.render([Message("system", "Rate the reply from 0 to 10 as JSON with a "
                                                "rationale and a score."),
                              Message("user", f"Question {i}: how do I sort a list in Python? "
                                              f"Reply: use sorted(xs).")]) for i in range(batch)]
    engine.generate(prompts[:1], Sampling(temperature=0.0, max_tokens=4))  # warm-up
    out = {}
    for name, schema in (("free", None), ("schema", VERDICT_SCHEMA)):
        sampling = Sampling(temperature=0.0, max_tokens=max_tokens, json_schema=schema)
        start = time.perf_counter()
        outs = engine.generate(prompts, sampling)
        wall = time.perf_counter() - start
        tokens = sum(len(o.ids) for o in outs)
        out[f"{name}_tok_s"] = tokens / wall
        out[f"{name}_tokens"] = tokens
        out[f"{name}_parsed"] = sum(_parses(engine.tokenizer.decode(o.ids, skip_special_tokens=True))
                                    for o in outs)
    out["ratio"] = out["schema_tok_s"] / out["free_tok_s"]
    return out


def mask_cost(batch: int, max_tokens: int) -> dict[str, dict[str, float]]:
    """Per-step mask time for the verdict schema without and with closing mode (see docstring)."""
    import engines.constrained as constrained
    from corpora.types import Message
    from engines.base import Sampling
    from engines.spec import load_chat_engine
    from rewards.judge import VERDICT_SCHEMA

    engine = load_chat_engine("builtin:smollm2-135m-instruct", dtype="float32")
    prompts = [engine.render([Message("system", "Rate the reply from 0 to 10 as JSON with a "
                                                "rationale and a score."),
                              Message("user", f"Question {i}: how do I sort a list in Python? "
                                              f"Reply: use sorted(xs).")]) for i in range(batch)]
    made: list[Any] = []
    spent = {"s": 0.0, "steps": 0}
    mask, make = constrained.JsonConstraint.mask, constrained.JsonGrammars.constraint

    def timed_mask(self: Any, logits: Any, step: int | None = None) -> None:
        start = time.perf_counter()
        mask(self, logits, step)
        spent["s"] += time.perf_counter() - start
        spent["steps"] += 1

    out = {}
    try:
        constrained.JsonConstraint.mask = timed_mask
        for closing in (False, True):
            def build(self: Any, schemas: Any, *, max_tokens: int | None = None,
                      _closing: bool = closing) -> Any:
                made.append(make(self, schemas, max_tokens=max_tokens if _closing else None))
                return made[-1]
            constrained.JsonGrammars.constraint = build
            spent.update(s=0.0, steps=0)
            engine.generate(prompts, Sampling(temperature=0.0, max_tokens=max_tokens,
                                              json_schema=VERDICT_SCHEMA))
            out["closing" if closing else "plain"] = {
                "mask_ms_per_step": spent["s"] / max(1, spent["steps"]) * 1000,
                "steps": spent["steps"], **made[-1].stats}
    finally:
        constrained.JsonConstraint.mask, constrained.JsonGrammars.constraint = mask, make
    return out


def protocols(n: int, sim_max_tokens: int, judge_max_tokens: int | None = None,
              schema_only: bool = False) -> dict[str, dict[str, int]]:
    """Simulator JSON fallbacks and judge parse counts, schema off and on (see the docstring)."""
    from corpora.tasks import read_tasks
    from corpora.types import Episode, Message
    from engines.spec import load_chat_engine
    from rewards.judge import JUDGE_SAMPLING, JudgeReward
    from simulators.zoo import load_simulator

    def float32(spec: str, **options: Any) -> Any:  # bfloat16 decodes ~4x slower on this CPU
        return load_chat_engine(spec, **{"dtype": "float32", **options})

    tasks = read_tasks("sample")[:n]
    engine = float32("builtin:smollm2-135m-instruct", quantize="int8")  # the demo's judge
    judge_sampling = JUDGE_SAMPLING.with_(max_tokens=judge_max_tokens or JUDGE_SAMPLING.max_tokens)
    out = {}
    for on in ((True,) if schema_only else (False, True)):
        sim = load_simulator("roleplay2-cpu", seed=0, engine_loader=float32)
        sim.json_schema = on
        sim.sampling = sim.sampling.with_(max_tokens=sim_max_tokens)
        episodes = [Episode(task=t, simulator=sim.name, group_id=t.task_id) for t in tasks]
        for ep, opening in zip(episodes, sim.open(episodes)):
            ep.messages += [Message("user", opening),
                            Message("assistant", "Sure. Could you tell me a bit more about what "
                                                 "you need, so I can help?")]
        replies = sim.reply(episodes)
        fallbacks = sum(ep.sim_details.get("json_fallbacks", 0) for ep in episodes)
        for ep, turn in zip(episodes, replies):
            ep.messages.append(Message("user", turn.text))
        judge = JudgeReward([engine], names=["builtin"],
                            sampling=judge_sampling.with_(json_schema=None if not on else
                                                          JUDGE_SAMPLING.json_schema))
        results = judge.score(episodes)
        out["schema" if on else "free"] = {
            "replies": len(replies), "sim_json_fallbacks": fallbacks,
            "verdicts": len(results), "verdicts_parsed": sum(r.details["valid_judges"] for r in results)}
    return out


def _parses(text: str) -> bool:
    try:
        doc = json.loads(text)
    except ValueError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("score"), int)


def _xgrammar(tokenizer: Any, schema: dict, vocab: int) -> tuple[Callable, Callable]:
    import xgrammar as xgr

    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab)
    compiler = xgr.GrammarCompiler(info)

    def build(batch: int):
        grammar = compiler.compile_json_schema(json.dumps(schema), any_whitespace=False)
        matchers = [xgr.GrammarMatcher(grammar) for _ in range(batch)]
        bitmask = xgr.allocate_token_bitmask(batch, vocab)

        def step(logits, token: int) -> None:
            for i, m in enumerate(matchers):
                m.fill_next_token_bitmask(bitmask, i)
            xgr.apply_token_bitmask_inplace(logits, bitmask, vocab_size=vocab)
            for m in matchers:
                assert m.accept_token(token)
        return step
    return build, lambda: None


def _outlines_core(tokenizer: Any, schema: dict, vocab: int) -> tuple[Callable, Callable]:
    from outlines_core import Guide, Index, Vocabulary
    from outlines_core.json_schema import build_regex_from_schema
    from outlines_core.kernels.torch import (allocate_token_bitmask, apply_token_bitmask_inplace,
                                             fill_next_token_bitmask)

    words: dict[str, list[int]] = {}
    for token, tid in tokenizer.get_vocab().items():
        if tid != tokenizer.eos_token_id:
            words.setdefault(tokenizer.convert_tokens_to_string([token]), []).append(tid)
    vocabulary = Vocabulary(tokenizer.eos_token_id, words)

    def build(batch: int):
        index = Index(build_regex_from_schema(json.dumps(schema), r"[ ]?"), vocabulary)
        guides = [Guide(index) for _ in range(batch)]
        masks = [allocate_token_bitmask(vocab) for _ in range(batch)]

        def step(logits, token: int) -> None:
            for i, g in enumerate(guides):
                fill_next_token_bitmask(g, masks[i])
                apply_token_bitmask_inplace(logits[i:i + 1], masks[i])
            for g in guides:
                g.advance(token)
        return step
    return build, lambda: None


def _lmfe(tokenizer: Any, schema: dict, vocab: int) -> tuple[Callable, Callable]:
    import torch
    from lmformatenforcer import JsonSchemaParser, TokenEnforcer
    from lmformatenforcer.integrations.transformers import build_token_enforcer_tokenizer_data

    data = build_token_enforcer_tokenizer_data(tokenizer)

    def build(batch: int):
        enforcers = [TokenEnforcer(data, JsonSchemaParser(schema)) for _ in range(batch)]
        prefix: list[int] = [tokenizer.bos_token_id or 0]

        def step(logits, token: int) -> None:
            for i, e in enumerate(enforcers):
                allowed = e.get_allowed_tokens(prefix)
                allowed = getattr(allowed, "allowed_tokens", allowed)
                mask = torch.full((vocab,), float("-inf"))
                mask[torch.as_tensor(list(allowed))] = 0
                logits[i] += mask
            prefix.append(token)
        return step
    return build, lambda: None


def compare(batch: int) -> dict[str, dict[str, float]]:
    """Compile time and per-step mask time of each library that imports (see the docstring)."""
    import torch
    from transformers import AutoTokenizer

    from engines.builtin import builtin_model_dir
    from rewards.judge import VERDICT_SCHEMA

    tokenizer = AutoTokenizer.from_pretrained(builtin_model_dir("smollm2-135m-instruct"))
    vocab = len(tokenizer)
    tokens = tokenizer.encode(json.dumps(DOC), add_special_tokens=False)
    results = {}
    for name, setup in (("xgrammar", _xgrammar), ("outlines_core", _outlines_core),
                        ("lm-format-enforcer", _lmfe)):
        try:
            start = time.perf_counter()
            build, _ = setup(tokenizer, VERDICT_SCHEMA, vocab)
            prep = time.perf_counter() - start
            start = time.perf_counter()
            step = build(batch)
            compile_s = time.perf_counter() - start
        except ImportError as err:
            print(f"{name}: not installed ({err})")
            continue
        logits = torch.zeros(batch, vocab)
        start = time.perf_counter()
        for tok in tokens:
            step(logits, tok)
        per_step = (time.perf_counter() - start) / len(tokens)
        results[name] = {"tokenizer_prep_s": prep, "compile_s": compile_s,
                         "mask_ms_per_step": per_step * 1000, "steps": len(tokens)}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=4, help="rows decoded together")
    parser.add_argument("--max-tokens", type=int, default=96, help="token cap per row")
    parser.add_argument("--compare", action="store_true", help="also compare the libraries")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--protocols", type=int, default=0, help="also measure simulator JSON "
                        "fallbacks and judge parse rates on this many sample conversations")
    parser.add_argument("--sim-max-tokens", type=int, default=96, help="protocols mode: the "
                        "simulator's token cap per user turn")
    parser.add_argument("--judge-max-tokens", type=int, default=0, help="protocols mode: the "
                        "judge's token cap per verdict (0 = the judge's default, 512)")
    parser.add_argument("--schema-only", action="store_true", help="protocols mode: measure "
                        "with json_schema on only")
    parser.add_argument("--mask-cost", action="store_true", help="also time the mask per step "
                        "without and with closing mode")
    parser.add_argument("--no-speed", action="store_true", help="skip the engine tokens/s run")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
          f"load average (1 min) at start {_load_avg()}")
    if args.compare:
        for name, r in compare(args.batch).items():
            print(f"{name:20s} tokenizer prep {r['tokenizer_prep_s']:.2f} s, compile "
                  f"{r['compile_s']:.3f} s, mask {r['mask_ms_per_step']:.2f} ms/step for "
                  f"{args.batch} rows ({r['steps']} steps)")
    if args.protocols:
        for mode, r in protocols(args.protocols, args.sim_max_tokens, args.judge_max_tokens or None,
                                 args.schema_only).items():
            print(f"json_schema {'on ' if mode == 'schema' else 'off'}: simulator JSON fallbacks "
                  f"{r['sim_json_fallbacks']}/{r['replies']} replies, judge verdicts parsed "
                  f"{r['verdicts_parsed']}/{r['verdicts']}")
    if args.mask_cost:
        for mode, r in mask_cost(args.batch, args.max_tokens).items():
            print(f"mask, {mode:7s}: {r['mask_ms_per_step']:.2f} ms/step for {args.batch} rows over "
                  f"{r['steps']} steps; walks {r['walks']}, closing steps {r['closing_steps']}")
    if args.no_speed:
        print(f"load average (1 min) at end {_load_avg()}")
        return 0
    r = engine_speed(args.batch, args.max_tokens)
    print(f"builtin engine, batch {args.batch}: free {r['free_tok_s']:.1f} tok/s "
          f"({r['free_parsed']}/{args.batch} verdicts parse), schema {r['schema_tok_s']:.1f} tok/s "
          f"({r['schema_parsed']}/{args.batch} parse); schema/free = {r['ratio']:.2f}; "
          f"load average (1 min) at end {_load_avg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
