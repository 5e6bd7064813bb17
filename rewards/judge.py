"""The LLM-judge reward: helpfulness 0–10 from one or more judges, given the intent and the
whole conversation. The same class scores training episodes and evaluation conversations, so
the two cannot drift.

Two protocols (`protocol=`), the same steps:
1. The prompt. `wildsim`: `judge_prompt(intent, messages)`, a system prompt with the rubric and
   a user message with the user's hidden goal and the transcript as [USER]/[ASSISTANT] blocks.
   `paper` (the 2605.09808 release): `paper_judge_prompt`, one user message holding the intent
   and the whole history as "ROLE: text" lines, criteria alignment with the intent, usefulness
   and clarity, an integer 0–10 answered as {"thought", "score"}; the user utterance that carries
   the end signal (the last message of an episode the user ended) is dropped before judging.
2. Each judge answers; `parse_verdict` reads it tolerantly (code fences, trailing text, single
   quotes, "7/10", a "Score: 7" line). A verdict with no score, or a score outside 0–10, is a
   parse failure — counted, never read as 0 unless the failure policy says so. With `tries` > 1
   (paper: 8) the replies that failed are asked again: the first try asks for structured
   (JSON-schema) output, later tries for free text read with the same parser.
3. Aggregation and the failure policy. reward = mean score / 10 over the judges that parsed.
   `failure_policy="exclude"` (the project's default): a failed judge is left out of the mean;
   when every judge failed the result is `excluded=True` (to be left out of the loss), its value
   is only the placeholder `fallback`, and details["excluded"] says so. `failure_policy="zero"`
   (the paper's): a failed judge scores 0 and is still averaged in; nothing is excluded.
   Conversations where every judge failed are counted in `JudgeReward.stats` (`judge/all_failed`)
   under both policies; `judge/excluded` counts the excluded ones, `judge/retries` the retried
   calls.

details of each result: "judges" (per judge: name, score or None, rationale, method, error,
tries, and the raw reply when it failed to parse), "valid_judges", "parse_failures",
"mean_score" (0–10 or None), "fallback_used" (no judge parsed, under either policy),
"excluded", "failure_policy", "protocol".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from corpora.types import END_USER, Episode, Message
from engines.base import ChatEngine, Sampling
from engines.jsonparse import extract_field, extract_json_object
from rewards.base import REWARD_KINDS, RewardResult

SCORE_MIN, SCORE_MAX = 0.0, 10.0
VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"rationale": {"type": "string"},
                   "score": {"type": "integer", "minimum": 0, "maximum": 10}},
    "required": ["rationale", "score"],
}
JUDGE_SAMPLING = Sampling(temperature=0.0, top_p=1.0, max_tokens=512, seed=0, json_schema=VERDICT_SCHEMA)
PAPER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"thought": {"type": "string"},
                   "score": {"type": "integer", "minimum": 0, "maximum": 10}},
    "required": ["thought", "score"],
}
RATIONALE_KEYS = ("rationale", "thought", "reasoning", "reason", "explanation")
PROTOCOLS = ("wildsim", "paper")
FAILURE_POLICIES = ("exclude", "zero")
RAW_KEPT_CHARS = 500

JUDGE_SYSTEM = """\
You evaluate AI assistants. You will read a conversation between a user and an AI assistant, \
and the goal the user had in mind. The assistant was never told the goal: it had to work it out \
from the conversation.

Rate how helpful the assistant was to this user over the whole conversation, on a scale from 0 \
to 10:
- 0-2: unhelpful, wrong, or ignored what the user asked;
- 3-4: partly relevant, with major errors or omissions;
- 5-6: addressed the request but with noticeable gaps, errors or needless friction;
- 7-8: helpful and correct, with minor issues;
- 9-10: excellent: got the user what they wanted efficiently, asked for clarification when it \
was really needed, accurate and well presented.
Judge the assistant only, not the user. Do not reward length for its own sake.

