"""Structured output for the local engines: a JSON schema enforced as a logits mask at every
decoding step, with xgrammar.

HFEngine's decoding loop (engines/hf.py) uses it as a logits processor on a batch whose rows may
each carry a schema or none:

    grammars = JsonGrammars(tokenizer, vocab_size, eos_ids)   # once per engine
    constraint = grammars.constraint(schemas)  # None when no row carries a schema
    constraint.mask(logits)                    # before sampling: forbidden tokens get -inf
    constraint.accept(tokens, finished)        # after sampling: advance each running row

Rows without a schema are never touched (their logits, and so their samples and log-probs, are
those of the unconstrained model). A constrained row can only ever sample tokens that keep its
text a prefix of a document matching the schema; once the document is complete the grammar allows
only the end-of-turn ids, so a row that ends on its own ends with a complete, schema-valid JSON
document. A row cut by `max_tokens` is the one way to get an incomplete document: give JSON
replies a token budget that fits them.

`fit_schema(schema, max_tokens)` lowers the `maxLength` of an object schema's string properties so
that a whole document fits a reply's token budget (the callers that request schemas use it, for
every engine: a server's grammar cuts strings the same way).

Documents are compact (no whitespace between tokens, `strict_mode`: no properties beyond the
schema's), which keeps a small model from spending its budget on spaces and newlines. Compiled
grammars are cached per schema by xgrammar's compiler. Why xgrammar rather than outlines or
lm-format-enforcer: docs/engines.md ("Structured output on local engines").
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import torch

#: Characters per token assumed when sizing strings for a token budget: English prose runs at
#: about 4 characters per token with these tokenizers, but digits are one token each (a timestamp
#: in a 135M model's reply took a token per character), so 2 leaves room for mixed text.
CHARS_PER_TOKEN = 2
#: Tokens for one property's key, quotes, colon and separator; non-string values get as many more.
FIELD_TOKENS = 4


def fit_schema(schema: Mapping[str, Any], max_tokens: int, *,
               chars_per_token: int = CHARS_PER_TOKEN) -> dict[str, Any]:
    """A copy of the object `schema` whose string properties fit `max_tokens` tokens together.

    The budget in characters is (max_tokens − 2 − FIELD_TOKENS · properties − FIELD_TOKENS · non-
    string properties) · chars_per_token (at least one character per string). When the strings'
    own caps already fit it, the schema is returned unchanged; otherwise each string's cap becomes
    its share of the budget, in proportion to its own maxLength (a string with no cap weighs as
    much as the whole budget), never above its own maxLength. Example: {thought ≤ 300, response ≤
    2000} at 48 tokens → budget (48 − 10) · 2 = 76 → thought ≤ 9, response ≤ 66."""
    props = dict(schema.get("properties") or {})
    strings = [k for k, v in props.items() if isinstance(v, Mapping) and v.get("type") == "string"]
    if not strings:
        return dict(schema)
    overhead = 2 + FIELD_TOKENS * len(props) + FIELD_TOKENS * (len(props) - len(strings))
    budget = max(len(strings), (max_tokens - overhead) * chars_per_token)
    caps = {k: props[k].get("maxLength") for k in strings}
    if all(c is not None for c in caps.values()) and sum(caps.values()) <= budget:
        return dict(schema)
    weights = {k: caps[k] if caps[k] is not None else budget for k in strings}
    total = sum(weights.values())
    for k in strings:
        share = max(1, budget * weights[k] // total)
        props[k] = {**props[k], "maxLength": share if caps[k] is None else min(caps[k], share)}
    return {**schema, "properties": props}


class JsonGrammars:
    """Compiles JSON schemas for one tokenizer and hands out per-batch constraints.

    tokenizer:  the engine's Hugging Face tokenizer
    vocab_size: width of the model's logits (may exceed the tokenizer's vocabulary)
    eos_ids:    ids that end a turn; the only tokens allowed once a document is complete
    """

    def __init__(self, tokenizer: Any, vocab_size: int, eos_ids: Sequence[int]):
        try:
            import xgrammar
        except ImportError as err:  # pragma: no cover - a declared dependency
            raise ImportError("structured output on local engines needs xgrammar "
                              "(pip install xgrammar); it is a dependency of wildsim") from err
        self._xgr = xgrammar
        info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size,
                                                       stop_token_ids=sorted(int(i) for i in eos_ids))
        self._compiler = xgrammar.GrammarCompiler(info)
        self.vocab_size = vocab_size

    def compile(self, schema: Mapping[str, Any]) -> Any:
        """The compiled grammar of `schema` (cached by the compiler; a bad schema raises
        ValueError naming it)."""
        text = json.dumps(schema)
        try:
            return self._compiler.compile_json_schema(text, any_whitespace=False, strict_mode=True)
        except Exception as err:  # xgrammar raises RuntimeError subclasses on unsupported schemas
            raise ValueError(f"cannot compile json_schema {text[:200]}: {err}") from err

    def constraint(self, schemas: Sequence[Mapping[str, Any] | None]) -> "JsonConstraint | None":
        """A constraint over a batch whose row i follows schemas[i] (None = unconstrained), or
        None when no row carries a schema."""
        if all(s is None for s in schemas):
            return None
        matchers = [None if s is None else self._xgr.GrammarMatcher(self.compile(s)) for s in schemas]
        return JsonConstraint(self._xgr, matchers, self.vocab_size)


class JsonConstraint:
    """Per-step logits mask for the constrained rows of one batch (see the module docstring)."""

    def __init__(self, xgr: Any, matchers: list[Any], vocab_size: int):
        self._xgr = xgr
        self.matchers = matchers
        self.rows = [i for i, m in enumerate(matchers) if m is not None]
        self.vocab_size = vocab_size
        self._bitmask = xgr.allocate_token_bitmask(len(matchers), vocab_size)

    def mask(self, logits: torch.Tensor) -> None:
        """Set to -inf, in place, every logit (B, V) a constrained row's grammar forbids next.
        Rows whose grammar has terminated (the row has ended) are left as they are."""
        rows = [i for i in self.rows if not self.matchers[i].is_terminated()]
        if not rows:
            return
        for i in rows:
            self.matchers[i].fill_next_token_bitmask(self._bitmask, i)
        self._xgr.apply_token_bitmask_inplace(logits, self._bitmask.to(logits.device),
                                              vocab_size=self.vocab_size, indices=rows)

    def accept(self, tokens: torch.Tensor, finished: torch.Tensor) -> None:
        """Advance the matcher of every constrained row still running by the token (B,) it just
        sampled; rows already `finished` (B,) before this step are skipped."""
        toks = tokens.tolist()
        done = finished.tolist()
        for i in self.rows:
            matcher = self.matchers[i]
            if done[i] or matcher.is_terminated():
                continue
            if not matcher.accept_token(int(toks[i])):
                raise RuntimeError(f"row {i}: sampled token {toks[i]} that its grammar forbids "
                                   "(the mask was not applied to this step's logits)")
