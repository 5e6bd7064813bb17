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
document. Tokens holding a raw control character are masked too (the grammar lets strings hold
them; JSON does not).

Closing within max_tokens (`grammars.constraint(schemas, max_tokens=...)`, `mask(logits, step)`):
a row's need is the number of tokens a greedy walk on a fork of its matcher takes to complete the
document under the closing rule (at each state the shortest token, lowest id among equals, of
the rule's set), +1 for the end-of-turn id. When the row's budget left (max_tokens − step) is at
most need + CLOSE_MARGIN, the row is in closing mode and its grammar mask is narrowed to the
first non-empty of: the tokens covering most of the grammar's forced text (a key, its quotes and
colon), when there is forced text; tokens starting with a `"` that closes a string (a probe on a
fork: after it only `,` `}` `]` `:` or a space may follow); tokens starting with `}` or `]`; with
`,`; the end-of-turn ids; tokens starting with a `"` that opens something; the mask less escapes
and split UTF-8 characters. If at most EXACT_CHECK tokens are left, each is checked with a walk
of its own and only those after which the document still closes in budget are kept. The model
samples among what is left by its own probabilities. Within NEAR_SLACK more tokens of the budget,
a row not yet closing loses escapes, split characters, `{`, `[`, and where `}`/`]` could close,
`,` and opening quotes (tokens that would raise its need). Walks are made on a row's first step,
every NEAR_SLACK steps, and every step once near its budget, so they cost little elsewhere.
Guaranteed (up to the margin) for schemas whose properties are all required; with optional
properties or arrays a free token early on can open more than the margin covers.

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
#: Closing mode starts when a row's budget left is at most its closing walk's count plus this
#: many tokens (the spare absorbs a sampled token that closes less than the walk's pick).
CLOSE_MARGIN = 2
#: A row is walked every step once its last known need is within CLOSE_MARGIN + NEAR_SLACK of
#: its budget left, and every NEAR_SLACK steps before that.
NEAR_SLACK = 4
#: In closing mode, when the closing rule leaves at most this many tokens, each is checked with a
#: walk of its own and only those after which the document still closes in budget are kept.
EXACT_CHECK = 16
#: The longest closing walk made; a document that needs more counts as MAX_WALK + 1.
MAX_WALK = 64


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
        self.tokens = TokenClasses([bytes(b) for b in info.decoded_vocab], vocab_size, eos_ids)

    def compile(self, schema: Mapping[str, Any]) -> Any:
        """The compiled grammar of `schema` (cached by the compiler; a bad schema raises
        ValueError naming it)."""
        text = json.dumps(schema)
        try:
            return self._compiler.compile_json_schema(text, any_whitespace=False, strict_mode=True)
        except Exception as err:  # xgrammar raises RuntimeError subclasses on unsupported schemas
            raise ValueError(f"cannot compile json_schema {text[:200]}: {err}") from err

    def constraint(self, schemas: Sequence[Mapping[str, Any] | None], *,
                   max_tokens: int | None = None) -> "JsonConstraint | None":
        """A constraint over a batch whose row i follows schemas[i] (None = unconstrained), or
        None when no row carries a schema. max_tokens: the rows' token budget; when given, each
        constrained row closes its document within it (closing mode, see the module docstring)."""
        if all(s is None for s in schemas):
            return None
        matchers = [None if s is None else self._xgr.GrammarMatcher(self.compile(s)) for s in schemas]
        return JsonConstraint(self._xgr, matchers, self.vocab_size, tokens=self.tokens,
                              max_tokens=max_tokens)


def _pack(allowed: torch.Tensor) -> torch.Tensor:
    """A bool vector (V,) as xgrammar's bitmask row: int32 words, bit j of word w = token 32w + j."""
    words = -(-allowed.numel() // 32)
    bits = torch.zeros(words * 32, dtype=torch.int64)
    bits[:allowed.numel()] = allowed.long()
    packed = (bits.view(words, 32) << torch.arange(32)).sum(dim=1)
    return torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)


def _unpack(row: torch.Tensor) -> torch.Tensor:
    """The ids (ascending) whose bits are set in one bitmask row (int32 words)."""
    words = row.nonzero()[:, 0]
    if words.numel() == 0:
        return words
    bits = (row[words][:, None] >> torch.arange(32, dtype=torch.int32)) & 1
    pos = bits.nonzero()
    return words[pos[:, 0]] * 32 + pos[:, 1]


