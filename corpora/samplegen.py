"""Generate the bundled samples: corpora/data/wildchat_sample.jsonl (WildChat schema) and
corpora/data/wildbench_sample.jsonl (WildBench v2 schema).

    python -m corpora.samplegen            # rewrite both files (deterministic: same bytes each run)
    python -m corpora.samplegen --check    # exit 1 if the committed files differ from a fresh run

The texts are hand-written building blocks (corpora/sample_chat_blocks.py,
corpora/sample_bench_blocks.py). A seeded generator assembles conversations from them: simulated
users (hashed IP, country, state, browser header, a writing style) each have several
conversations; a conversation opens with a scenario's request in the user's register, then may
continue with the scenario's follow-ups (corrections, pasted errors), topic shifts, "make it
shorter" requests, thanks and goodbyes. User turns get the user's style: lower case, dropped
punctuation, "u"/"pls", and typos. A handful of conversations are deliberately filterable
(non-English, toxic, an empty turn, roles not alternating, a templated first turn repeated 20
times, and exact duplicates that share a conversation_hash).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from corpora import sample_chat_blocks as blocks
from corpora.sample_bench_blocks import BENCH
from corpora.sample_chat_blocks import Scenario

SEED = 20240515
N_REGULAR = 236
DATA = Path(__file__).parent / "data"
WILDCHAT_OUT = DATA / "wildchat_sample.jsonl"
WILDBENCH_OUT = DATA / "wildbench_sample.jsonl"
START = datetime(2023, 4, 10, tzinfo=timezone.utc)

#: (country, states, accept-language, weight)
COUNTRIES = (
    ("United States", ("California", "Texas", "New York", "Florida", "Illinois", "Washington"), "en-US,en;q=0.9", 30),
    ("United Kingdom", ("England", "Scotland"), "en-GB,en;q=0.9", 9),
    ("India", ("Maharashtra", "Karnataka", "Delhi", "Tamil Nadu"), "en-IN,en;q=0.9,hi;q=0.8", 12),
    ("Canada", ("Ontario", "British Columbia", "Quebec"), "en-CA,en;q=0.9,fr-CA;q=0.8", 7),
    ("Australia", ("New South Wales", "Victoria"), "en-AU,en;q=0.9", 5),
    ("Philippines", ("Metro Manila", "Cebu"), "en-US,en;q=0.9,fil;q=0.8", 6),
    ("Germany", ("Bavaria", "Berlin", "Hesse"), "de-DE,de;q=0.9,en;q=0.8", 6),
    ("Nigeria", ("Lagos", None), "en-GB,en;q=0.9", 4),
    ("Pakistan", ("Punjab", "Sindh"), "en-US,en;q=0.9,ur;q=0.8", 4),
    ("Singapore", (None,), "en-SG,en;q=0.9,zh;q=0.7", 3),
    ("Netherlands", ("North Holland", "South Holland"), "nl-NL,nl;q=0.9,en;q=0.8", 3),
    ("Brazil", ("São Paulo",), "pt-BR,pt;q=0.9,en;q=0.7", 3),
    ("Kenya", ("Nairobi County",), "en-US,en;q=0.9,sw;q=0.7", 2),
)
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:109.0) Gecko/20100101 Firefox/117.0",
)
MODELS = (("gpt-3.5-turbo-0613", 45), ("gpt-3.5-turbo-0125", 20), ("gpt-4-0314", 15),
          ("gpt-4-1106-preview", 12), ("gpt-4-0125-preview", 8))
STYLES = (("careful", 30), ("casual", 35), ("terse", 15), ("sloppy", 20))
OPENERS = ("hi, ", "Hello! ", "Hi there. ", "hey ", "Quick question: ", "Good morning. ")
#: context a user may add around a request, by register
CAREFUL_PREFIX = ("I'm a beginner, so please keep it simple. ", "This is for a school project. ",
                  "I've been stuck on this for a while. ", "I need this for work tomorrow. ",
                  "English is not my first language, sorry for mistakes. ")
CAREFUL_SUFFIX = (" Thanks in advance!", " Thank you.", " Please explain your answer.",
                  " Keep it short please.", " I would appreciate a detailed answer.")
CASUAL_SUFFIX = (" pls", " asap", " thx", "??", " plz help", " quick", " lol", " :)")
SHIFTS = ("also ", "another question, ", "new question: ", "", "", "btw ", "one more thing, ")
MISSPELL = {"the": "teh", "because": "becuase", "receive": "recieve", "definitely": "definately",
            "separate": "seperate", "which": "wich", "their": "thier", "really": "realy",
            "would": "woud", "write": "wrtie", "function": "funtion", "something": "somthing"}
CASUAL = ((r"\byou\b", "u"), (r"\bplease\b", "pls"), (r"\bI'm\b", "im"), (r"\bdon't\b", "dont"),
          (r"\bcan't\b", "cant"), (r"\bdoesn't\b", "doesnt"), (r"\bit's\b", "its"),
          (r"\bthanks\b", "thx"))
MOD_CATEGORIES = ("harassment", "harassment/threatening", "harassment_threatening", "hate",
                  "hate/threatening", "hate_threatening", "self-harm", "self-harm/instructions",
                  "self-harm/intent", "self_harm", "self_harm_instructions", "self_harm_intent",
                  "sexual", "sexual/minors", "sexual_minors", "violence", "violence/graphic",
                  "violence_graphic")
DETOXIFY = ("identity_attack", "insult", "obscene", "severe_toxicity", "sexual_explicit", "threat",
            "toxicity")


@dataclass
class User:
    hashed_ip: str
    country: str
    state: str | None
    header: dict[str, str]
    style: str
    coding_share: float  # probability that a conversation is about code


@dataclass
class Turn:
    role: str
    content: str
    toxic: bool = False
    redacted: bool = False
    language: str = "English"


# ---------- users and their styles ----------

def make_users(rng: random.Random, count: int) -> list[User]:
    """`count` users with seeded IP hashes, countries, headers and styles."""
    users = []
    weights = [c[3] for c in COUNTRIES]
    for i in range(count):
        country, states, lang, _ = rng.choices(COUNTRIES, weights)[0]
        users.append(User(
            hashed_ip=hashlib.sha256(f"sample-user-{i}".encode()).hexdigest(),
            country=country, state=rng.choice(states),
            header={"accept-language": lang, "user-agent": rng.choice(USER_AGENTS)},
            style=rng.choices([s for s, _ in STYLES], [w for _, w in STYLES])[0],
            coding_share=rng.choice((0.2, 0.5, 0.5, 0.8))))
    return users


def typo(rng: random.Random, word: str) -> str:
    """One typo in a lower-case alphabetic word: a known misspelling, swap, drop or double."""
    if word in MISSPELL and rng.random() < 0.6:
        return MISSPELL[word]
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 2)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def with_typos(rng: random.Random, text: str, rate: float) -> str:
    """Typos in about `rate` of the plain lower-case words (code-like tokens are left alone)."""
    words = text.split(" ")
    for i, word in enumerate(words):
        if word.isalpha() and word.islower() and rng.random() < rate:
            words[i] = typo(rng, word)
    return " ".join(words)


def styled(rng: random.Random, text: str, style: str) -> str:
    """A user turn in the user's register (the text is hand-written in a neutral register).
    Only the first line is restyled: pasted code or errors after it stay verbatim."""
    head, newline, rest = text.partition("\n")
    return _styled_line(rng, head, style) + newline + rest if head else text


def _styled_line(rng: random.Random, text: str, style: str) -> str:
    """Restyle the user's own words; text pasted after a colon or a quote stays verbatim."""
    cut = min((i for i in (text.find(": "), text.find(' "')) if i > 0), default=len(text))
    if cut < len(text):
        return _restyle(rng, text[:cut], style, keep_end=True) + text[cut:]
    return _restyle(rng, text, style)


