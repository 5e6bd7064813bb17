"""The LLM behaviour annotator: six facets describing how a user behaves in one conversation.

For each conversation an annotator LLM (any ChatEngine) writes short, domain-abstracted
descriptions of the user's behaviour — what the user does, not what the task is about — as one
JSON object with six fields:

1. requests  (user turns): how specified the requests are, how the goal is decomposed
   (single-shot / top-down / bottom-up / chained), how relevant they stay to the goal.
2. responses (whole conversation): how engaged the user is, how they evaluate the assistant's
   outputs, how they steer it.
3. context   (user turns): how rich the context is, of what type, front-loaded or revealed
   gradually.
4. style     (user turns): register and tone, verbosity and formatting, politeness, framing.
5. damsl     one DAMSL dialogue-act label sentence per user utterance, given the history.
6. sgd       per user utterance, the SGD dialogue acts that apply (multi-label) from SGD_ACTS.

Each facet becomes one text (lists are joined) that is embedded; the `combined` view
concatenates the six embeddings. Calls are batched; wrap the engine in engines.cache's
CachedChatEngine (append-only JSONL) to make a long annotation run resumable. A reply that does
not parse is retried once at a higher temperature; conversations that still fail are counted and
left out of the histograms (the report states how many).

Parsing is tolerant of near-JSON that still says what was asked (code fences, prose around the
object, single quotes, trailing commas, keys in another case, a text facet written as a list of
sentences, SGD acts written as text such as "REQUEST, INFORM | THANK"), and strict about content:
a facet with no words in it (empty, "...", an unfilled "<placeholder>") or written as a nested
object is a failure. The reply budget grows with the conversation (`reply_budget`): a complete
answer needs a few sentences plus one DAMSL and one SGD entry per user message.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from tqdm import tqdm

from corpora.types import Message
from engines.base import ChatEngine, Sampling
from engines.constrained import fit_schema

FACETS = ("requests", "responses", "context", "style", "damsl", "sgd")
SGD_ACTS = ("INFORM", "REQUEST", "AFFIRM", "NEGATE", "SELECT", "INFORM_INTENT", "AFFIRM_INTENT",
            "NEGATE_INTENT", "REQUEST_ALTS", "THANK", "GOODBYE", "GREET")
MAX_CHARS_PER_TURN = 1500  # long turns (pasted code, documents) are cut for the annotator
REPLY_BASE_TOKENS = 320         # the four descriptive facets (1-2 sentences each) and JSON syntax
REPLY_TOKENS_PER_USER_MESSAGE = 40  # one DAMSL sentence and one SGD label list per user message
TEXT_FACETS = FACETS[:4]

SYSTEM_PROMPT = """You study how people behave when they talk to AI assistants. You will read one \
conversation between a USER and an ASSISTANT and describe the USER's behaviour only.

Describe behaviour in abstract terms that would fit users of any topic: never name the topic, \
the programming language, the story, the product or any other specific. Write one or two short \
sentences per field.

Answer with one JSON object and nothing else, with exactly these fields:
- "requests": how fully the user specifies what they want; how they break the goal down \
(everything in one request, top-down, bottom-up, or each request following from the last); \
whether requests stay relevant to the goal.
- "responses": how engaged the user is with the assistant's answers; how they judge them \
(accept silently, test, praise, complain); how they steer the assistant (corrections, \
constraints, redirections).
- "context": how much background the user gives, of what kind (examples, data, errors, \
constraints, personal situation), and whether it comes up front or bit by bit.
- "style": the user's register and tone, how long and how formatted their messages are, how \
polite they are, and how they frame requests (commands, questions, statements).
- "damsl": a list with one short sentence per USER message naming its DAMSL dialogue act \
(for example "statement", "information request", "action directive", "accept", "reject", \
"thanking", "conventional closing"), in order.
- "sgd": a list with one list per USER message of the dialogue acts that apply, chosen from \
INFORM, REQUEST, AFFIRM, NEGATE, SELECT, INFORM_INTENT, AFFIRM_INTENT, NEGATE_INTENT, \
REQUEST_ALTS, THANK, GOODBYE, GREET."""

JSON_SCHEMA = {
    "type": "object",
    "properties": {
        **{f: {"type": "string"} for f in ("requests", "responses", "context", "style")},
        "damsl": {"type": "array", "items": {"type": "string"}},
        "sgd": {"type": "array", "items": {"type": "array",
                                           "items": {"type": "string", "enum": list(SGD_ACTS)}}},
    },
    "required": list(FACETS),
}


@dataclass(frozen=True)
class FacetAnnotation:
    """The six facet texts of one conversation (lists already joined into text)."""

    requests: str
    responses: str
    context: str
    style: str
    damsl: str
    sgd: str

    def text(self, facet: str) -> str:
        return getattr(self, facet)


def render_conversation(messages: Sequence[Message]) -> str:
    """The conversation as USER/ASSISTANT blocks, long turns cut to MAX_CHARS_PER_TURN."""
    blocks = []
    for m in messages:
        text = m.content if len(m.content) <= MAX_CHARS_PER_TURN else \
            m.content[:MAX_CHARS_PER_TURN] + " […]"
        blocks.append(f"{m.role.upper()}: {text}")
    return "\n\n".join(blocks)


def annotation_prompt(messages: Sequence[Message]) -> list[Message]:
    """The annotator's conversation for one real or simulated conversation."""
    n_user = sum(m.role == "user" for m in messages)
    return [Message("system", SYSTEM_PROMPT),
            Message("user", f"The conversation ({n_user} USER messages):\n\n"
                            f"{render_conversation(messages)}\n\nYour JSON object:")]


