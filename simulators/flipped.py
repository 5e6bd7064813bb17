"""Flipped-dialogue training examples for a fine-tuned user simulator (the UserLM recipe).

A real conversation (user, assistant, user, …) and its intent become one training example in
which the model learns to *be the user*:

- roles are flipped: the intent is the system message, the real user's turns are presented as
  the model's own ``assistant`` turns and the real assistant's turns as ``user`` turns. So the
  chat template's assistant header precedes exactly what the simulator must write, and inference
  uses the ordinary chat template — ``HFEngine.chat``, vLLM and any OpenAI-compatible server
  work unchanged with ``add_generation_prompt=True``;
- after the last real assistant reply comes one more model turn holding only
  ``<|endconversation|>``: the user leaving;
- labels are -100 everywhere except on the tokens of the (flipped) user turns: their content and
  the end-of-turn token the template closes them with. The assistant header before them, the
  system message, the real assistant turns and any glue after the end-of-turn token are masked.

Token ids are built by appending template-rendered segments, each tokenised once: segment i is
``render(messages[:i+1])`` minus ``render(messages[:i])``, and a model turn is split into its
header (``add_generation_prompt``), its content and the rest. Nothing is re-tokenised after
being joined, so the ids a model is trained on are the ids it sees and generates at inference.

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


@dataclass
class FlippedExample:
    """One training example.

    input_ids: (T,) ids of the whole flipped conversation, as the chat template renders it
    labels:    (T,) the id where the model is trained (user-turn content and its end-of-turn
               token), IGNORE (-100) elsewhere
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
    truncated: int = 0
    trimmed_trailing_user: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) or "none"
        return (f"{self.kept}/{self.offered} conversations kept ({self.truncated} truncated, "
                f"{self.trimmed_trailing_user} with a trailing user turn trimmed); skipped: {skipped}")


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


def flip_messages(intent: str, conversation: Sequence[Message], *, end: bool = True,
                  end_token: str = END_TOKEN) -> list[Message]:
    """The simulator's view of a conversation: system = intent, user↔assistant swapped, and (when
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


def _model_turn(tokenizer: Any, messages: Sequence[Message], i: int, before: str
                ) -> tuple[list[int], list[int]]:
    """Ids and labels of model turn `messages[i]`: header masked, content + end-of-turn trained,
    glue after the end-of-turn masked."""
    header = _suffix(_render(tokenizer, messages[:i], True), before, "the generation prompt")
    segment = _suffix(_render(tokenizer, messages[: i + 1]), before, f"turn {i}")
    body = _suffix(segment, header, f"turn {i} after its header")
    content = messages[i].content
    rest = _ids(tokenizer, _suffix(body, content, f"turn {i}'s content"))
    if not rest or not is_special(tokenizer, rest[0]):
        raise FlipError("the chat template does not close an assistant turn with a special "
                        f"end-of-turn token right after its content (got {rest[:3]})")
    header_ids, content_ids = _ids(tokenizer, header), _ids(tokenizer, content)
    ids = header_ids + content_ids + rest
    trained = content_ids + rest[:1]
    labels = [IGNORE] * len(header_ids) + trained + [IGNORE] * (len(rest) - 1)
    return ids, labels


def encode_flipped(tokenizer: Any, messages: Sequence[Message]) -> tuple[list[int], list[int]]:
    """Input ids and labels of an already flipped conversation (see `flip_messages`): every
    ``assistant`` turn is trained, everything else is masked."""
    input_ids: list[int] = []
    labels: list[int] = []
    before = ""
    for i, msg in enumerate(messages):
        if msg.role == "assistant":
            ids, labs = _model_turn(tokenizer, messages, i, before)
        else:
            ids = _ids(tokenizer, _suffix(_render(tokenizer, messages[: i + 1]), before, f"turn {i}"))
            labs = [IGNORE] * len(ids)
        input_ids += ids
        labels += labs
        before = _render(tokenizer, messages[: i + 1])
    return input_ids, labels


def build_example(tokenizer: Any, intent: str, conversation: Sequence[Message], *,
                  task_id: str = "", end_token: str = END_TOKEN) -> FlippedExample:
    """The training example of one conversation (which must pass `check_conversation` and end
    with an assistant turn)."""
    problem = check_conversation(conversation)
    if problem:
        raise FlipError(f"{task_id or 'conversation'}: {problem}")
    if conversation[-1].role != "assistant":
        raise FlipError(f"{task_id or 'conversation'}: ends with a user turn; trim it first")
    if end_token not in tokenizer.get_vocab():
        raise FlipError(f"the tokenizer has no {end_token} token; call add_end_token first")
    ids, labels = encode_flipped(tokenizer, flip_messages(intent, conversation, end_token=end_token))
    return FlippedExample(ids, labels, task_id)


def build_examples(tokenizer: Any, items: Sequence[tuple[str, str, Sequence[Message]]], *,
                   max_length: int | None = None) -> tuple[list[FlippedExample], FlipStats]:
    """Examples for (task_id, intent, conversation) items. Unusable conversations are skipped and
    counted by reason; a trailing unanswered user turn is trimmed (counted); examples longer than
    `max_length` are cut at the end (counted) and skipped if no trained token is left."""
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
        example = build_example(tokenizer, intent, conv, task_id=task_id)
        if max_length is not None and len(example.input_ids) > max_length:
            example = FlippedExample(example.input_ids[:max_length], example.labels[:max_length],
                                     task_id)
            stats.truncated += 1
            if example.n_label_tokens == 0:
                stats.skipped["no trained token within max_length"] += 1
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
