"""Training examples for a fine-tuned user simulator, in two turn layouts.

A real conversation (user, assistant, user, …) and its intent become one training example in
which the model learns to *be the user*. The system message is the intent ("You are a user
chatting with an assistant language model to …"), and after the last real assistant reply comes
one more user-side turn holding only ``<|endconversation|>``: the user leaving.

Layouts (`LAYOUTS`):
- "userlm" (default; the layout of the published fine-tuned users, UserLM-8b and the 2605.09808
  sftuser checkpoints): roles are kept. The real user's turns stay ``user`` turns and are the
  trained tokens (content, the end-of-turn token and whatever the template writes after it, e.g.
  ChatML's newline); assistant turns are context; the end is a final ``user`` turn. At inference
  the prompt is the conversation followed by the template's user header (`user_turn_prompt`),
  so the simulator needs an engine that continues raw token ids.
- "swapped" (this project's earlier layout): the real user's turns become the model's own
  ``assistant`` turns and the assistant's become ``user`` turns, so an ordinary chat-template
  generation prompt (any chat server) writes the user turn; trained tokens are the content and
  the end-of-turn token. Checkpoints trained this way cannot play the user in the other layout.

Labels are -100 everywhere except on the trained tokens; headers, the system message and the
context turns are masked. Token ids are built by appending template-rendered segments, each
tokenised once: segment i is ``render(messages[:i+1])`` minus ``render(messages[:i])``, split into
its header (found by rendering a probe content), its content and the rest. Nothing is
re-tokenised after being joined, so the ids a model is trained on are the ids it sees at
inference. Examples longer than `max_length` are dropped and counted, never cut (a cut would
remove the end-of-conversation turn).

``add_end_token(model, tokenizer)`` adds ``<|endconversation|>`` to the vocabulary as a special
token and initialises its embedding (and output row, when untied) from EOS's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from corpora.types import Message

END_TOKEN = "<|endconversation|>"
IGNORE = -100  # label of a token that carries no loss
LAYOUTS = ("userlm", "swapped")
DEFAULT_LAYOUT = "userlm"
_PROBE = "WILDSIMPROBECONTENT"  # rendered in place of a turn's content to find its header


@dataclass
class FlippedExample:
    """One training example.

    input_ids: (T,) ids of the whole conversation in its layout, as the chat template renders it
    labels:    (T,) the id where the model is trained (user-turn content and its end-of-turn
               token, plus the template's text after it in the userlm layout), IGNORE elsewhere
    """

    input_ids: list[int]
    labels: list[int]
    task_id: str = ""

    @property
    def n_label_tokens(self) -> int:
        return sum(label != IGNORE for label in self.labels)


@dataclass
class FlipStats:
    """What happened to the conversations offered to `build_examples` (nothing is dropped silently)."""

    offered: int = 0
    kept: int = 0
    trimmed_trailing_user: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) or "none"
        return (f"{self.kept}/{self.offered} conversations kept ({self.trimmed_trailing_user} with "
                f"a trailing user turn trimmed); skipped: {skipped}")


class FlipError(ValueError):
    """A conversation that cannot become a training example; the message says why."""


def check_conversation(conversation: Sequence[Message]) -> str | None:
    """Why a conversation is unusable (None when it is fine): the recipe keeps only conversations
    whose roles alternate starting with the user, with no empty turns."""
    if not conversation:
        return "empty conversation"
    for i, msg in enumerate(conversation):
        if msg.role != ("user" if i % 2 == 0 else "assistant"):
            return "roles do not alternate starting with the user"
        if not msg.content.strip():
            return "an empty turn"
    return None


def check_layout(layout: str) -> str:
    """`layout` when it is one of LAYOUTS, else ValueError saying which exist."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown turn layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    return layout


def trained_role(layout: str) -> str:
    """The chat role whose turns the simulator writes (and is trained on) in `layout`."""
    return "user" if check_layout(layout) == "userlm" else "assistant"


def userlm_messages(intent: str, conversation: Sequence[Message], *, end: bool = True,
                    end_token: str = END_TOKEN) -> list[Message]:
    """The userlm view of a conversation: system = intent, roles kept, and (when `end`) a final
    user turn holding only the end token. Contents are stripped of surrounding whitespace."""
    messages = [Message("system", intent.strip())]
    messages += [Message(m.role, m.content.strip()) for m in conversation
                 if m.role in ("user", "assistant")]
    if end:
        messages.append(Message("user", end_token))
    return messages


def layout_messages(layout: str, intent: str, conversation: Sequence[Message], *,
                    end: bool = True, end_token: str = END_TOKEN) -> list[Message]:
    """The simulator's view of a conversation in `layout` (see the module docstring)."""
    build = userlm_messages if check_layout(layout) == "userlm" else flip_messages
    return build(intent, conversation, end=end, end_token=end_token)


def flip_messages(intent: str, conversation: Sequence[Message], *, end: bool = True,
                  end_token: str = END_TOKEN) -> list[Message]:
    """The swapped view of a conversation: system = intent, user↔assistant swapped, and (when
    `end`) a final model turn holding only the end token. Contents are stripped of surrounding
    whitespace (the same normalisation the simulator applies to what it generates)."""
    swap = {"user": "assistant", "assistant": "user"}
    flipped = [Message("system", intent.strip())]
    flipped += [Message(swap[m.role], m.content.strip()) for m in conversation if m.role in swap]
    if end:
        flipped.append(Message("assistant", end_token))
    return flipped


def _render(tokenizer: Any, messages: Sequence[Message], generation_prompt: bool = False) -> str:
    if not messages:
        return ""
    return tokenizer.apply_chat_template([m.as_dict() for m in messages], tokenize=False,
                                         add_generation_prompt=generation_prompt)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def _suffix(longer: str, prefix: str, what: str) -> str:
    if not longer.startswith(prefix):
        raise FlipError(f"the chat template does not render {what} as an extension of the "
                        "earlier turns; flipped examples need an append-only template")
    return longer[len(prefix):]


def is_special(tokenizer: Any, token_id: int) -> bool:
    """Whether `token_id` is one of the tokenizer's special (control) tokens."""
    added = tokenizer.added_tokens_decoder.get(token_id)
    return token_id in tokenizer.all_special_ids or bool(added is not None and added.special)


def _header(tokenizer: Any, messages: Sequence[Message], role: str, before: str) -> str:
    """The text the template writes before the content of a `role` turn appended to `messages`
    (whose rendering is `before`)."""
    probe = _render(tokenizer, [*messages, Message(role, _PROBE)])
    text = _suffix(probe, before, f"a {role} turn")
    if _PROBE not in text:
        raise FlipError(f"the chat template does not show the content of a {role} turn")
    return text.split(_PROBE, 1)[0]


def user_turn_prompt(tokenizer: Any, messages: Sequence[Message]) -> str:
    """The userlm generation prompt: `messages` rendered, then the header of a new user turn (what
    the model continues to write the user's next turn)."""
    before = _render(tokenizer, messages)
    return before + _header(tokenizer, messages, "user", before)


def generation_prompt_ids(tokenizer: Any, messages: Sequence[Message], layout: str = DEFAULT_LAYOUT
                          ) -> list[int]:
    """The ids the simulator continues to write its next turn: `messages` (already in `layout`,
    without an end turn) encoded exactly as training encodes them, then the header of a new turn
    of `trained_role(layout)` (in the userlm layout: the template's user header)."""
    ids, _ = encode_flipped(tokenizer, messages, layout)
    before = _render(tokenizer, messages)
    return ids + _ids(tokenizer, _header(tokenizer, messages, trained_role(layout), before))


def _model_turn(tokenizer: Any, messages: Sequence[Message], i: int, before: str,
                whole_tail: bool) -> tuple[list[int], list[int]]:
    """Ids and labels of trained turn `messages[i]`: header masked, content and the end-of-turn
    token trained, and (when `whole_tail`) the template's text after it too, else masked."""
    header = _header(tokenizer, messages[:i], messages[i].role, before)
    segment = _suffix(_render(tokenizer, messages[: i + 1]), before, f"turn {i}")
    body = _suffix(segment, header, f"turn {i} after its header")
    content = messages[i].content
    rest = _ids(tokenizer, _suffix(body, content, f"turn {i}'s content"))
    if not rest or not is_special(tokenizer, rest[0]):
        raise FlipError(f"the chat template does not close a {messages[i].role} turn with a special "
                        f"end-of-turn token right after its content (got {rest[:3]})")
    header_ids, content_ids = _ids(tokenizer, header), _ids(tokenizer, content)
    ids = header_ids + content_ids + rest
    tail = rest if whole_tail else rest[:1]
    labels = [IGNORE] * len(header_ids) + content_ids + tail + [IGNORE] * (len(rest) - len(tail))
    return ids, labels


def encode_flipped(tokenizer: Any, messages: Sequence[Message], layout: str = "swapped"
                   ) -> tuple[list[int], list[int]]:
    """Input ids and labels of a conversation already in `layout` (see `layout_messages`): every
    turn of `trained_role(layout)` is trained, everything else is masked."""
    role, whole_tail = trained_role(layout), layout == "userlm"
    input_ids: list[int] = []
    labels: list[int] = []
    before = ""
    for i, msg in enumerate(messages):
        if msg.role == role:
            ids, labs = _model_turn(tokenizer, messages, i, before, whole_tail)
        else:
            ids = _ids(tokenizer, _suffix(_render(tokenizer, messages[: i + 1]), before, f"turn {i}"))
            labs = [IGNORE] * len(ids)
        input_ids += ids
        labels += labs
        before = _render(tokenizer, messages[: i + 1])
    return input_ids, labels


def build_example(tokenizer: Any, intent: str, conversation: Sequence[Message], *,
                  task_id: str = "", end_token: str = END_TOKEN,
                  layout: str = DEFAULT_LAYOUT) -> FlippedExample:
    """The training example of one conversation (which must pass `check_conversation` and end
    with an assistant turn)."""
    problem = check_conversation(conversation)
    if problem:
        raise FlipError(f"{task_id or 'conversation'}: {problem}")
    if conversation[-1].role != "assistant":
        raise FlipError(f"{task_id or 'conversation'}: ends with a user turn; trim it first")
    if end_token not in tokenizer.get_vocab():
        raise FlipError(f"the tokenizer has no {end_token} token; call add_end_token first")
    messages = layout_messages(layout, intent, conversation, end_token=end_token)
    ids, labels = encode_flipped(tokenizer, messages, layout)
    return FlippedExample(ids, labels, task_id)


def build_examples(tokenizer: Any, items: Sequence[tuple[str, str, Sequence[Message]]], *,
                   max_length: int | None = None, layout: str = DEFAULT_LAYOUT
                   ) -> tuple[list[FlippedExample], FlipStats]:
    """Examples for (task_id, intent, conversation) items in `layout`. Unusable conversations are
    skipped and counted by reason; a trailing unanswered user turn is trimmed (counted); examples
    longer than `max_length` tokens are dropped whole and counted ("longer than max_length"), so
    no kept example loses its end-of-conversation turn."""
    check_layout(layout)
    stats = FlipStats(offered=len(items))
    examples = []
    for task_id, intent, conversation in items:
        conv = list(conversation)
        trim = len(conv) > 1 and conv[-1].role == "user"
        conv = conv[:-1] if trim else conv
        problem = "no intent" if not intent or not intent.strip() else (
            check_conversation(conv) or (None if conv[-1].role == "assistant" else "no assistant reply"))
        if problem:
            stats.skipped[problem] += 1
            continue
        stats.trimmed_trailing_user += trim
        example = build_example(tokenizer, intent, conv, task_id=task_id, layout=layout)
        if max_length is not None and len(example.input_ids) > max_length:
            stats.skipped["longer than max_length"] += 1
            continue
        examples.append(example)
        stats.kept += 1
    return examples, stats


def add_end_token(model: Any, tokenizer: Any, token: str = END_TOKEN) -> int:
    """Add `token` as a special token, resize the model's embeddings and initialise the new row of
    the input embedding (and of the output layer, when it is not tied) from EOS's. Returns its id.
    Idempotent: a tokenizer that already has the token is left as it is."""
    import torch

    vocab = tokenizer.get_vocab()
    if token in vocab:
        return vocab[token]
    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        raise ValueError("the tokenizer has no EOS token to initialise the end token from")
    tokenizer.add_special_tokens({"extra_special_tokens": [token]}, replace_extra_special_tokens=False)
    new_id = tokenizer.convert_tokens_to_ids(token)
    if model.get_input_embeddings().weight.shape[0] <= new_id:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        emb[new_id] = emb[eos_id]
        out = model.get_output_embeddings()
        if out is not None and out.weight.data_ptr() != emb.data_ptr():
            out.weight[new_id] = out.weight[eos_id]
    return new_id
