"""The TokenEngine side of the `openai:` engine: token ids in and out over `/v1/completions`.

`OpenAIChatEngine.generate` (engines/http.py) sends each prompt through the engine's request
machinery (endpoint pool, retries, load balancing); this module says what is sent and how the
answer is read. The wire format is that of vLLM's OpenAI-compatible server (checked against
vllm 0.31, entrypoints/openai/completion/protocol.py and serving.py):

- request: ``prompt`` is the list of token ids (no text, so no re-tokenisation and no chat
  template on the server); temperature, top_p, max_tokens, stop, seed (+ the prompt's index, as
  for chat), ``response_format`` for a JSON schema; ``return_token_ids: true`` asks for the
  generated ids (``choices[0].token_ids``); with log-probabilities wanted, ``logprobs: 0`` (the
  sampled token's only) and ``return_tokens_as_token_ids: true``, so ``logprobs.tokens`` reads
  "token_id:N" — the ids are taken from there when a server does not return ``token_ids``;
  ``skip_special_tokens: false`` keeps special tokens in the text; with a tokenizer, its EOS id
  is also sent as a stop token id (the server stops there whatever its generation config says).
- answer: ids end with the end-of-turn token when generation stopped on it (vLLM keeps it in
  ``token_ids``); finish_reason "stop" or "length" (anything else is an error); when the server
  stopped on one of `sampling.stop` (``stop_reason``), the ids are cut before the stop string as
  the other engines do (needs the tokenizer). vLLM's log-probabilities are those of the model's
  raw distribution (its default ``logprobs_mode``), not of the temperature-scaled one.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from engines.base import Sampling, TokenOutput
from engines.http import EngineRequestError, RetryableError, snippet

TOKEN_ID_PREFIX = "token_id:"  # vLLM's form of a token with return_tokens_as_token_ids


def load_tokenizer(name_or_path: str) -> Any:
    """A Hugging Face tokenizer from a local folder or hub id; a clear error when it cannot load."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"tokenizer {name_or_path!r} could not be loaded ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); name the served model's folder (for a "
            "fine-tuned user: the OUT/merged folder `train_simulator --save_merged true` writes) or "
            "a hub id reachable from this machine") from None


def completion_body(engine: Any, index: int, prompt_ids: Sequence[int], sampling: Sampling,
                    logprobs: bool) -> dict[str, Any]:
    """The JSON body of /completions request `index` for one prompt of token ids."""
    if len(prompt_ids) == 0:
        raise ValueError(f"prompt {index} is empty: every prompt needs at least one token")
    body: dict[str, Any] = {
        "model": engine.model, "prompt": [int(t) for t in prompt_ids],
        "temperature": sampling.temperature, "top_p": sampling.top_p,
        "max_tokens": sampling.max_tokens, "return_token_ids": True, "skip_special_tokens": False,
    }
    if logprobs:
        body.update(logprobs=0, return_tokens_as_token_ids=True)
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    if sampling.seed is not None:
        body["seed"] = sampling.seed + index
    eos = getattr(engine.tokenizer, "eos_token_id", None)
    if isinstance(eos, int):
        body["stop_token_ids"] = [eos]
    if sampling.json_schema is not None:
        body["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "output", "schema": sampling.json_schema, "strict": True}}
    body.update(engine.extra_body)
    return body


def token_output(text: str, sampling: Sampling, tokenizer: Any = None, logprobs: bool = True
                 ) -> TokenOutput:
    """The TokenOutput of a /completions answer body (log-probabilities only when `logprobs`). A
    malformed body is retryable; an answer without ids, or that finished for another reason than
    stop/length, is an EngineRequestError."""
    try:
        choice = json.loads(text)["choices"][0]
        finish = choice.get("finish_reason")
        lp = choice.get("logprobs") or {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise RetryableError(f"malformed completions body {snippet(text)}") from None
    if finish not in ("stop", "length"):
        raise EngineRequestError(f"the completion finished with {finish!r}, not 'stop' or 'length' "
                                 f"{snippet(text)}")
    ids = choice.get("token_ids")
    if ids is None:
        ids = _ids_from_tokens(lp.get("tokens"), text)
    lps = lp.get("token_logprobs") if logprobs else None
    if not all(isinstance(t, int) for t in ids) or (logprobs and (
            not isinstance(lps, list) or len(lps) != len(ids)
            or not all(isinstance(x, (int, float)) for x in lps))):
        raise RetryableError(f"completions body with missing or inconsistent ids/logprobs {snippet(text)}")
    lps = [float(x) for x in lps] if logprobs else None
    stop_reason = choice.get("stop_reason")
    if sampling.stop and isinstance(stop_reason, str) and stop_reason in sampling.stop and tokenizer is not None:
        from engines.hf import cut_at_stop

        ids, _ = cut_at_stop(ids, sampling.stop, tokenizer)
        lps = lps[:len(ids)] if lps is not None else None
    return TokenOutput(ids=list(ids), logprobs=lps, finish=finish)


def _ids_from_tokens(tokens: Any, text: str) -> list[int]:
    """Ids from vLLM's "token_id:N" tokens (return_tokens_as_token_ids), for a server that does
    not return ``token_ids``; an EngineRequestError when the answer carries neither."""
    if not isinstance(tokens, list) or not all(
            isinstance(t, str) and t.startswith(TOKEN_ID_PREFIX) for t in tokens):
        raise EngineRequestError(
            "the server returned no generated token ids (neither choices[0].token_ids nor "
            f"'{TOKEN_ID_PREFIX}N' logprob tokens): the openai: engine's token side needs a server "
            f"that supports return_token_ids or return_tokens_as_token_ids, such as vLLM {snippet(text)}")
    try:
        return [int(t[len(TOKEN_ID_PREFIX):]) for t in tokens]
    except ValueError:
        raise RetryableError(f"malformed token ids in {snippet(text)}") from None
