"""The LLM-judge reward: helpfulness 0–10 from one or more judges, given the intent and the
whole conversation. The same class scores training episodes and evaluation conversations, so
the two cannot drift.

Protocol (the published recipe: two judges, temperature 0, JSON-schema output):
1. `judge_prompt(intent, messages)` builds the judge's conversation: a system prompt with the
   rubric, and a user message with the user's hidden goal and the transcript.
2. Each judge answers `{"rationale": ..., "score": n}`; `parse_verdict` reads it tolerantly
   (code fences, trailing text, single quotes, "7/10", a "Score: 7" line). A verdict with no
   score, or a score outside 0–10, is a parse failure — counted, never read as 0.
3. `aggregate(verdicts, fallback)`: reward = mean score over the judges that parsed / 10.
   When every judge failed, the reward is `fallback` (default 0.0) and the details say so:
   details["valid_judges"] = 0, details["fallback_used"] = True, details["parse_failures"] = n.
   Such episodes are also counted in `JudgeReward.stats` (the `judge/all_failed` metric).

details of each result: "judges" (per judge: name, score or None, rationale, method, error, and
the raw reply when it failed to parse), "valid_judges", "parse_failures", "mean_score" (0–10 or
None), "fallback_used".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from corpora.types import Episode, Message
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
RATIONALE_KEYS = ("rationale", "reasoning", "reason", "explanation")
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


def aggregate(verdicts: Sequence[Verdict], fallback: float = 0.0) -> tuple[float, float | None, int]:
    """(reward, mean score or None, number of valid judges): reward = mean valid score / 10,
    or `fallback` when no verdict has a score."""
    scores = [v.score for v in verdicts if v.score is not None]
    if not scores:
        return fallback, None, 0
    mean = sum(scores) / len(scores)
    return mean / SCORE_MAX, mean, len(scores)


@dataclass
class JudgeStats:
    """Counters since construction: verdicts read, parse failures, field fallbacks, and
    conversations where every judge failed (scored with the fallback)."""

    verdicts: int = 0
    parse_failures: int = 0
    field_fallbacks: int = 0
    all_failed: int = 0
    per_judge_failures: dict[str, int] = field(default_factory=dict)

    def as_metrics(self, prefix: str = "judge") -> dict[str, float]:
        rate = self.parse_failures / self.verdicts if self.verdicts else 0.0
        return {f"{prefix}/verdicts": float(self.verdicts),
                f"{prefix}/parse_failures": float(self.parse_failures),
                f"{prefix}/parse_failure_rate": rate,
                f"{prefix}/field_fallbacks": float(self.field_fallbacks),
                f"{prefix}/all_failed": float(self.all_failed)}


def _judge_name(engine: Any, index: int) -> str:
    return str(getattr(engine, "name", None) or f"judge{index}")


@REWARD_KINDS.register("judge")
class JudgeReward:
    """Helpfulness 0–10 from LLM judges, mean over the judges that parsed / 10.

    judges:    ChatEngines (one call each per batch), or engine spec strings
    sampling:  judge sampling (default: temperature 0, 512 tokens, the verdict JSON schema)
    fallback:  the reward when every judge's verdict fails to parse (counted, see module docstring)
    max_words: each turn is cut to this many words in the judge prompt (None: no cut)
    names:     names recorded in details (default: each engine's `name`, else judge0, judge1…)
    """

    def __init__(self, judges: Sequence[ChatEngine | str], *, name: str = "judge",
                 sampling: Sampling | None = None, fallback: float = 0.0,
                 max_words: int | None = 1000, names: Sequence[str] | None = None):
        if not judges:
            raise ValueError(f"reward {name!r}: give at least one judge engine")
        if names is not None and len(names) != len(judges):
            raise ValueError(f"reward {name!r}: {len(names)} names for {len(judges)} judges")
        loaded = [_load(j) if isinstance(j, str) else j for j in judges]
        self.judges = loaded
        self.judge_names = list(names) if names else [
            j if isinstance(j, str) else _judge_name(e, i) for i, (j, e) in enumerate(zip(judges, loaded))]
        self.name = name
        self.sampling = sampling or JUDGE_SAMPLING
        self.fallback = fallback
        self.max_words = max_words
        self.stats = JudgeStats()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], engine_loader: Callable[..., Any] | None = None
                    ) -> "JudgeReward":
        """From {kind: judge, judges: [spec, ...], fallback, max_words, max_tokens, engine_options}.

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
        sampling = JUDGE_SAMPLING.with_(max_tokens=max_tokens) if max_tokens else None
        return cls(engines, names=[spec for spec, _ in judges], sampling=sampling, **cfg)

    def score(self, episodes: Sequence[Episode]) -> list[RewardResult]:
        """One result per episode: the judges see the task's intent and all messages."""
        return self.score_conversations([(ep.task.intent, ep.messages) for ep in episodes])

    def score_conversation(self, intent: str, messages: Sequence[Message]) -> RewardResult:
        """Score one conversation (what evaluation calls for a single transcript)."""
        return self.score_conversations([(intent, messages)])[0]

    def score_conversations(self, items: Sequence[tuple[str, Sequence[Message]]]) -> list[RewardResult]:
        """Score (intent, messages) pairs: one chat call per judge for the whole batch."""
        if not items:
            return []
        prompts = [judge_prompt(intent, messages, self.max_words) for intent, messages in items]
        replies = [judge.chat(prompts, self.sampling) for judge in self.judges]
        results = []
        for i in range(len(items)):
            per_judge = [(name, r[i], parse_verdict(r[i])) for name, r in zip(self.judge_names, replies)]
            results.append(self._result(per_judge))
        return results

    def _result(self, per_judge: list[tuple[str, str, Verdict]]) -> RewardResult:
        verdicts = [v for _, _, v in per_judge]
        value, mean, valid = aggregate(verdicts, self.fallback)
        judges = []
        for name, raw, v in per_judge:
            entry = {"judge": name, "score": v.score, "rationale": v.rationale, "method": v.method,
                     "error": v.error}
            if v.score is None:
                entry["raw"] = (raw or "")[:RAW_KEPT_CHARS]
                self.stats.per_judge_failures[name] = self.stats.per_judge_failures.get(name, 0) + 1
            judges.append(entry)
        failures = len(verdicts) - valid
        self.stats.verdicts += len(verdicts)
        self.stats.parse_failures += failures
        self.stats.field_fallbacks += sum(v.method == "field" and v.score is not None for v in verdicts)
        self.stats.all_failed += valid == 0
        return RewardResult(value, {"judges": judges, "valid_judges": valid, "parse_failures": failures,
                                    "mean_score": mean, "fallback_used": valid == 0})

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