class TokenClasses:
    """What closing mode needs to know about a vocabulary: each token's length in bytes and the
    packed bitmasks of the token classes it prefers, in order (tokens whose text starts with `"`;
    with `}` or `]`; with `,`; the end-of-turn ids)."""

    def __init__(self, decoded: Sequence[bytes], vocab_size: int, eos_ids: Sequence[int]):
        big = 1 << 20  # ids without text (beyond the tokenizer, or special) are never "shortest"
        self.lengths = torch.full((vocab_size,), big, dtype=torch.long)
        first = torch.full((vocab_size,), -1, dtype=torch.long)
        for i, text in enumerate(decoded[:vocab_size]):
            if text:
                self.lengths[i] = len(text)
                first[i] = text[0]
        control = torch.zeros(vocab_size, dtype=torch.bool)
        risky = torch.zeros(vocab_size, dtype=torch.bool)
        for i, text in enumerate(decoded[:vocab_size]):
            if any(b < 0x20 for b in text):
                control[i] = True
            try:
                text.decode("utf-8")
                risky[i] = b"\\" in text
            except UnicodeDecodeError:
                risky[i] = True
        eos = torch.zeros(vocab_size, dtype=torch.bool)
        eos[[int(i) for i in eos_ids if 0 <= int(i) < vocab_size]] = True
        self.lengths[eos] = 1
        first[eos] = -1
        self.priority = [_pack(first == ord('"')),
                         _pack((first == ord("}")) | (first == ord("]"))),
                         _pack(first == ord(",")),
                         _pack(eos)]
        #: tokens without a raw control character (never valid in a compact JSON document,
        #: though the grammar lets strings hold them)
        self.printable = _pack(~control | eos)
        #: tokens that can raise what a string needs to close (an escape, a split UTF-8 character)
        self.safe = _pack(~risky | eos)
        #: tokens that open an object or an array
        self.opener = _pack((first == ord("{")) | (first == ord("[")))
        #: tokens that may follow a closed string: they start with `,` `}` `]` `:` or a space
        self.structural = _pack(sum((first == ord(c)) for c in ',}]: ').bool() | eos)