Answer with one JSON object and nothing else:
{"rationale": "<two or three sentences>", "score": <integer from 0 to 10>}"""

JUDGE_USER = """\
# The user's goal (hidden from the assistant)
{intent}

# The conversation
{transcript}

# Your verdict
Answer with the JSON object only."""


def _cut(text: str, max_words: int | None) -> str:
    words = text.split(" ")
    if max_words is None or len(words) <= max_words:
        return text
    return " ".join(words[:max_words]) + " […]"


def judge_prompt(intent: str, messages: Sequence[Message], max_words: int | None = 1000) -> list[Message]:
    """The judge's conversation for one transcript; each turn is cut to `max_words` words."""
    labels = {"user": "USER", "assistant": "ASSISTANT"}
    turns = [f"[{labels[m.role]}]\n{_cut(m.content.strip(), max_words)}"
             for m in messages if m.role in labels]
    transcript = "\n\n".join(turns) if turns else "(no messages)"
    return [Message("system", JUDGE_SYSTEM),
            Message("user", JUDGE_USER.format(intent=intent.strip(), transcript=transcript))]


PAPER_PROMPT = """\
You are judging how well an AI assistant served a user in the conversation below. The user had \
an intent that the assistant was never told; the assistant had to work it out from what the \
user said.

User intent:
{intent}

Conversation:
{history}

Judge the assistant on three criteria:
1. Alignment with the intent: did its replies move the user towards what they wanted?
2. Usefulness: were the replies correct, relevant and actionable?
3. Clarity: were the replies clear and easy to follow?

Give one integer score from 0 (useless) to 10 (excellent) for the assistant over the whole \
conversation. Answer with a JSON object: {{"thought": "<your reasoning>", "score": <integer 0-10>}}"""


def paper_judge_prompt(intent: str, messages: Sequence[Message], max_words: int | None = None
                       ) -> list[Message]:
    """The paper protocol's judge conversation: one user message with the intent and the whole
    history as "ROLE: text" lines (turns cut to `max_words` words when given)."""
    lines = [f"{m.role.upper()}: {_cut(m.content.strip(), max_words)}"
             for m in messages if m.role in ("user", "assistant")]
    return [Message("user", PAPER_PROMPT.format(intent=intent.strip(),
                                                history="\n".join(lines) or "(no messages)"))]


def judged_messages(episode: Episode, drop_end_utterance: bool) -> list[Message]:
    """The messages the judge sees: all of them, or (drop_end_utterance) without the final user
    utterance of an episode the user ended, since that utterance carries the end signal."""
    msgs = list(episode.messages)
    if drop_end_utterance and episode.end_reason == END_USER and msgs and msgs[-1].role == "user":
        return msgs[:-1]
    return msgs


@dataclass(frozen=True)
class Verdict:
    """One judge's reading: score in [0, 10] or None (then `error` says why); method "json",
    "field" (a score read from non-JSON text) or "none"."""

    score: float | None
    rationale: str = ""
    method: str = "none"
    error: str | None = None


_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:(?:/|out of)\s*(\d+(?:\.\d+)?))?")


def coerce_score(value: Any) -> tuple[float | None, str | None]:
    """(score, error) from a JSON value or text: 7, 7.5, "7", "7/10", "8 out of 10", "3/5" (→ 6).
    Out of range [0, 10] or unreadable → (None, why)."""
    if isinstance(value, bool) or value is None:
        return None, f"score is {value!r}, not a number"
    if isinstance(value, (int, float)):
        score = float(value)
    else:
        match = _NUMBER.match(str(value))
        if not match:
            return None, f"score {str(value)[:40]!r} is not a number"
        score = float(match.group(1))
        if match.group(2) and float(match.group(2)) > 0:
            score = score / float(match.group(2)) * SCORE_MAX
    if not SCORE_MIN <= score <= SCORE_MAX:
        return None, f"score {score:g} outside {SCORE_MIN:g}-{SCORE_MAX:g}"
    return score, None


