"""`wildsim data intents`: an LLM writes each conversation's hidden intent (the user's goal).

    wildsim data intents --in data/train.jsonl --engine builtin:smollm2-135m-instruct --out data/with_intents
    wildsim data intents --in DIR --engine openai:http://localhost:8000/v1#Qwen/Qwen2.5-14B-Instruct --out DIR2 --limit 1000

For every WildChat-schema record (JSON, JSONL or Parquet; a folder is read file by file) the
annotator is shown the conversation and asked for a high-level, deliberately vague description
of what the user wanted, phrased "You are a user chatting with an assistant language model to …"
(the UserLM recipe). Replies are validated and normalised (a thinking block removed, quotes and
labels stripped, the fixed opening restored, length checked). Two protocols (`--protocol`):

- "paper" (default; as the 2605.09808 release annotates): a few-shot prompt (three example
  conversations with their intents, written for this project), the whole conversation as
  `<role>: content` lines, sampling at temperature 0.7, top-p 0.9 with a generous token budget
  (`--max-tokens`, default 4096, room for a thinking model's reasoning). A record whose reply
  cannot be used (or that has no user turn) is dropped from the output and counted.
- "project" (the earlier prompt): instructions only, each turn shortened to 600 characters,
  greedy sampling, 120 tokens; a reply that cannot be used gets a generic fallback intent (kept,
  counted).

The output holds the same records, in the same files (as JSONL), each with an added `intent`
field that the Task loader uses as the hidden goal.

Calls go through a CachedChatEngine stored in `--cache` (default: OUT/.intent_cache), so a
killed run restarts without repeating any finished call. Work is done in batches (one engine
call per batch of conversations); a summary with the failure counts is printed and written to
OUT/intents_summary.json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from corpora.types import Message
from engines.base import Sampling

PREFIX = "You are a user chatting with an assistant language model to"
FALLBACK = f"{PREFIX} get help with a request."
MAX_INTENT_CHARS = 600
MAX_TURN_CHARS = 600  # per utterance shown to the annotator
PROMPT_VERSION = "intents-v1"  # part of the cache key: bump it when the prompt changes
PAPER_PROMPT_VERSION = "intents-paper-v1"
PROTOCOLS = ("paper", "project")
PAPER_MAX_TOKENS = 4096
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S)

INSTRUCTIONS = (
    "Below is a conversation between a person and an AI assistant. Describe the person's overall "
    "goal in one or two sentences, as instructions to someone who will play that person. Stay "
    "high level and deliberately vague: do not copy wording, names, numbers, code or other "
    "specifics from the conversation, and do not describe the assistant's answers. Start exactly "
    f"with \"{PREFIX}\" and write nothing else."
)


PAPER_INSTRUCTIONS = (
    "You will read a conversation between a person and an AI assistant. Write the person's "
    "overall intent as one or two sentences addressed to someone who will play that person. Keep "
    "it high level and deliberately vague: no copied wording, names, numbers or code, and nothing "
    "about the assistant's answers. Begin exactly with \"" + PREFIX + "\" and write nothing else."
)
#: (conversation, intent) examples of the few-shot prompt, written for this project
FEW_SHOT: tuple[tuple[tuple[tuple[str, str], ...], str], ...] = (
    ((("user", "my sourdough comes out flat every time, what am i doing wrong"),
      ("assistant", "A flat loaf usually means the starter is weak or the dough over-proofed..."),
      ("user", "starter is 2 weeks old, i feed it once a day"),
      ("assistant", "Two weeks can be too young; try feeding twice daily for a few days...")),
     f"{PREFIX} find out why a home-baked bread does not rise and how to fix it."),
    ((("user", "Write a python function that merges two sorted lists"),
      ("assistant", "def merge(a, b): ..."),
      ("user", "can you do it without using extra memory?")),
     f"{PREFIX} get a small piece of code for a common list operation, then refine it to meet "
     "an extra constraint."),
    ((("user", "I need a short speech for my sister's wedding, something funny but not mean"),
      ("assistant", "Here is a draft: ..."),
      ("user", "make it shorter and mention that we grew up on a farm")),
     f"{PREFIX} get a light-hearted family speech for a celebration, adjusted to personal details."),
)


@dataclass
class IntentStats:
    """Counts of one run; `fallback` counts records whose reply could not be used (dropped in the
    paper protocol, given FALLBACK in the project protocol); `dropped` lists the dropped records."""

    records: int = 0
    ok: int = 0
    normalised: int = 0
    fallback: int = 0
    no_user_turn: int = 0
    unreadable: int = 0
    kept: int = 0
    dropped: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.records} records: {self.ok} intents as written, {self.normalised} "
                f"normalised, {self.fallback} unusable replies, {self.no_user_turn} without a "
                f"user turn, {len(self.dropped)} dropped, {self.kept} written; "
                f"{self.unreadable} unreadable lines skipped")


def conversation_of(record: dict[str, Any], where: str) -> list[Message]:
    """The user/assistant messages of a WildChat-schema record; errors name the record."""
    conv = record.get("conversation")
    if not isinstance(conv, list):
        raise ValueError(f"{where}: field 'conversation' must be a list of utterances")
    messages = []
    for i, utt in enumerate(conv):
        if not isinstance(utt, dict) or "role" not in utt or "content" not in utt:
            raise ValueError(f"{where}: conversation[{i}] needs 'role' and 'content'")
        if utt["role"] in ("user", "assistant"):
            messages.append(Message(utt["role"], str(utt["content"] or "")))
    return messages


def annotation_prompt(conversation: Sequence[Message]) -> list[Message]:
    """The annotator's input: instructions, then the conversation with long turns shortened."""
    lines = []
    for m in conversation:
        text = m.content.strip()
        if len(text) > MAX_TURN_CHARS:
            text = text[:MAX_TURN_CHARS] + " […]"
        lines.append(f"{m.role.upper()}: {text}")
    return [Message("system", INSTRUCTIONS),
            Message("user", "Conversation:\n" + "\n\n".join(lines) + f"\n\nNow write the goal, "
                    f"starting with \"{PREFIX}\".")]


