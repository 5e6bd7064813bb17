"""Prompted role-play user simulators (role-play 1, 2 and 3 of the published setup).

An instruction-tuned LLM is told to play a user who wants what the task's hidden intent says.
Two prompt protocols (`protocol=`):

- "paper" (default; the protocol of the 2605.09808 release, simulators/paperprompt.py): one
  message holding the task description, the behaviour guidelines, the intent as the reference
  goal and the whole chat history; the reply is JSON {current_answer, thought, response} (the
  schema is passed in Sampling.json_schema); the user leaves with a response that is exactly
  `<|endconversation|>`. Without a persona bank (role-play 1 and 2) the guidelines are always the
  bank's "default" persona (minimise effort, vague early and details later, occasional mistakes,
  stated preferences). A reply that breaks the protocol is retried, up to `max_tries` tries in
  all; then the conversation ends there (the episode is still judged) — no canned user turn. An
  opening cannot end: after `max_tries` failed openings the task's real opening is used, or a
  stock one when it has none (counted as `opening_fallbacks`).
- "project" (this project's earlier prompt, described below).

The "project" protocol sees the conversation with roles flipped: a system prompt holding the
intent (and a persona when the simulator has a persona bank), then a fixed greeting as the first "user" message (the
assistant's side opening the chat; the policy never sees it), then its own past turns as
"assistant" and the policy's turns as "user". It answers with a JSON object
`{"thought": ..., "response": ...}`; only `response` is said (simulators/jsonreply.py reads it,
with counted fallbacks for replies that are not valid JSON).

Openings (`opening=`):
- "self": the simulator writes the opening turn from the intent (role-play 1);
- "real": the conversation starts from the task's real first user turn (role-play 2); a task
  without one gets a written opening, recorded as sim_details["opening"] = "written".
Role-play 3 is role-play 2 with a persona bank (`persona_bank=`, `personas=`): one persona per
GRPO group, held fixed across the group's samples (simulators/persona.py).

Project-protocol ending: the user ends the conversation by writing `<END>` in its response
(alone, or after a last message); the sentinel is never said. An opening cannot end the
conversation.

Project-protocol empty replies: lines that copy the simulator's own system prompt, intent included, are dropped
(small models echo their prompt; copying the intent verbatim is never a real user turn). A
reply that then says nothing and does not end (a small model that produced only broken JSON, say) is resampled once in one batched call; if still empty, a stock user turn is
used. All are counted (`stats`, and episode.sim_details["echo_lines"] / ["empty_defaults"]).

Determinism: each engine call gets a seed derived from the simulator seed and the batch's
(group, sample, user-turn index) keys, so a run repeats exactly for the same seed and batches.
Defaults follow the published recipe: temperature 0.7, top-p 0.9, at most 1024 tokens.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any, Sequence

from corpora.types import Episode, Message
from engines.base import Sampling
from simulators.base import SIMULATOR_KINDS, UserTurn
from simulators.jsonreply import (END_SENTINEL, ParsedReply, ReplyStats, drop_echoes,
                                  parse_user_reply)
from simulators.paperprompt import DEFAULT_MAX_TRIES, PaperReply, build_prompt, read_reply
from simulators.paperprompt import REPLY_SCHEMA as PAPER_SCHEMA
from simulators.persona import Persona, group_key, load_personas, persona_for

DEFAULT_SAMPLING = Sampling(temperature=0.7, top_p=0.9, max_tokens=1024)
OPENINGS = ("self", "real")
PROTOCOLS = ("paper", "project")

SYSTEM_PROMPT = """\
You are playing a human user who is chatting with an AI assistant. You are the user, not the \
assistant: never answer your own requests and never write the assistant's part.

What you want from this conversation (keep it to yourself; reveal details the way a real person \
would, a little at a time):
{intent}
{persona}
How to write:
- Write like a real person typing into a chat box: plain words, usually short, one message at a time.
- React to the assistant's last message: ask for what is missing, point out mistakes, ask for \
changes or follow up.
- Never say that you are role-playing, simulating or following instructions.
- When you have what you wanted, or you would give up, end the conversation by writing \
{sentinel} at the end of your response (a short last message before it is fine).