def parse_verdict(text: str) -> Verdict:
    """Read a judge reply (see the module docstring); never raises."""
    obj = extract_json_object(text or "")
    rationale = ""
    if obj is not None:
        lowered = {str(k).lower(): v for k, v in obj.items()}
        rationale = next((str(lowered[k]) for k in RATIONALE_KEYS if lowered.get(k) is not None), "")
        if "score" in lowered:
            score, error = coerce_score(lowered["score"])
            return Verdict(score, rationale, "json", error)
    rationale = rationale or next((r for r in (extract_field(text or "", k) for k in RATIONALE_KEYS)
                                   if r), "")
    found = extract_field(text or "", "score")
    if found is None:
        return Verdict(None, rationale, "none", "no score in the reply")
    score, error = coerce_score(found)
    return Verdict(score, rationale, "field", error)


def aggregate(verdicts: Sequence[Verdict], fallback: float = 0.0, failure_policy: str = "exclude"
              ) -> tuple[float, float | None, int]:
    """(reward, mean score or None, number of valid judges).

    exclude: reward = mean valid score / 10, or `fallback` when no verdict has a score.
    zero:    a failed verdict counts as score 0 and is averaged in; with none valid, reward 0.0.
    """
    valid = [v.score for v in verdicts if v.score is not None]
    scores = [v.score if v.score is not None else 0.0 for v in verdicts] \
        if failure_policy == "zero" else valid
    if not valid and failure_policy != "zero":
        return fallback, None, 0
    mean = sum(scores) / len(scores) if scores else 0.0
    return mean / SCORE_MAX, (mean if valid else None), len(valid)


@dataclass
class JudgeStats:
    """Counters since construction: verdicts read, parse failures, field fallbacks, and
    conversations where every judge failed (scored with the fallback)."""

    verdicts: int = 0
    parse_failures: int = 0
    field_fallbacks: int = 0
    all_failed: int = 0
    excluded: int = 0
    retries: int = 0
    per_judge_failures: dict[str, int] = field(default_factory=dict)

    def as_metrics(self, prefix: str = "judge") -> dict[str, float]:
        rate = self.parse_failures / self.verdicts if self.verdicts else 0.0
        return {f"{prefix}/verdicts": float(self.verdicts),
                f"{prefix}/parse_failures": float(self.parse_failures),
                f"{prefix}/parse_failure_rate": rate,
                f"{prefix}/field_fallbacks": float(self.field_fallbacks),
                f"{prefix}/all_failed": float(self.all_failed),
                f"{prefix}/excluded": float(self.excluded),
                f"{prefix}/retries": float(self.retries)}


def _judge_name(engine: Any, index: int) -> str:
    return str(getattr(engine, "name", None) or f"judge{index}")