def _as_lines(conversation: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"{role}: {content.strip()}" for role, content in conversation)


def paper_prompt(conversation: Sequence[Message]) -> list[Message]:
    """The few-shot annotation prompt: instructions, the three examples as user/assistant pairs,
    then the whole conversation as `<role>: content` lines."""
    messages = [Message("system", PAPER_INSTRUCTIONS)]
    for example, intent in FEW_SHOT:
        messages += [Message("user", "Conversation:\n" + _as_lines(example)),
                     Message("assistant", intent)]
    lines = _as_lines([(m.role, m.content) for m in conversation])
    return messages + [Message("user", "Conversation:\n" + lines)]


def normalise_intent(reply: str) -> tuple[str | None, str]:
    """Validate an annotator reply. Returns (intent, how) with how in {"ok", "normalised",
    "fallback"}; intent is None for "fallback" (empty, too long, or no usable goal). A thinking
    block (`<think>…</think>`, or an unclosed one cut by the token limit) is removed first."""
    text = " ".join(_THINK.sub(" ", reply).strip().split())
    text = re.sub(r"^(intent|goal|answer)\s*:\s*", "", text, flags=re.I).strip().strip("\"'“”`").strip()
    if not text:
        return None, "fallback"
    how = "ok"
    at = text.lower().find(PREFIX.lower())
    if at > 0:
        text, how = text[at:], "normalised"
    elif at < 0:
        rest = re.sub(r"^(the user (wants|is trying|wanted)( to)?|to)\s+", "", text, flags=re.I)
        if len(rest.split()) < 3:
            return None, "fallback"
        text, how = f"{PREFIX} {rest[0].lower()}{rest[1:]}", "normalised"
    if text[: len(PREFIX)] != PREFIX:
        text, how = PREFIX + text[len(PREFIX):], "normalised"
    if len(text) > MAX_INTENT_CHARS or len(text) <= len(PREFIX) + 3:
        return None, "fallback"
    if not text.endswith((".", "!", "?")):
        text += "."
    return text, how


def read_records(path: Path, stats: "IntentStats") -> list[dict[str, Any]]:
    """The records of one file; lines that are not JSON objects are skipped, counted and named."""
    from corpora.records import iter_records

    records = []
    for raw in iter_records(path):
        if raw.data is None:
            stats.unreadable += 1
            print(f"skipped {raw.where}: {raw.problem}", file=sys.stderr)
        else:
            records.append(raw.data)
    return records