def _description(text: str) -> str | None:
    """`text` stripped, or None when it holds no words: empty, punctuation only ("..."), or an
    unfilled template placeholder such as "<how the user asks>"."""
    text = text.strip()
    if not any(ch.isalpha() for ch in text) or (text.startswith("<") and text.endswith(">")):
        return None
    return text


def _as_text(value, joiner: str = " ") -> str | None:
    """A facet's text: a string, or a non-empty list of strings joined; None otherwise (numbers,
    nested objects, lists holding anything but strings) or when it holds no words."""
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        value = joiner.join(v.strip() for v in value)
    return _description(value) if isinstance(value, str) else None


def _sgd_text(value) -> str | None:
    """SGD acts per user utterance as "A,B | C": from a list (one list of labels, or one label,
    per utterance) or from text with utterances separated by "|", ";" or new lines. Labels
    outside SGD_ACTS are dropped; an utterance left with none reads "NONE"."""
    if isinstance(value, str):
        value = [part.replace(",", " ").split() for part in re.split(r"[|;\n]", value) if part.strip()]
    if not isinstance(value, list) or not value:
        return None
    per_turn = []
    for labels in value:
        labels = labels if isinstance(labels, list) else [labels]
        kept = sorted({str(a).strip().strip("\"'").upper() for a in labels} & set(SGD_ACTS))
        per_turn.append(",".join(kept) or "NONE")
    return " | ".join(per_turn)


def diagnose_annotation(reply: str) -> tuple[FacetAnnotation | None, str | None]:
    """(the annotation in an annotator reply, None) or (None, why it failed): "no JSON object",
    "missing: <fields>" (absent from the object) or "unusable: <fields>" (present but empty,
    a placeholder, or of the wrong type); a reply with both problems reports the missing ones.
    See the module docstring for what is tolerated."""
    from engines.jsonparse import extract_json_object

    obj = extract_json_object(reply)
    if not isinstance(obj, dict):
        return None, "no JSON object"
    obj = {str(k).strip().lower(): v for k, v in obj.items()}
    missing = [f for f in FACETS if f not in obj]
    if missing:
        return None, "missing: " + ", ".join(missing)
    texts = {f: _as_text(obj[f]) for f in TEXT_FACETS}
    texts["damsl"] = _as_text(obj["damsl"], joiner="; ")
    texts["sgd"] = _sgd_text(obj["sgd"])
    unusable = [f for f in FACETS if texts[f] is None]
    if unusable:
        return None, "unusable: " + ", ".join(unusable)
    return FacetAnnotation(**texts), None


def parse_annotation(reply: str) -> FacetAnnotation | None:
    """The annotation in an annotator reply, or None when a field is missing or malformed
    (`diagnose_annotation` says which)."""
    return diagnose_annotation(reply)[0]


def reply_budget(messages: Sequence[Message], cap: int) -> int:
    """Tokens to allow the annotator's reply for one conversation: REPLY_BASE_TOKENS plus
    REPLY_TOKENS_PER_USER_MESSAGE per user message, at most cap."""
    n_user = sum(m.role == "user" for m in messages)
    return min(cap, REPLY_BASE_TOKENS + REPLY_TOKENS_PER_USER_MESSAGE * n_user)


@dataclass
class AnnotationRun:
    """Annotations in input order (None where the annotator failed), the failure count, how many
    conversations needed the retry, and the failures counted by the reason of their last reply
    (`diagnose_annotation`)."""

    annotations: list[FacetAnnotation | None]
    failures: int
    retried: int
    reasons: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The run's counts, as reported in fidelity.json."""
        return {"annotated": len(self.annotations) - self.failures, "failed": self.failures,
                "retried": self.retried, "failure_reasons": dict(sorted(self.reasons.items()))}


def _by_budget(idx: list[int], budgets: list[int]) -> dict[int, list[int]]:
    """The indices `idx` grouped by their reply budget (one engine call per group)."""
    groups: dict[int, list[int]] = {}
    for i in idx:
        groups.setdefault(budgets[i], []).append(i)
    return groups


def annotate(conversations: Sequence[Sequence[Message]], engine: ChatEngine, *,
             batch_size: int = 16, max_tokens: int = 1200, seed: int = 0,
             desc: str = "annotating") -> AnnotationRun:
    """Annotate every conversation in batches; unparseable replies are retried once at
    temperature 0.7, then counted as failures. Each reply may use `reply_budget` tokens (at most
    `max_tokens`); conversations are batched in order of budget, and a batch makes one call per
    budget, so a request (and its cache key) never depends on how conversations were batched."""
    budgets = [reply_budget(c, max_tokens) for c in conversations]
    order = sorted(range(len(conversations)), key=budgets.__getitem__)
    out: list[FacetAnnotation | None] = [None] * len(conversations)
    why: dict[int, str] = {}
    retried = 0
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch"):
        for budget, idx in _by_budget(order[start:start + batch_size], budgets).items():
            # the four free-text facets are sized so that the two act lists after them fit too
            first = Sampling(temperature=0.0, max_tokens=budget, seed=seed,
                             json_schema=fit_schema(JSON_SCHEMA, budget))
            replies = engine.chat([annotation_prompt(conversations[i]) for i in idx], first)
            for i, reply in zip(idx, replies):
                out[i], why[i] = diagnose_annotation(reply)
            again = [i for i in idx if out[i] is None]
            if again:
                retried += len(again)
                retry = first.with_(temperature=0.7, seed=seed + 1)
                replies = engine.chat([annotation_prompt(conversations[i]) for i in again], retry)
                for i, reply in zip(again, replies):
                    out[i], why[i] = diagnose_annotation(reply)
    reasons = Counter(why[i] for i, a in enumerate(out) if a is None)
    return AnnotationRun(out, sum(a is None for a in out), retried, dict(reasons))
