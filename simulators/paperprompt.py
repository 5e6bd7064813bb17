"""The role-play protocol of the 2605.09808 release (the default of roleplay1/2/3), in this
project's own words.

One engine message per turn holds everything: a task description (play the human user of an AI
assistant), the behaviour guidelines (a persona block; role-play 1 and 2 always carry the default
one), the intent as the reference goal, and the whole chat history so far. The reply is a JSON
object

    {"current_answer": "...", "thought": "...", "response": "..."}

where `current_answer` is the user's own running answer to their goal (what they would take away
if the conversation stopped now), `thought` a short private note, and `response` what the user
types. Only `response` is said. The user leaves by making `response` exactly `END_SIGNAL`
(`<|endconversation|>`, surrounding whitespace ignored); any other response is said as written.

A reply that is not such an object (no JSON object, no string `response`, or an empty response)
is a failure; simulators/roleplay.py retries it and, after `max_tries`, ends the conversation
without a canned user turn. `read_reply` is strict on purpose: there are no text fallbacks here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from corpora.types import Message
from engines.jsonparse import extract_json_object

END_SIGNAL = "<|endconversation|>"
DEFAULT_MAX_TRIES = 8

REPLY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"current_answer": {"type": "string"}, "thought": {"type": "string"},
                   "response": {"type": "string"}},
    "required": ["current_answer", "thought", "response"],
}

PROMPT = """\
You are helping to test an AI assistant by acting as one of its human users. You play the \
user, never the assistant: do not answer your own requests and do not write the assistant's \
replies.

# Your reference goal
This is what you, the user, want out of the conversation. Keep it to yourself; it guides what \
you ask for and when you are satisfied.
{intent}

# How you behave
{guidelines}

# The conversation so far
{history}

# Your next move
{move} When your goal has been met, or a real person in your place would give up now, leave \
the conversation: set "response" to exactly {end} and nothing else.

Answer with one JSON object with exactly these keys:
- "current_answer": your own answer to your goal as it stands, built from what the assistant has \
told you so far ("" when there is nothing yet);
- "thought": one or two sentences on what you want next and why;
- "response": exactly the message you type to the assistant, or {end} to leave."""

OPENING_MOVE = "Write the first message you send to the assistant."
REPLY_MOVE = "Write your next message to the assistant, reacting to its last reply."
EMPTY_HISTORY = "(nothing yet: the conversation has not started)"


@dataclass(frozen=True)
class PaperReply:
    """A reply that follows the protocol: `response` (empty when it ends), `ends`, and the
    private fields `thought` and `current_answer`."""

    response: str
    ends: bool
    thought: str | None = None
    current_answer: str | None = None


def render_history(messages: Sequence[Message]) -> str:
    """The chat so far as "User: …" / "Assistant: …" blocks (system messages left out)."""
    blocks = [f"{'User' if m.role == 'user' else 'Assistant'}: {m.content.strip()}"
              for m in messages if m.role in ("user", "assistant")]
    return "\n\n".join(blocks) if blocks else EMPTY_HISTORY


def build_prompt(intent: str, guidelines: str, messages: Sequence[Message]) -> list[Message]:
    """The single user message the simulator's engine sees for its next turn (the opening when
    `messages` is empty)."""
    text = PROMPT.format(intent=intent.strip(), guidelines=guidelines.strip(),
                         history=render_history(messages),
                         move=REPLY_MOVE if messages else OPENING_MOVE, end=END_SIGNAL)
    return [Message("user", text)]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def read_reply(text: str) -> PaperReply | None:
    """The reply as the protocol reads it, or None for a failure (see the module docstring)."""
    obj = extract_json_object(text or "")
    if obj is None or not isinstance(obj.get("response"), str):
        return None
    response = obj["response"].strip()
    if response == END_SIGNAL:
        return PaperReply("", True, _text(obj.get("thought")), _text(obj.get("current_answer")))
    if not response:
        return None
    return PaperReply(response, False, _text(obj.get("thought")), _text(obj.get("current_answer")))