def annotate(records: list[dict[str, Any]], engine: Any, stats: IntentStats, *,
             batch_size: int = 32, sampling: Sampling | None = None, where: str = "",
             protocol: str = "paper") -> list[dict[str, Any]]:
    """Add an `intent` to every record in place, one engine call per batch; returns the records to
    write (the paper protocol leaves out those without a usable intent, see the module docstring)."""
    from tqdm import tqdm

    paper = protocol == "paper"
    prompt = paper_prompt if paper else annotation_prompt
    if sampling is None:
        sampling = paper_sampling() if paper else Sampling(temperature=0.0, max_tokens=120, seed=0)
    kept = []
    for start in tqdm(range(0, len(records), batch_size), desc=f"intents {where}", unit="batch"):
        batch = records[start:start + batch_size]
        convs = [conversation_of(r, f"{where} record {start + i}") for i, r in enumerate(batch)]
        asked = [i for i, c in enumerate(convs) if any(m.role == "user" and m.content.strip() for m in c)]
        replies = engine.chat([prompt(convs[i]) for i in asked], sampling) if asked else []
        answers = dict(zip(asked, replies))
        for i, record in enumerate(batch):
            stats.records += 1
            intent = None
            if i not in answers:
                stats.no_user_turn += 1
            else:
                intent, how = normalise_intent(answers[i])
                setattr(stats, how, getattr(stats, how) + 1)
            if intent is None and paper:
                stats.dropped.append(f"{where} record {start + i}")
                continue
            record["intent"] = intent or FALLBACK
            kept.append(record)
    stats.kept += len(kept)
    return kept


def paper_sampling(max_tokens: int = PAPER_MAX_TOKENS) -> Sampling:
    """The paper protocol's sampling: temperature 0.7, top-p 0.9, `max_tokens`, a fixed seed."""
    return Sampling(temperature=0.7, top_p=0.9, max_tokens=max_tokens, seed=0)


def run(in_path: Path, out_dir: Path, engine: Any, *, limit: int = 0, batch_size: int = 32,
        protocol: str = "paper", max_tokens: int = PAPER_MAX_TOKENS) -> IntentStats:
    """Annotate every file under `in_path` into `out_dir` (same file names, JSONL)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown intents protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    stats = IntentStats()
    out_dir.mkdir(parents=True, exist_ok=True)
    left = limit or None
    from corpora.records import record_files

    sampling = paper_sampling(max_tokens) if protocol == "paper" else None
    for path in record_files(in_path):
        records = read_records(path, stats)
        if left is not None:
            records, left = records[:left], left - min(left, len(records))
        records = annotate(records, engine, stats, batch_size=batch_size, where=path.name,
                           protocol=protocol, sampling=sampling)
        target = out_dir / (path.stem + ".jsonl")
        with open(target, "w") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        stats.files.append(str(target))
        if left == 0:
            break
    (out_dir / "intents_summary.json").write_text(json.dumps(asdict(stats), indent=1))
    return stats


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wildsim data intents", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in", dest="inp", required=True,
                        help="WildChat-schema file (.jsonl/.json/.parquet) or folder of them")
    parser.add_argument("--engine", required=True, help="engine spec of the annotator LLM, e.g. "
                        "builtin:smollm2-135m-instruct or openai:http://host:8000/v1#MODEL")
    parser.add_argument("--out", required=True, help="output folder (records with `intent` added)")
    parser.add_argument("--limit", type=int, default=0, help="annotate at most N records (0 = all)")
    parser.add_argument("--batch-size", type=int, default=32, help="conversations per engine call")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="paper",
                        help="paper (default): few-shot prompt, whole conversation, T 0.7 / top-p "
                             "0.9, unusable intents dropped; project: the earlier short prompt, "
                             "greedy, unusable intents replaced by a generic one")
    parser.add_argument("--max-tokens", type=int, default=PAPER_MAX_TOKENS,
                        help="paper protocol: token budget of each annotation (thinking included)")
    parser.add_argument("--cache", default=None, help="call cache file; default OUT/.intent_cache "
                        "(a restarted run reuses every finished call)")
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    from corpora.records import DataError, record_files
    from engines.spec import load_chat_engine

    out = Path(args.out)
    cache = Path(args.cache) if args.cache else out / ".intent_cache"
    try:
        record_files(Path(args.inp))  # fail on a bad --in before loading a model
        from engines.cache import CachedChatEngine

        version = PAPER_PROMPT_VERSION if args.protocol == "paper" else PROMPT_VERSION
        engine = CachedChatEngine(load_chat_engine(args.engine), cache, f"{version}|{args.engine}")
        stats = run(Path(args.inp), out, engine, limit=args.limit, batch_size=args.batch_size,
                    protocol=args.protocol, max_tokens=args.max_tokens)
    except (ValueError, OSError, DataError) as err:
        print(f"wildsim data intents: {err}", file=sys.stderr)
        return 2
    print(stats.summary())
    print(f"wrote {', '.join(stats.files)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