def _restyle(rng: random.Random, text: str, style: str, keep_end: bool = False) -> str:
    if style == "careful":
        text = text[0].upper() + text[1:]
        if keep_end or text[-1] in ".?!:\"":
            return text
        return text + ("?" if _is_question(text) else ".")
    text = text[0].lower() + text[1:] if not text[:2].isupper() else text
    if style in ("casual", "sloppy", "terse"):
        text = text.replace("I ", "i ").replace("I'm", "im") if rng.random() < 0.7 else text
        for pattern, repl in CASUAL:
            if rng.random() < (0.6 if style == "sloppy" else 0.35):
                text = re.sub(pattern, repl, text, flags=re.I)
        if rng.random() < 0.7 and not keep_end:
            text = text.rstrip(".")
    text = with_typos(rng, text, {"casual": 0.03, "sloppy": 0.08, "terse": 0.02}[style])
    if style == "sloppy" and rng.random() < 0.3:
        text = text.replace(", ", ",")
    return text


def _is_question(text: str) -> bool:
    return text.split(" ", 1)[0].lower() in ("how", "what", "why", "can", "could", "is", "do",
                                             "does", "which", "where", "when", "should", "will")


# ---------- conversations ----------

def fill_slots(rng: random.Random, scenario: Scenario) -> dict[str, str]:
    return {name: rng.choice(values) for name, values in scenario.slots.items()}


