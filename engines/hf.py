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

Decoding uses `model.generate` with left padding. Sampling is reproducible for the same inputs,
batch and seed: the seed is applied inside `torch.random.fork_rng`, so the caller's random state
is left untouched.
"""

from __future__ import annotations

import contextlib
from typing import Any, Sequence

import torch

from corpora.types import Message
from engines.base import Sampling, TokenOutput


class _LogprobRecorder:
    """Logits processor: scales logits by 1/temperature and records log p(sampled id).

    At step k it sees the ids sampled up to step k-1, so it looks up the previous step's
    distribution at the newest id; `finish` does the same for the last step.
    """

    def __init__(self, temperature: float):
        self.temperature = temperature
        self.prev: torch.Tensor | None = None  # (B, V) log-softmax of the previous step
        self.steps: list[torch.Tensor] = []    # one (B,) tensor per generated token

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self._take(input_ids[:, -1])
        scaled = scores / self.temperature
        self.prev = torch.log_softmax(scaled.float(), dim=-1)
        return scaled

    def _take(self, last_ids: torch.Tensor) -> None:
        if self.prev is not None:
            self.steps.append(self.prev.gather(1, last_ids[:, None].to(self.prev.device))[:, 0])

    def finish(self, sequences: torch.Tensor) -> torch.Tensor:
        """Return (B, steps) log-probabilities of the generated ids."""
        self._take(sequences[:, -1])
        self.prev = None
        if not self.steps:
            return torch.zeros(sequences.shape[0], 0)
        return torch.stack(self.steps, dim=1).cpu()


class _StopRecorder:
    """Stopping criterion: a row is done on an end-of-turn id or once its text holds a stop string.

    Records, per row, how many tokens had been generated when it finished (`done_at`, -1 while
    running), so trailing padding is never mistaken for output.
    """

    def __init__(self, prompt_len: int, batch: int, eos_ids: set[int], stop: Sequence[str],
                 tokenizer: Any):
        self.prompt_len = prompt_len
        self.done_at = [-1] * batch
        self.eos_ids = eos_ids
        self.stop = tuple(stop)
        self.tokenizer = tokenizer
        self.window = max((len(s) for s in self.stop), default=0) + 8  # tokens to decode per check

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        n = input_ids.shape[1] - self.prompt_len
        last = input_ids[:, -1].tolist()
        for row, tok in enumerate(last):
            if self.done_at[row] >= 0:
                continue
            if tok in self.eos_ids or (self.stop and self._has_stop(input_ids[row, -min(n, self.window):])):
                self.done_at[row] = n
        return torch.tensor([d >= 0 for d in self.done_at], device=input_ids.device)

    def _has_stop(self, tail: torch.Tensor) -> bool:
        text = self.tokenizer.decode(tail.tolist(), skip_special_tokens=False)
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
    name:         a label for caches and logs (the spec string when loaded from one)
    """

    def __init__(self, model: Any, tokenizer: Any, *, eos_token_ids: Sequence[int] | None = None,
                 batch_size: int = 64, name: str = "hf"):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.name = name
        self.eos_token_ids = set(eos_token_ids) if eos_token_ids is not None else _default_eos(model, tokenizer)
        if not self.eos_token_ids:
            raise ValueError("the tokenizer and the model's generation_config name no EOS token: "
                             "pass eos_token_ids=[...] to HFEngine")
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else min(self.eos_token_ids)

    def __repr__(self) -> str:
        return f"HFEngine(name={self.name!r})"

    # ---- TokenEngine -------------------------------------------------------------------------
    def generate(self, prompt_ids: Sequence[Sequence[int]], sampling: Sampling) -> list[TokenOutput]:
        """Generate one continuation per prompt (see the module docstring for what is returned)."""
        for i, p in enumerate(prompt_ids):
            if len(p) == 0:
                raise ValueError(f"prompt {i} is empty: every prompt needs at least one token")
        outputs: list[TokenOutput] = []
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), _seeded(sampling.seed, self._device()):
                for start in range(0, len(prompt_ids), self.batch_size):
                    outputs += self._generate_batch(prompt_ids[start:start + self.batch_size], sampling)
        finally:
            self.model.train(was_training)
        return outputs

    def _generate_batch(self, prompts: Sequence[Sequence[int]], sampling: Sampling) -> list[TokenOutput]:
        from transformers import LogitsProcessorList, StoppingCriteriaList, TopPLogitsWarper

        input_ids, attention_mask = left_pad(prompts, self.pad_token_id, self._device())
        greedy = sampling.temperature == 0
        recorder = _LogprobRecorder(1.0 if greedy else sampling.temperature)
        processors = [recorder]
        if not greedy and sampling.top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p=sampling.top_p))
        stopper = _StopRecorder(input_ids.shape[1], len(prompts), self.eos_token_ids, sampling.stop,
                                self.tokenizer)
        sequences = self.model.generate(
            input_ids=input_ids, attention_mask=attention_mask,
            generation_config=self._generation_config(sampling),
            logits_processor=LogitsProcessorList(processors),
            stopping_criteria=StoppingCriteriaList([stopper]),
        )
        logprobs = recorder.finish(sequences)
        generated = sequences[:, input_ids.shape[1]:].cpu()
        return [self._output(generated[row], logprobs[row], stopper.done_at[row], sampling)
                for row in range(len(prompts))]

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

    def _generation_config(self, sampling: Sampling) -> Any:
        """A generation config that leaves the sampling to our processors: every default warper or
        penalty the model's own generation_config might carry is switched off explicitly."""
        from transformers import GenerationConfig

        do_sample = sampling.temperature > 0
        warpers = dict(temperature=1.0, top_p=1.0, top_k=0, typical_p=1.0, epsilon_cutoff=0.0,
                       eta_cutoff=0.0) if do_sample else {}  # greedy ignores warpers anyway
        return GenerationConfig(
            max_new_tokens=sampling.max_tokens, do_sample=do_sample, **warpers,
            repetition_penalty=1.0, no_repeat_ngram_size=0, num_beams=1, num_return_sequences=1,
            renormalize_logits=False, use_cache=True, eos_token_id=sorted(self.eos_token_ids),
            pad_token_id=self.pad_token_id, return_dict_in_generate=False, output_scores=False,
        )

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


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int,
             device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad prompts to one length.

    Returns input_ids (B, L) and attention_mask (B, L), L = the longest prompt; the mask is 0 on
    padding. Left padding keeps every prompt's last token in the last column, where generation
    continues.
    """
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        if len(p):
            ids[row, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
            mask[row, width - len(p):] = 1
    return ids.to(device), mask.to(device)


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


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device):
    """Seed torch's RNG for the block and restore the caller's RNG state afterwards."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def load_hf(path_or_id: str, *, dtype: str | torch.dtype = "auto", adapter: str | None = None,
            device: str | None = None) -> tuple[Any, Any]:
    """Load (model, tokenizer) from a folder or hub id, optionally with a peft LoRA adapter on top.

    dtype: "auto" (the checkpoint's), "float32", "bfloat16", "float16" or a torch.dtype.
    adapter: a peft adapter folder. When it holds its own tokenizer (saved by a fine-tune that
      added tokens), that tokenizer is used and the base embeddings are resized to it before the
      adapter, which carries the new rows, is attached.
    device: "cpu", "cuda", "cuda:1", …; default: cuda when available, else cpu.
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
    return model, tokenizer