@REWARD_KINDS.register("judge")
class JudgeReward:
    """Helpfulness 0–10 from LLM judges, mean over the judges / 10 (see the module docstring).

    judges:         ChatEngines (one call each per batch and try), or engine spec strings
    protocol:       "wildsim" (rubric in a system prompt) or "paper" (the release's prompt; its
                    defaults: 8 tries, failure_policy "zero", the end-signal utterance dropped)
    sampling:       judge sampling (default: temperature 0, 512 tokens, the protocol's schema)
    fallback:       the placeholder value of an excluded result (every judge failed)
    failure_policy: "exclude" (failed judges left out; all failed → excluded) or "zero"
    tries:          calls per judge before a verdict counts as failed (None: protocol default)
    drop_end_utterance: drop the user utterance carrying the end signal (None: protocol default)
    max_words:      each turn is cut to this many words in the judge prompt (None: no cut)
    names:          names recorded in details (default: each engine's `name`, else judge0…)
    """

    def __init__(self, judges: Sequence[ChatEngine | str], *, name: str = "judge",
                 protocol: str = "wildsim", sampling: Sampling | None = None,
                 fallback: float = 0.0, failure_policy: str | None = None,
                 tries: int | None = None, drop_end_utterance: bool | None = None,
                 max_words: int | None = 1000, names: Sequence[str] | None = None):
        if not judges:
            raise ValueError(f"reward {name!r}: give at least one judge engine")
        if names is not None and len(names) != len(judges):
            raise ValueError(f"reward {name!r}: {len(names)} names for {len(judges)} judges")
        if protocol not in PROTOCOLS:
            raise ValueError(f"reward {name!r}: protocol must be one of {PROTOCOLS}, got {protocol!r}")
        paper = protocol == "paper"
        self.failure_policy = failure_policy or ("zero" if paper else "exclude")
        if self.failure_policy not in FAILURE_POLICIES:
            raise ValueError(f"reward {name!r}: failure_policy must be one of {FAILURE_POLICIES}, "
                             f"got {self.failure_policy!r}")
        self.tries = tries if tries is not None else (8 if paper else 1)
        if self.tries < 1:
            raise ValueError(f"reward {name!r}: tries must be >= 1, got {self.tries}")
        loaded = [_load(j) if isinstance(j, str) else j for j in judges]
        self.judges = loaded
        self.judge_names = list(names) if names else [
            j if isinstance(j, str) else _judge_name(e, i) for i, (j, e) in enumerate(zip(judges, loaded))]
        self.name = name
        self.protocol = protocol
        self.sampling = sampling or JUDGE_SAMPLING.with_(
            json_schema=PAPER_SCHEMA if paper else VERDICT_SCHEMA)
        if self.sampling.json_schema and not paper:  # the rationale is cut so the score fits
            from engines.constrained import fit_schema

            self.sampling = self.sampling.with_(
                json_schema=fit_schema(self.sampling.json_schema, self.sampling.max_tokens))
        self.fallback = fallback
        self.drop_end_utterance = paper if drop_end_utterance is None else drop_end_utterance
        self.max_words = max_words
        self.stats = JudgeStats()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], engine_loader: Callable[..., Any] | None = None
                    ) -> "JudgeReward":
        """From {kind: judge, judges: [spec, ...], protocol, failure_policy, tries,
        drop_end_utterance, fallback, max_words, max_tokens, engine_options}.

        A judges item is a spec string or {spec: ..., engine_options: {...}}; its own options
        are applied over the shared engine_options (so a Qwen3 judge's enable_thinking switch does
        not reach another judge)."""
        cfg = dict(config)
        cfg.pop("kind", None)
        specs = cfg.pop("judges", None)
        if not isinstance(specs, list) or not specs:
            raise ValueError("judge reward config needs judges: [<engine spec>, ...]")
        engine_options = cfg.pop("engine_options", {})
        max_tokens = cfg.pop("max_tokens", None)
        loader = engine_loader or _load
        judges = [judge_entry(item, engine_options) for item in specs]
        engines = [loader(spec, **options) for spec, options in judges]
        paper = cfg.get("protocol") == "paper"
        sampling = JUDGE_SAMPLING.with_(max_tokens=max_tokens, json_schema=PAPER_SCHEMA if paper
                                        else VERDICT_SCHEMA) if max_tokens else None
        return cls(engines, names=[spec for spec, _ in judges], sampling=sampling, **cfg)

    def score(self, episodes: Sequence[Episode]) -> list[RewardResult]:
        """One result per episode: the judges see the task's intent and the messages."""
        return self.score_conversations(
            [(ep.task.intent, judged_messages(ep, self.drop_end_utterance)) for ep in episodes])

    def score_conversation(self, intent: str, messages: Sequence[Message]) -> RewardResult:
        """Score one conversation (what evaluation calls for a single transcript)."""
        return self.score_conversations([(intent, messages)])[0]

    def _prompt(self, intent: str, messages: Sequence[Message]) -> list[Message]:
        if self.protocol == "paper":
            return paper_judge_prompt(intent, messages, self.max_words)
        return judge_prompt(intent, messages, self.max_words)

    def _ask(self, judge: ChatEngine, prompts: list[list[Message]]) -> tuple[list[str], list[int]]:
        """One judge's replies, retrying failed parses: structured output on the first try, free
        text (no schema, the try number as seed) after. Returns the replies and tries used."""
        replies, used = [""] * len(prompts), [0] * len(prompts)
        pending = list(range(len(prompts)))
        for attempt in range(self.tries):
            if not pending:
                break
            sampling = self.sampling if attempt == 0 else self.sampling.with_(
                json_schema=None, seed=attempt)
            self.stats.retries += len(pending) if attempt else 0
            for i, text in zip(pending, judge.chat([prompts[i] for i in pending], sampling)):
                replies[i], used[i] = text, attempt + 1
            pending = [i for i in pending if parse_verdict(replies[i]).score is None]
        return replies, used

    def score_conversations(self, items: Sequence[tuple[str, Sequence[Message]]]) -> list[RewardResult]:
        """Score (intent, messages) pairs: one chat call per judge (and retry) for the batch."""
        if not items:
            return []
        prompts = [self._prompt(intent, messages) for intent, messages in items]
        asked = [self._ask(judge, prompts) for judge in self.judges]
        results = []
        for i in range(len(items)):
            per_judge = [(name, r[i], parse_verdict(r[i]), used[i])
                         for name, (r, used) in zip(self.judge_names, asked)]
            results.append(self._result(per_judge))
        return results

    def _result(self, per_judge: list[tuple[str, str, Verdict, int]]) -> RewardResult:
        verdicts = [v for _, _, v, _ in per_judge]
        value, mean, valid = aggregate(verdicts, self.fallback, self.failure_policy)
        judges = []
        for name, raw, v, used in per_judge:
            entry = {"judge": name, "score": v.score, "rationale": v.rationale, "method": v.method,
                     "error": v.error, "tries": used}
            if v.score is None:
                entry["raw"] = (raw or "")[:RAW_KEPT_CHARS]
                self.stats.per_judge_failures[name] = self.stats.per_judge_failures.get(name, 0) + 1
            judges.append(entry)
        failures = len(verdicts) - valid
        excluded = valid == 0 and self.failure_policy == "exclude"
        self.stats.verdicts += len(verdicts)
        self.stats.parse_failures += failures
        self.stats.field_fallbacks += sum(v.method == "field" and v.score is not None for v in verdicts)
        self.stats.all_failed += valid == 0
        self.stats.excluded += excluded
        details = {"judges": judges, "valid_judges": valid, "parse_failures": failures,
                   "mean_score": mean, "fallback_used": valid == 0, "excluded": excluded,
                   "failure_policy": self.failure_policy, "protocol": self.protocol}
        if excluded:
            details["note"] = (f"every judge failed after {self.tries} tries: the value "
                               f"{value:g} is a placeholder; leave this result out of the loss")
        return RewardResult(value, details, excluded=excluded)

    def metrics(self, prefix: str = "judge") -> dict[str, float]:
        """Verdict-parsing counters since construction, namespaced."""
        return self.stats.as_metrics(prefix)


def judge_entry(item: Any, shared: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """(spec, engine options) of a judges-list item: a spec string, or a mapping
    {spec: <engine spec>, engine_options: {...}} whose options go over `shared`."""
    options = dict(shared or {})
    if isinstance(item, str):
        return item, options
    if isinstance(item, Mapping) and isinstance(item.get("spec"), str):
        unknown = sorted(set(item) - {"spec", "engine_options"})
        if unknown or not isinstance(item.get("engine_options", {}), Mapping):
            raise ValueError(f"judge {item!r}: write {{spec: <engine spec>, engine_options: "
                             f"{{...}}}} (unknown keys: {unknown})")
        return item["spec"], {**options, **dict(item.get("engine_options", {}))}
    raise ValueError(f"judge {item!r} must be an engine spec or {{spec: ..., engine_options: ...}}")


def _load(spec: str, **options: Any) -> ChatEngine:
    from engines.spec import load_chat_engine

    return load_chat_engine(spec, **options)