def _fill(text: str, slots: dict[str, str]) -> str:
    for name, value in slots.items():
        text = text.replace(f"«{name}»", value)
    return text


def opening(rng: random.Random, scenario: Scenario, user: User, slots: dict[str, str]) -> str:
    """The scenario's request in the user's register, with any pasted attachment verbatim."""
    variants = scenario.openings
    index = {"careful": 0, "casual": min(1, len(variants) - 1), "terse": len(variants) - 1,
             "sloppy": rng.randrange(len(variants))}[user.style]
    text = styled(rng, _fill(variants[index], slots), user.style)
    if user.style == "careful":
        if rng.random() < 0.3:
            text = rng.choice(CAREFUL_PREFIX) + text
        if rng.random() < 0.3 and not scenario.attachment:
            text += rng.choice(CAREFUL_SUFFIX)
        if rng.random() < 0.3:
            opener = rng.choice(OPENERS)
            text = opener + (text if opener.endswith((". ", "! ", ": ")) else text[0].lower() + text[1:])
    elif rng.random() < 0.3 and not scenario.attachment:
        text += rng.choice(CASUAL_SUFFIX)
    return text + scenario.attachment


def first_paragraphs(text: str) -> str:
    """The first paragraph of a reply (two when the first is a short lead-in)."""
    parts = text.split("\n\n")
    head = parts[0]
    if (len(head) < 80 or head.endswith(":")) and len(parts) > 1:
        head += "\n\n" + parts[1]
    return head


def pick_scenario(rng: random.Random, user: User, avoid: str = "") -> Scenario:
    roll = rng.random()
    pool = (blocks.CODING if roll < user.coding_share else
            blocks.OTHER if roll > 0.9 else blocks.WRITING)
    choices = [s for s in pool if s.key != avoid]
    return rng.choice(choices)


def regular_conversation(rng: random.Random, user: User) -> list[Turn]:
    """One conversation: an opening, then follow-ups, shifts, rewrites and thanks."""
    n_user = rng.choices((1, 2, 3, 4, 5, 6), (38, 26, 16, 10, 6, 4))[0]
    scenario = pick_scenario(rng, user)
    slots = fill_slots(rng, scenario)
    turns = [Turn("user", opening(rng, scenario, user, slots)),
             Turn("assistant", _fill(scenario.reply, slots))]
    follow = list(scenario.follow)
    while len(turns) // 2 < n_user:
        last_turn = len(turns) // 2 == n_user - 1
        roll = rng.random()
        if last_turn and n_user > 1 and roll < 0.35:
            user_text, reply = rng.choice(blocks.THANKS)
        elif follow and roll < 0.75:
            user_text, reply = follow.pop(0)
            user_text, reply = _fill(user_text, slots), _fill(reply, slots)
        elif scenario.category == "writing" and roll < 0.85:
            pool, template = ((blocks.SHORTER, blocks.SHORTER_REPLY) if rng.random() < 0.6
                              else (blocks.AGAIN, blocks.AGAIN_REPLY))
            user_text = rng.choice(pool)
            reply = template.format(prev_short=first_paragraphs(turns[-1].content))
        else:
            scenario = pick_scenario(rng, user, avoid=scenario.key)
            slots = fill_slots(rng, scenario)
            follow = list(scenario.follow)
            text = opening(rng, scenario, user, slots)
            shift = rng.choice(SHIFTS)
            user_text = shift + text[0].lower() + text[1:] if shift else text
            reply = _fill(scenario.reply, slots)
            turns += [Turn("user", user_text), Turn("assistant", reply)]
            continue
        turns += [Turn("user", styled(rng, user_text, user.style)), Turn("assistant", reply)]
    return turns