Answer with one JSON object and nothing else:
{{"thought": "<one short sentence: what you want next>", "response": "<exactly what you type to the assistant>"}}"""

PERSONA_LINE = "\nYour manner in this conversation: {description}\n"
OPENING_CUE = "Hello! What can I help you with today?"
EMPTY_ASSISTANT = "(the assistant sent an empty message)"
STOCK_OPENING = "Hi, can you help me with something?"
STOCK_REPLY = "Can you go on? I'm not sure that answers what I need."

#: The reply format servers constrain decoding to. The length caps (characters) make the grammar
#: close the object within the published 1024-token budget even at 2 characters per token
#: (engines.constrained.fit_schema leaves them as they are there and shrinks them for smaller
#: budgets), so a rambling string cannot run into max_tokens and leave truncated JSON.
REPLY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"thought": {"type": "string", "maxLength": 200},
                   "response": {"type": "string", "maxLength": 1800}},
    "required": ["thought", "response"],
}


def batch_seed(seed: int, keys: Sequence[tuple[str, int, int]], attempt: int = 0) -> int:
    """The sampling seed of one engine call: a hash of the simulator seed, every episode's
    (group key, sample, user-turn index) in batch order, and the attempt number; in [0, 2**31)."""
    text = repr((seed, attempt, tuple(keys)))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") % 2**31


def flip_roles(messages: Sequence[Message]) -> list[Message]:
    """The simulator's view of the conversation: user turns become its own (assistant) turns and
    assistant turns become user turns; system messages (the policy's) are dropped."""
    flipped = []
    for m in messages:
        if m.role == "user":
            flipped.append(Message("assistant", m.content))
        elif m.role == "assistant":
            flipped.append(Message("user", m.content if m.content.strip() else EMPTY_ASSISTANT))
    return flipped


def _bank(persona_bank: Any, personas: Sequence[str] | None) -> list[Persona] | None:
    """The persona bank from the constructor options (see RolePlaySimulator)."""
    if persona_bank is None and personas is None:
        return None
    if isinstance(persona_bank, (list, tuple)) and all(isinstance(p, Persona) for p in persona_bank):
        from simulators.persona import select_personas

        return select_personas(persona_bank, personas)
    path = None if persona_bank in (None, True, "default") else persona_bank
    return load_personas(path, personas)


@SIMULATOR_KINDS.register("roleplay")
class RolePlaySimulator:
    """A prompted LLM playing the user (see the module docstring).

    engine:       a ChatEngine, or an engine spec string (loaded with engines.spec)
    opening:      "self" (write the opening from the intent) or "real" (the task's opening)
    persona_bank: None (no personas), True/"default" (configs/personas.yaml), a YAML path, or a
                  list of Persona
    personas:     names to keep from the bank (None: all); giving only this uses the default bank
    json_schema:  pass the reply schema to engines that support structured output
    sentinel:     "project" protocol: the text that ends the conversation (default "<END>")
    protocol:     "paper" (default) or "project" (see the module docstring)
    max_tries:    "paper" protocol: tries per turn before the conversation ends (default 8)
    """

    def __init__(self, engine: Any, *, name: str = "roleplay", sampling: Sampling | None = None,
                 seed: int = 0, opening: str = "self", persona_bank: Any = None,
                 personas: Sequence[str] | None = None, json_schema: bool = True,
                 sentinel: str = END_SENTINEL, protocol: str = "paper",
                 max_tries: int = DEFAULT_MAX_TRIES):
        if opening not in OPENINGS:
            raise ValueError(f"roleplay simulator {name!r}: opening must be one of {OPENINGS}, "
                             f"got {opening!r}")
        if protocol not in PROTOCOLS:
            raise ValueError(f"roleplay simulator {name!r}: protocol must be one of {PROTOCOLS}, "
                             f"got {protocol!r}")
        if max_tries < 1:
            raise ValueError(f"roleplay simulator {name!r}: max_tries must be >= 1, got {max_tries}")
        if isinstance(engine, str):
            from engines.spec import load_chat_engine

            engine = load_chat_engine(engine)
        self.engine = engine
        self.name = name
        self.sampling = sampling or DEFAULT_SAMPLING
        self.seed = seed
        self.opening = opening
        self.bank = _bank(persona_bank, personas)
        self.json_schema = json_schema
        self.sentinel = sentinel
        self.protocol = protocol
        self.max_tries = max_tries
        # role-play 1 and 2 of the paper protocol always carry the default behaviour guidelines
        self.default_guidelines = (load_personas(None, ["default"])[0].description
                                   if protocol == "paper" and self.bank is None else "")
        self.stats = ReplyStats()

    # ---- UserSimulator ---------------------------------------------------------------------
    def open(self, episodes: Sequence[Episode]) -> list[str]:
        """Each episode's opening turn: the real one (opening="real" and the task has one) or a
        written one, all written ones from one engine call."""
        for ep in episodes:
            self._persona(ep)
            real = self.opening == "real" and bool(ep.task.opening)
            ep.sim_details["opening"] = "real" if real else "written"
        write = [ep for ep in episodes if ep.sim_details["opening"] == "written"]
        written = dict(zip(map(id, write), self._turns(write, opening=True)))
        return [written[id(ep)].text if id(ep) in written else ep.task.opening for ep in episodes]

    def reply(self, episodes: Sequence[Episode]) -> list[UserTurn]:
        """The next user turn of each episode (its last message is the assistant's)."""
        for ep in episodes:
            self._persona(ep)
        return self._turns(list(episodes), opening=False)

    def metrics(self, prefix: str = "sim") -> dict[str, float]:
        """Reply-parsing counters since construction (json_fallback_rate etc.), namespaced."""
        return self.stats.as_metrics(prefix)

    # ---- prompts ---------------------------------------------------------------------------
    def system_prompt(self, episode: Episode) -> str:
        """The system prompt: role, intent, persona (when drawn), rules, answer format."""
        persona = ""
        if self.bank is not None:
            persona = PERSONA_LINE.format(description=self._persona(episode).description)
        return SYSTEM_PROMPT.format(intent=episode.task.intent.strip(), persona=persona,
                                    sentinel=self.sentinel)

    def conversation(self, episode: Episode, *, opening: bool) -> list[Message]:
        """What the engine sees for the episode's next user turn (roles flipped)."""
        head = [Message("system", self.system_prompt(episode)), Message("user", OPENING_CUE)]
        return head if opening else head + flip_roles(episode.messages)

    # ---- generation ------------------------------------------------------------------------
    def _persona(self, episode: Episode) -> Persona | None:
        return persona_for(episode, self.bank, self.seed) if self.bank is not None else None

    def _sampling(self, episodes: Sequence[Episode], attempt: int) -> Sampling:
        keys = [(group_key(ep), ep.sample, len(ep.user_texts())) for ep in episodes]
        schema = PAPER_SCHEMA if self.protocol == "paper" else REPLY_SCHEMA
        if self.json_schema and self.protocol == "project":  # the paper's schema is kept as released
            from engines.constrained import fit_schema

            schema = fit_schema(schema, self.sampling.max_tokens)
        return self.sampling.with_(seed=batch_seed(self.seed, keys, attempt),
                                   json_schema=schema if self.json_schema else None)

    def _read(self, episode: Episode, reply: str, prompt: list[Message]) -> ParsedReply:
        parsed = parse_user_reply(reply, self.sentinel)
        said, echoes = drop_echoes(parsed.response, prompt[0].content + "\n" + OPENING_CUE)
        if echoes:
            parsed = replace(parsed, response=said)
            self.stats.echo_lines += echoes
            episode.sim_details["echo_lines"] = episode.sim_details.get("echo_lines", 0) + echoes
        self.stats.add(parsed)
        if parsed.fallback:
            episode.sim_details["json_fallbacks"] = episode.sim_details.get("json_fallbacks", 0) + 1
        return parsed

    def _turns(self, episodes: list[Episode], *, opening: bool) -> list[UserTurn]:
        """One engine call for all episodes, one more for the replies that said nothing."""
        if not episodes:
            return []
        if self.protocol == "paper":
            return self._paper_turns(episodes, opening=opening)
        prompts = [self.conversation(ep, opening=opening) for ep in episodes]
        replies = self.engine.chat(prompts, self._sampling(episodes, 0))
        parsed = [self._read(ep, r, p) for ep, r, p in zip(episodes, replies, prompts)]
        empty = [i for i, p in enumerate(parsed) if not p.response and (opening or not p.ends)]
        if empty:
            self.stats.empty_retries += len(empty)
            again = self.engine.chat([prompts[i] for i in empty],
                                     self._sampling([episodes[i] for i in empty], 1))
            for i, reply in zip(empty, again):
                parsed[i] = self._read(episodes[i], reply, prompts[i])
        return [self._turn(ep, p, opening) for ep, p in zip(episodes, parsed)]

    def _turn(self, episode: Episode, parsed: ParsedReply, opening: bool) -> UserTurn:
        text, ends = parsed.response, parsed.ends and not opening
        if not text and not ends:
            text = STOCK_OPENING if opening else STOCK_REPLY
            self.stats.empty_defaults += 1
            episode.sim_details["empty_defaults"] = episode.sim_details.get("empty_defaults", 0) + 1
        details = {"parse": parsed.method, "thought": parsed.thought}
        if parsed.current_answer is not None:
            details["current_answer"] = parsed.current_answer
        return UserTurn(text=text, ends=ends, details=details)

    # ---- the paper protocol ----------------------------------------------------------------
    def paper_prompt(self, episode: Episode, *, opening: bool) -> list[Message]:
        """The one message the engine sees for the episode's next turn (paper protocol)."""
        persona = self._persona(episode)
        guidelines = persona.description if persona is not None else self.default_guidelines
        return build_prompt(episode.task.intent, guidelines, [] if opening else episode.messages)

    def _paper_turns(self, episodes: list[Episode], *, opening: bool) -> list[UserTurn]:
        """Up to `max_tries` rounds; each round is one engine call for the replies still failing."""
        prompts = [self.paper_prompt(ep, opening=opening) for ep in episodes]
        parsed: list[PaperReply | None] = [None] * len(episodes)
        tries = [0] * len(episodes)
        pending = list(range(len(episodes)))
        for attempt in range(self.max_tries):
            if not pending:
                break
            replies = self.engine.chat([prompts[i] for i in pending],
                                       self._sampling([episodes[i] for i in pending], attempt))
            failed = []
            for i, reply in zip(pending, replies):
                tries[i] += 1
                reading = read_reply(reply)
                if reading is None or (opening and reading.ends):
                    failed.append(i)
                else:
                    parsed[i] = reading
            self.stats.failed_tries += len(failed)
            pending = failed
        return [self._paper_turn(ep, p, opening, n) for ep, p, n in zip(episodes, parsed, tries)]

    def _paper_turn(self, episode: Episode, parsed: PaperReply | None, opening: bool,
                    tries: int) -> UserTurn:
        details = episode.sim_details
        if tries > 1:
            details["json_retries"] = details.get("json_retries", 0) + tries - 1
        if parsed is None:
            self.stats.replies += 1
            if opening:  # an opening cannot end: the real one, or a stock one
                self.stats.opening_fallbacks += 1
                details["opening_fallbacks"] = details.get("opening_fallbacks", 0) + 1
                return UserTurn(text=episode.task.opening or STOCK_OPENING,
                                details={"parse": "failed", "tries": tries})
            self.stats.ended_on_failure += 1
            details["ended_on_json_failure"] = True
            return UserTurn(text="", ends=True, details={"parse": "failed", "tries": tries})
        self.stats.add_parsed(parsed.ends)
        return UserTurn(text=parsed.response, ends=parsed.ends,
                        details={"parse": "json", "tries": tries, "thought": parsed.thought,
                                 "current_answer": parsed.current_answer})
