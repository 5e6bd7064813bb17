"""Local transformers backend: HFEngine wraps an already-loaded (model, tokenizer) pair.

It implements both interfaces of engines/base.py, so the same class serves a judge or simulator
loaded from disk (`load_hf`) and the live policy model inside a trainer (wrap the model object the
trainer is updating; peft-wrapped models work too).

What `generate` returns (one TokenOutput per prompt):
- ids: the generated ids, the end-of-turn token included when generation stopped on it, nothing
  after it (no padding). With stop strings, ids are cut to the tokens covering the text before the
  first stop string (a token that straddles the boundary is kept, so it is never re-tokenised).
- logprobs: log-softmax of the temperature-scaled logits, `log_softmax(logits / T)`, at the sampled
  id (T = 1 for greedy). This is the distribution before top-p truncation, i.e. the quantity a
  GRPO trainer recomputes (`logits / temperature`) for its importance-sampling ratio; with
  top_p = 1 it is exactly the distribution sampled from.
- finish: "stop" (end-of-turn token or stop string) or "length" (max_tokens reached).

Structured output: a prompt whose schema is set (`sampling.json_schema`, or per prompt with
`generate(..., json_schemas=[...])`) is decoded under a JSON-schema logits mask
(engines/constrained.py, xgrammar): it can only produce a schema-valid document, ended by the
end-of-turn token, and it closes the document within `max_tokens` (closing mode, when the schema's
shortest document fits). Its log-probs are those of the masked distribution it was sampled from. Rows
without a schema in the same batch are decoded exactly as they would be alone.

Decoding is a plain loop over the model's forward pass with its KV cache: one pass over the
left-padded prompts (position ids from the attention mask, logits of the last position only; when
rows share long prompt prefixes, each prefix is computed once: engines/prefill.py), then one
single-token pass per step; top-p uses transformers' `TopPLogitsWarper`. When the model's own
weights are sharded (DeepSpeed ZeRO-3 partitioned parameters, FSDP) across several processes every
forward pass is a collective, so every rank makes the same passes: one batch per call (whatever
`batch_size`), and a rank whose rows are done — at an end-of-turn token or at ITS OWN max_tokens
(a rollout's 1-token dummy call) — keeps stepping until all ranks are done, as `model.generate`
does; an unsharded model (a local simulator or judge in a ZeRO-3 run) decodes on its own. Sampling is reproducible for the
same inputs, batch and seed: a seeded call draws from its own `torch.Generator`, so the caller's
random state is left untouched and two engines sampling at once in different threads (an
overlapped rollout) cannot disturb each other.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from corpora.types import Message
from engines.base import Sampling, TokenOutput
from engines.prefill import left_pad, plan_prefill, shared_prefill


class _StopWatch:
    """Tracks which rows of a batch have finished: on an end-of-turn id, or once the text of their
    newest tokens holds a stop string. `done_at[row]` is how many tokens the row had generated when
    it finished (-1 while running), so what is sampled after that is never mistaken for output."""

    def __init__(self, batch: int, eos_ids: set[int], stop: Sequence[str], tokenizer: Any,
                 device: torch.device):
        self.eos = torch.tensor(sorted(eos_ids), device=device)
        self.finished = torch.zeros(batch, dtype=torch.bool, device=device)
        self.done_at = [-1] * batch
        self.stop = tuple(s for s in stop if s)
        self.tokenizer = tokenizer
        self.window = max((len(s) for s in self.stop), default=0) + 8  # tokens to decode per check
        self.rows: list[list[int]] = [[] for _ in range(batch)]  # kept only when stop strings are set

    def update(self, step: int, tokens: torch.Tensor) -> bool:
        """Take the tokens sampled at `step` (0-based); return True when every row has finished."""
        hit = torch.isin(tokens, self.eos) & ~self.finished
        if self.stop:
            for row, tok in enumerate(tokens.tolist()):
                self.rows[row].append(tok)
                if not self.finished[row] and not hit[row] and self._has_stop(self.rows[row]):
                    hit[row] = True
        if bool(hit.any()):
            for row in hit.nonzero()[:, 0].tolist():
                self.done_at[row] = step + 1
            self.finished |= hit
            return bool(self.finished.all())
        return False

    def _has_stop(self, ids: list[int]) -> bool:
        text = self.tokenizer.decode(ids[-self.window:], skip_special_tokens=False)
        return any(s in text for s in self.stop)


def cut_at_stop(ids: list[int], stop: Sequence[str], tokenizer: Any) -> tuple[list[int], bool]:
    """Cut `ids` to the shortest prefix whose text covers everything before the first stop string.

    Returns (kept ids, whether a stop string was found). The kept ids decode to the text before the
    stop string, plus at most the rest of one token that straddles its start.
    """
    text = tokenizer.decode(ids, skip_special_tokens=False)
    hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    if not hits:
        return ids, False
    start = min(hits)
    for k in range(len(ids) + 1):
        prefix = tokenizer.decode(ids[:k], skip_special_tokens=False)
        if len(prefix) >= start and prefix[:start] == text[:start]:
            return ids[:k], True
    return ids, True


class HFEngine:
    """ChatEngine and TokenEngine over a transformers causal LM and its tokenizer.

    model:        a loaded causal LM (plain or peft-wrapped); it is put in eval mode while
                  generating and returned to its previous mode afterwards
    tokenizer:    its tokenizer; its chat template renders conversations for `chat`
    eos_token_ids: ids that end a turn; default: the tokenizer's EOS plus the model's
                  generation_config EOS
    batch_size:   prompts per `model.generate` call (longer lists are split)
    share_prefixes: compute prompt prefixes shared by several rows once (engines/prefill.py)
    name:         a label for caches and logs (the spec string when loaded from one)
    """

    def __init__(self, model: Any, tokenizer: Any, *, eos_token_ids: Sequence[int] | None = None,
                 batch_size: int = 64, name: str = "hf", share_prefixes: bool = True):
        self.model = model
        self.share_prefixes = share_prefixes
        #: prompt-pass counters: padded tokens a plain pass would compute, tokens saved by sharing
        self.prefill_stats = {"plain_tokens": 0, "shared_tokens_saved": 0, "calls_plain": 0,
                              "calls_shared": 0}
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.name = name
        self.eos_token_ids = set(eos_token_ids) if eos_token_ids is not None else _default_eos(model, tokenizer)
        if not self.eos_token_ids:
            raise ValueError("the tokenizer and the model's generation_config name no EOS token: "
                             "pass eos_token_ids=[...] to HFEngine")
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else min(self.eos_token_ids)
        self._logits_to_keep: bool | None = None
        self._grammars: Any = None  # engines.constrained.JsonGrammars, built on first use

    def __repr__(self) -> str:
        return f"HFEngine(name={self.name!r})"

    # ---- TokenEngine -------------------------------------------------------------------------
    def generate(self, prompt_ids: Sequence[Sequence[int]], sampling: Sampling, *,
                 json_schemas: Sequence[dict[str, Any] | None] | None = None) -> list[TokenOutput]:
        """Generate one continuation per prompt (see the module docstring for what is returned).

        json_schemas: one JSON schema (or None: unconstrained) per prompt, for a batch that mixes
                      them; default: every prompt follows `sampling.json_schema`.
        """
        for i, p in enumerate(prompt_ids):
            if len(p) == 0:
                raise ValueError(f"prompt {i} is empty: every prompt needs at least one token")
        if json_schemas is None:
            json_schemas = [sampling.json_schema] * len(prompt_ids)
        elif len(json_schemas) != len(prompt_ids):
            raise ValueError(f"json_schemas has {len(json_schemas)} entries for {len(prompt_ids)} "
                             "prompts: give one schema (or None) per prompt")
        outputs: list[TokenOutput] = []
        synced = _synced_decoding(self.model)
        # synced: one batch, so every rank makes one prompt pass per call (batch counts would differ)
        size = max(1, len(prompt_ids)) if synced else self.batch_size
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(prompt_ids), size):
                    end = start + size
                    outputs += self._generate_batch(prompt_ids[start:end], sampling,
                                                    json_schemas[start:end], synced)
        finally:
            self.model.train(was_training)
        return outputs

    def _generate_batch(self, prompts: Sequence[Sequence[int]], sampling: Sampling,
                        schemas: Sequence[dict[str, Any] | None],
                        synced: bool = False) -> list[TokenOutput]:
        """Decode one batch with the KV cache: one forward pass over the left-padded prompts, then
        one single-token forward pass per step until every row has finished or `max_tokens`.
        synced: the passes are collectives; go on (keeping nothing) while any rank decodes."""
        device = self._device()
        greedy = sampling.temperature == 0
        temperature = 1.0 if greedy else sampling.temperature
        top_p = None
        if not greedy and sampling.top_p < 1.0:
            from transformers import TopPLogitsWarper

            top_p = TopPLogitsWarper(top_p=sampling.top_p)
        watch = _StopWatch(len(prompts), self.eos_token_ids, sampling.stop, self.tokenizer, device)
        rng = None if sampling.seed is None else torch.Generator(device).manual_seed(sampling.seed)
        pad = torch.full((len(prompts),), self.pad_token_id, dtype=torch.long, device=device)
        extra = {"logits_to_keep": 1} if self._keeps_logits else {}
        plan = None if synced or not self.share_prefixes else plan_prefill(prompts)
        if plan is not None:
            out, mask, positions = shared_prefill(self.model, prompts, plan, self.pad_token_id,
                                                  device, extra)
            self.prefill_stats["shared_tokens_saved"] += plan.plain_cost - plan.cost
        else:
            input_ids, mask = left_pad(prompts, self.pad_token_id, device)
            positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
            out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                             use_cache=True, **extra)
        self.prefill_stats["plain_tokens"] += len(prompts) * max(len(p) for p in prompts)
        self.prefill_stats["calls_shared" if plan is not None else "calls_plain"] += 1
        constraint = self._constraint(schemas, out.logits.shape[-1], sampling.max_tokens)
        tokens: list[torch.Tensor] = []
        logprobs: list[torch.Tensor] = []
        local_done = False
        step = 0
        while True:
            logits = out.logits[:, -1, :].float()
            if constraint is not None:
                constraint.mask(logits, step)
            scaled = logits / temperature
            logp = torch.log_softmax(scaled, dim=-1)
            if greedy:
                tok = logp.argmax(dim=-1)
            else:
                weights = logp if top_p is None else top_p(None, scaled)
                tok = sample_categorical(torch.softmax(weights, dim=-1), rng)
            tok = torch.where(watch.finished, pad, tok)
            if not local_done:
                if constraint is not None:
                    constraint.accept(tok, watch.finished)
                tokens.append(tok)
                logprobs.append(logp.gather(1, tok[:, None])[:, 0])
                local_done = watch.update(step, tok) or step + 1 >= sampling.max_tokens
            if not _keep_decoding(local_done, synced, device):
                break
            step += 1
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            positions = positions[:, -1:] + 1
            out = self.model(input_ids=tok[:, None], attention_mask=mask, position_ids=positions,
                             past_key_values=out.past_key_values, use_cache=True)
        ids = torch.stack(tokens, dim=1).cpu()
        lps = torch.stack(logprobs, dim=1).cpu()
        return [self._output(ids[row], lps[row], watch.done_at[row], sampling)
                for row in range(len(prompts))]

    def _constraint(self, schemas: Sequence[dict[str, Any] | None], vocab_size: int,
                    max_tokens: int) -> Any:
        """The batch's JSON-schema mask (engines/constrained.py), closing each constrained row's
        document within `max_tokens` (every row of a batch has the same budget), or None when no
        row has a schema."""
        if all(s is None for s in schemas):
            return None
        if self._grammars is None or self._grammars.vocab_size != vocab_size:
            from engines.constrained import JsonGrammars

            self._grammars = JsonGrammars(self.tokenizer, vocab_size, self.eos_token_ids)
        return self._grammars.constraint(schemas, max_tokens=max_tokens)

    @property
    def _keeps_logits(self) -> bool:
        """Whether the model's forward takes `logits_to_keep` (so the prompt pass computes the
        logits of the last position only)."""
        if self._logits_to_keep is None:
            import inspect

            base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
            self._logits_to_keep = "logits_to_keep" in inspect.signature(base.forward).parameters
        return self._logits_to_keep

    def _output(self, ids_row: torch.Tensor, lp_row: torch.Tensor, done_at: int,
                sampling: Sampling) -> TokenOutput:
        n = done_at if done_at >= 0 else min(len(ids_row), sampling.max_tokens)
        ids, lps = ids_row[:n].tolist(), lp_row[:n].tolist()
        if ids and ids[-1] in self.eos_token_ids:
            return TokenOutput(ids=ids, logprobs=lps, finish="stop")
        if sampling.stop:
            kept, found = cut_at_stop(ids, sampling.stop, self.tokenizer)
            if found:
                return TokenOutput(ids=kept, logprobs=lps[:len(kept)], finish="stop")
        return TokenOutput(ids=ids, logprobs=lps, finish="length")

    def _device(self) -> torch.device:
        try:
            return next(self.model.parameters()).device
        except StopIteration:  # pragma: no cover - a model without parameters
            return torch.device("cpu")

    # ---- ChatEngine --------------------------------------------------------------------------
    def chat(self, conversations: Sequence[Sequence[Message]], sampling: Sampling) -> list[str]:
        """Render each conversation with the chat template, generate, return the stripped replies."""
        prompts = [self.render(conv) for conv in conversations]
        outs = self.generate(prompts, sampling)
        return [self.tokenizer.decode(o.ids, skip_special_tokens=True).strip() for o in outs]

    def render(self, conversation: Sequence[Message]) -> list[int]:
        """Token ids of a conversation rendered with the chat template, ending with the assistant header."""
        messages = [m.as_dict() if isinstance(m, Message) else dict(m) for m in conversation]
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                 return_dict=False)
        return list(ids)


def sample_categorical(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One index per row of `probs` (B, V), row i drawn with probability probs[i] / probs[i].sum().

    Inverse-CDF sampling: draw u ~ U[0, 1) per row and take the first index whose cumulative mass
    exceeds u · total (in float64, so u · total < total). A zero-probability entry adds nothing to
    the cumulative mass and is never taken. Same distribution as `torch.multinomial(probs, 1)`, at
    a small fraction of its CPU cost per decoding step. `generator`: where u comes from (default:
    torch's global generator).
    """
    cdf = probs.double().cumsum(dim=-1)
    u = torch.rand((probs.shape[0], 1), dtype=torch.float64, device=probs.device,
                   generator=generator) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True)[:, 0].clamp_(max=probs.shape[1] - 1)