def redact(rng: random.Random, turns: list[Turn]) -> None:
    """Add an anonymised name/email to a careful writer's first turn (as WildChat's redaction
    leaves them), marking the utterance redacted."""
    first = turns[0]
    first.content += rng.choice((" My name is PRESIDIO_ANONYMIZED_PERSON.",
                                 " You can sign it with my name PRESIDIO_ANONYMIZED_PERSON and my "
                                 "email PRESIDIO_ANONYMIZED_EMAIL_ADDRESS."))
    first.redacted = True


def filterable_conversations(rng: random.Random, users: list[User]) -> list[tuple[User, list[Turn]]]:
    """The conversations the filters exist for: non-English, toxic, empty turn, roles out of
    order, and a templated first turn repeated once per topic."""
    out: list[tuple[User, list[Turn]]] = []
    home = {"German": "Germany", "Portuguese": "Brazil"}
    for language, question, answer in blocks.NON_ENGLISH:
        locals_ = [u for u in users if u.country == home.get(language)]
        out.append((rng.choice(locals_ or users), [Turn("user", question, language=language),
                                        Turn("assistant", answer, language=language)]))
    for question, answer in blocks.TOXIC:
        out.append((rng.choice(users), [Turn("user", question, toxic=True),
                                        Turn("assistant", answer)]))
    for _ in range(3):  # a blank message sent by mistake in the middle of a conversation
        user = rng.choice(users)
        turns = regular_conversation(rng, user)[:2]
        turns += [Turn("user", rng.choice(("", " ", "\n"))),
                  Turn("assistant", "It looks like your message was empty. What would you like "
                                    "to ask?"),
                  Turn("user", styled(rng, "sorry wrong button. can you explain it again more "
                                           "simply", user.style)),
                  Turn("assistant", "Of course. In short: " + first_paragraphs(turns[1].content))]
        out.append((user, turns))
    for _ in range(3):  # the user sends two messages before the reply
        user = rng.choice(users)
        turns = regular_conversation(rng, user)[:2]
        turns.insert(1, Turn("user", rng.choice(("??", "hello?", "are you there"))))
        out.append((user, turns))
    user = rng.choice(users)  # a conversation that starts with the assistant
    out.append((user, [Turn("assistant", "Hello! How can I help you today?"),
                       Turn("user", "what is the capital of australia"),
                       Turn("assistant", "The capital of Australia is Canberra.")]))
    for topic in blocks.TEMPLATE_TOPICS:
        out.append((rng.choice(users), [Turn("user", blocks.TEMPLATE + topic),
                                        Turn("assistant", blocks.TEMPLATE_REPLY.format(topic=topic))]))
    return out


def moderation(rng: random.Random, toxic: bool) -> tuple[dict[str, Any], dict[str, float]]:
    """Plausible OpenAI-moderation and Detoxify entries for one utterance."""
    scores = {name: round(rng.uniform(1e-7, 2e-4), 9) for name in MOD_CATEGORIES}
    if toxic:
        for name in ("harassment", "harassment_threatening" if rng.random() < 0.3 else "hate"):
            scores[name] = round(rng.uniform(0.45, 0.93), 6)
    categories = {name: score > 0.4 for name, score in scores.items()}
    detox = {name: round(rng.uniform(1e-5, 1e-3), 8) for name in DETOXIFY}
    if toxic:
        detox["toxicity"] = round(rng.uniform(0.6, 0.98), 6)
        detox["insult"] = round(rng.uniform(0.3, 0.9), 6)
    return {"categories": categories, "category_scores": scores,
            "flagged": any(categories.values())}, detox


def conversation_hash(turns: list[Turn]) -> str:
    """An md5 of the roles and contents (equal conversations share it, as in WildChat)."""
    text = json.dumps([[t.role, t.content] for t in turns], ensure_ascii=False)
    return hashlib.md5(text.encode()).hexdigest()