class JsonConstraint:
    """Per-step logits mask for the constrained rows of one batch (see the module docstring).

    max_tokens: the rows' token budget (None: no closing mode); tokens: the vocabulary's
    TokenClasses (needed with max_tokens)."""

    def __init__(self, xgr: Any, matchers: list[Any], vocab_size: int, *,
                 tokens: TokenClasses | None = None, max_tokens: int | None = None):
        self._xgr = xgr
        self.matchers = matchers
        self.rows = [i for i, m in enumerate(matchers) if m is not None]
        self.vocab_size = vocab_size
        self._bitmask = xgr.allocate_token_bitmask(len(matchers), vocab_size)
        self._scratch = xgr.allocate_token_bitmask(2, vocab_size)  # walk state, `"` probe
        self.tokens = tokens
        self.max_tokens = max_tokens if tokens is not None else None
        self._need: dict[int, int] = {}      # row -> tokens it needed to close when last walked
        self._walked_at: dict[int, int] = {}  # row -> the step of that walk
        #: counters: steps a row spent in closing mode, closing walks made
        self.stats = {"closing_steps": 0, "walks": 0}

    def mask(self, logits: torch.Tensor, step: int | None = None) -> None:
        """Set to -inf, in place, every logit (B, V) a constrained row's grammar forbids next.
        Rows whose grammar has terminated (the row has ended) are left as they are. With the
        budget known (max_tokens at construction and `step`, 0-based, here), a row in closing
        mode keeps only its preferred closing tokens (see the module docstring)."""
        rows = [i for i in self.rows if not self.matchers[i].is_terminated()]
        if not rows:
            return
        for i in rows:
            self.matchers[i].fill_next_token_bitmask(self._bitmask, i)
            if self.tokens is not None:
                self._bitmask[i] &= self.tokens.printable
        self._xgr.apply_token_bitmask_inplace(logits, self._bitmask.to(logits.device),
                                              vocab_size=self.vocab_size, indices=rows)
        if self.max_tokens is None or step is None:
            return
        remaining = self.max_tokens - step  # tokens this row may still sample, this one included
        if remaining <= 0:
            return
        for i in rows:
            if not self._near(i, step, remaining):
                continue
            need, closing = self.closing_walk(i)
            self._need[i], self._walked_at[i] = need, step
            if remaining <= need + CLOSE_MARGIN:
                self.stats["closing_steps"] += 1
                keep = closing
                if 1 < keep.numel() <= EXACT_CHECK:
                    keep = self._fitting(i, keep, remaining - 1)
            elif remaining <= need + CLOSE_MARGIN + NEAR_SLACK:
                keep = self._near_ids(self._bitmask[i], self.matchers[i])
            else:
                keep = None
            if keep is not None:
                row = logits[i]
                kept = row[keep.to(row.device)].clone()
                row.fill_(float("-inf"))
                row[keep.to(row.device)] = kept

    def _near_ids(self, words: torch.Tensor, matcher: Any) -> torch.Tensor | None:
        """The ids a row near its budget (but not yet closing) may take: its grammar's mask less
        the tokens that would raise what it needs to close (escapes, split characters, `{` and
        `[`, and where `}` or `]` could close the container instead, `,` and a `"` that opens a
        key or item); None when that leaves nothing (then the mask stays as it is)."""
        kept = words & self.tokens.safe & ~self.tokens.opener
        close, comma = self.tokens.priority[1], self.tokens.priority[2]
        if bool((kept & close).any()):
            kept &= ~comma
            quote = self.tokens.priority[0]
            if bool((kept & quote).any()) and not self._quote_closes(matcher):
                kept &= ~quote
        return _unpack(kept) if bool(kept.any()) else None

    def _near(self, row: int, step: int, remaining: int) -> bool:
        """Whether to walk `row` this step: on its first step, then whenever its last known need
        is within CLOSE_MARGIN + NEAR_SLACK of the budget left, and every NEAR_SLACK steps anyway
        (a document's need can grow: a free token may open an array item or an optional key)."""
        if row not in self._need:
            return True
        return (remaining <= self._need[row] + CLOSE_MARGIN + NEAR_SLACK
                or step - self._walked_at[row] >= NEAR_SLACK)

    def closing_walk(self, row: int) -> tuple[int, torch.Tensor]:
        """(tokens `row` needs to finish its document and end the turn under the closing rule,
        the ids closing mode allows it now).

        The walk runs on a fork of the row's matcher (the row itself is not advanced): at each
        state it takes the shortest token (lowest id among equals) of the closing rule's set,
        until the document is complete; +1 for the end-of-turn token. It starts from the
        row's mask already in the batch bitmask."""
        return self._walk(self.matchers[row], self._bitmask[row])

    def _fitting(self, row: int, keep: torch.Tensor, left: int) -> torch.Tensor:
        """Of the closing ids `keep` (at most EXACT_CHECK of them), those after which the row's
        walk still ends within `left` tokens; if none does, those whose walk is shortest."""
        needs = []
        for tok in keep.tolist():
            fork = self.matchers[row].fork()
            if not fork.accept_token(tok):
                needs.append(MAX_WALK + 1)
            else:
                needs.append(0 if fork.is_terminated() else self._walk(fork)[0])
        needs_t = torch.tensor(needs)
        fits = needs_t <= left
        return keep[fits] if bool(fits.any()) else keep[needs_t == needs_t.min()]

    def _walk(self, matcher: Any, words: torch.Tensor | None = None) -> tuple[int, torch.Tensor]:
        """closing_walk from `matcher`'s state, whose (printable) mask is `words` when known."""
        self.stats["walks"] += 1
        if words is None:
            matcher.fill_next_token_bitmask(self._scratch, 0)
            self._scratch[0] &= self.tokens.printable
            words = self._scratch[0].clone()
        first = self._closing_ids(words, matcher)
        allowed = first
        fork = None
        for taken in range(MAX_WALK):
            current = fork if fork is not None else matcher
            if current.is_completed():
                return taken + 1, first
            if taken > 0:
                current.fill_next_token_bitmask(self._scratch, 0)
                self._scratch[0] &= self.tokens.printable
                allowed = self._closing_ids(self._scratch[0], current)
            if allowed.numel() == 0:
                break
            pick = int(allowed[int(torch.argmin(self.tokens.lengths[allowed]))])
            if fork is None:
                fork = matcher.fork()
            if not fork.accept_token(pick):
                break
        return MAX_WALK + 1, first

    def _closing_ids(self, words: torch.Tensor, matcher: Any) -> torch.Tensor:
        """The ids the closing rule allows in a state whose grammar mask is `words` (see the
        module docstring)."""
        forced = matcher.find_jump_forward_string().encode()
        if forced:  # every allowed token agrees with the forced text: keep those covering most
            ids = _unpack(words)
            if ids.numel() == 0:
                return ids
            lengths = self.tokens.lengths[ids]
            covering = lengths >= len(forced)
            return ids[covering] if bool(covering.any()) else ids[lengths == lengths.max()]
        quote, *others = self.tokens.priority
        quotes = words & quote
        if bool(quotes.any()) and self._quote_closes(matcher):
            return _unpack(quotes)
        for cls in others:
            hit = words & cls
            if bool(hit.any()):
                return _unpack(hit)
        if bool(quotes.any()):
            return _unpack(quotes)
        safe = words & self.tokens.safe
        return _unpack(safe if bool(safe.any()) else words)

    def _quote_closes(self, matcher: Any) -> bool:
        """Whether a `"` next closes a string (rather than opening a key, an array item or a value):
        after it, on a fork, the document is complete or only `,` `}` `]` `:` or a space may follow."""
        fork = matcher.fork()
        if not fork.accept_string('"'):
            return False
        if fork.is_completed():
            return True
        fork.fill_next_token_bitmask(self._scratch, 1)
        return not bool((self._scratch[1] & ~self.tokens.structural).any())

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