def _synced_decoding(model: Any) -> bool:
    """Whether every rank must make the same number of forward passes: the model's OWN weights are
    sharded across more than one process right now (DeepSpeed ZeRO-3 parameters that are not
    gathered, or an FSDP module), so a forward pass is a collective that gathers them.

    Decided per model, not from the run's settings: a simulator or judge loaded as a plain model in
    a ZeRO-3 run is not sharded, runs only on the ranks that have work for it, and must take no
    part in collectives (syncing it would pair its all-reduces with another rank's unrelated
    collectives: a crash or a hang). Nor does a ZeRO-3 policy whose weights were gathered for
    generation (TRL's `ds3_gather_for_generation`, the default): its forward passes are local."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return False
    statuses = [getattr(p, "ds_status", None) for p in model.parameters()]
    if any(s is not None and getattr(s, "name", "") != "AVAILABLE" for s in statuses):
        return True  # ZeRO-3 partitioned parameters, not gathered
    try:
        from transformers.integrations.fsdp import is_fsdp_managed_module
    except ImportError:  # pragma: no cover - older transformers
        return False
    return bool(is_fsdp_managed_module(model))


def _keep_decoding(local_done: bool, synced: bool, device: torch.device) -> bool:
    """Go on decoding while this rank has a running row, or, when decoding is synced across ranks,
    while any rank has one (an all-reduce per step, as transformers' `generate` does)."""
    if not synced:
        return not local_done
    import torch.distributed as dist

    running = torch.tensor(0.0 if local_done else 1.0, device=device)
    dist.all_reduce(running, op=dist.ReduceOp.SUM)
    return running.item() > 0


def _default_eos(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen = getattr(model, "generation_config", None)
    eos = getattr(gen, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif eos:
        ids.update(int(e) for e in eos)
    return ids


def load_hf(path_or_id: str, *, dtype: str | torch.dtype = "auto", adapter: str | None = None,
            device: str | None = None, quantize: str | None = None) -> tuple[Any, Any]:
    """Load (model, tokenizer) from a folder or hub id, optionally with a peft LoRA adapter on top.

    dtype: "auto" (the checkpoint's), "float32", "bfloat16", "float16" or a torch.dtype.
    adapter: a peft adapter folder. When it holds its own tokenizer (saved by a fine-tune that
      added tokens), that tokenizer is used and the base embeddings are resized to it before the
      adapter, which carries the new rows, is attached.
    device: "cpu", "cuda", "cuda:1", …; default: cuda when available, else cpu.
    quantize: None, or "int8" for a frozen model on CPU (a simulator or judge, never a policy
      being trained): every nn.Linear, lm_head included, becomes torch's dynamically quantized
      int8 Linear (weights int8 per tensor, activations quantized on the fly), after an adapter is
      merged in. On a 2-core AVX2 CPU a batch-8 decoding matmul ran ~3.5x faster than float32;
      outputs differ from the float32 model's by quantization noise.
    """
    from pathlib import Path

    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = dtype if isinstance(dtype, torch.dtype) or dtype == "auto" else getattr(torch, dtype)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    own_tokenizer = bool(adapter) and (Path(adapter) / "tokenizer_config.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(adapter if own_tokenizer else path_or_id)
    model = AutoModelForCausalLM.from_pretrained(path_or_id, dtype=torch_dtype)
    if adapter:
        from peft import PeftModel

        if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        model = PeftModel.from_pretrained(model, adapter)
    model.to(device)
    model.eval()
    if quantize is not None:
        model = quantize_int8(model, quantize, device)
    return model, tokenizer


QUANTIZE_CHOICES = ("int8",)


def quantize_int8(model: Any, quantize: str, device: str) -> Any:
    """The model with its Linear layers dynamically quantized to int8 (see load_hf)."""
    if quantize not in QUANTIZE_CHOICES:
        raise ValueError(f"quantize must be one of {QUANTIZE_CHOICES} or unset, got {quantize!r}")
    if not str(device).startswith("cpu"):
        raise ValueError(f"quantize={quantize!r} is torch's CPU dynamic quantization; the model is "
                         f"on {device}: leave quantize unset on GPUs")
    import warnings

    from torch.ao.quantization import quantize_dynamic

    if hasattr(model, "merge_and_unload"):  # a peft adapter: fold it into the weights first
        model = model.merge_and_unload()
    model = model.float()
    with warnings.catch_warnings():  # torch.ao.quantization's deprecation notice
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8).eval()