def build_record(rng: random.Random, user: User, turns: list[Turn], when: datetime,
                 next_id: list[int]) -> dict[str, Any]:
    """A WildChat-schema record; `next_id` holds the next turn_identifier (kept unique)."""
    utterances, openai, detox = [], [], []
    for turn in turns:
        when += timedelta(seconds=rng.randint(8, 240 if turn.role == "user" else 40))
        next_id[0] += rng.randint(1, 5000)
        is_user = turn.role == "user"
        utterances.append({
            "content": turn.content, "country": user.country if is_user else None,
            "hashed_ip": user.hashed_ip if is_user else None,
            "header": dict(user.header) if is_user else None, "language": turn.language,
            "redacted": turn.redacted, "role": turn.role, "state": user.state if is_user else None,
            "timestamp": None if is_user else when.isoformat(), "toxic": turn.toxic,
            "turn_identifier": next_id[0]})
        mod, tox = moderation(rng, turn.toxic)
        openai.append(mod)
        detox.append(tox)
    languages = [t.language for t in turns]
    return {
        "conversation_hash": conversation_hash(turns),
        "model": rng.choices([m for m, _ in MODELS], [w for _, w in MODELS])[0],
        "timestamp": when.isoformat(), "conversation": utterances,
        "turn": sum(t.role == "user" for t in turns),
        "language": max(sorted(set(languages)), key=languages.count) if languages else "English",
        "openai_moderation": openai, "detoxify_moderation": detox,
        "toxic": any(t.toxic for t in turns), "redacted": any(t.redacted for t in turns),
        "state": user.state, "country": user.country, "hashed_ip": user.hashed_ip,
        "header": dict(user.header)}


def wildchat_records(seed: int = SEED) -> list[dict[str, Any]]:
    """All sample records, in timestamp order."""
    rng = random.Random(seed)
    users = make_users(rng, 78)
    # a few heavy users and many light ones, so the user-disjoint split matters
    user_weights = [rng.choice((1, 1, 2, 3, 6)) for _ in users]
    pairs = []
    for _ in range(N_REGULAR):
        user = rng.choices(users, user_weights)[0]
        turns = regular_conversation(rng, user)
        if user.style == "careful" and turns[0].content.lower().startswith(
                ("can you help me write a cover", "i need to write an email", "i'm the best man")):
            redact(rng, turns)
        pairs.append((user, turns))
    pairs += [(u, [Turn(t.role, t.content) for t in turns])  # exact re-submissions
              for u, turns in rng.sample(pairs[:N_REGULAR], 3)]
    pairs += filterable_conversations(rng, users)
    rng.shuffle(pairs)
    times = sorted(START + timedelta(minutes=rng.randint(0, 380 * 24 * 60)) for _ in pairs)
    next_id = [1_000_000]
    return [build_record(rng, user, turns, when, next_id)
            for (user, turns), when in zip(pairs, times)]


def wildbench_records(chat_records: list[dict[str, Any]], seed: int = SEED) -> list[dict[str, Any]]:
    """The WildBench-schema sample. The first few session_ids are conversation hashes of sample
    conversations (as WildBench sessions come from WildChat), so forcing them into test has
    something to do; the rest are fresh ids."""
    rng = random.Random(seed + 1)
    english = [r["conversation_hash"] for r in chat_records if r["language"] == "English"]
    linked = rng.sample(english, 4)
    records = []
    for index, block in enumerate(BENCH):
        session = linked[index] if index < len(linked) else hashlib.md5(
            f"wildbench-sample-{index}".encode()).hexdigest()
        turns = [*block.history, ("user", block.query)]
        records.append({
            "id": f"wb-sample-{index:03d}", "session_id": session,
            "conversation_input": [{"content": content, "language": "English", "redacted": False,
                                    "role": role, "toxic": False} for role, content in turns],
            "references": {"gpt-4": block.reference}, "checklist": list(block.checklist),
            "length": len(turns), "primary_tag": block.primary_tag,
            "secondary_tags": list(block.secondary_tags), "intent": block.intent,
            "appropriate": "1.0"})
    return records


def jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corpora.samplegen",
                                     description="Write (or check) the bundled samples.")
    parser.add_argument("--check", action="store_true",
                        help="compare a fresh generation with the files on disk; exit 1 if they differ")
    args = parser.parse_args(argv)
    chat = wildchat_records()
    outputs = {WILDCHAT_OUT: jsonl(chat), WILDBENCH_OUT: jsonl(wildbench_records(chat))}
    if args.check:
        stale = [str(p) for p, text in outputs.items()
                 if not p.exists() or p.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"{path} differs from a fresh generation: run python -m corpora.samplegen",
                  file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path} ({text.count(chr(10))} records)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
