"""WildBench judging: build the judge prompts for every task, call the judges, read the verdicts,
and return one typed result per task for each mode (reward, checklist, score).

Judges are ChatEngines (normally CachedChatEngines, so a killed run resumes without repeating a
call); each judge gets all its prompts in one batched call, which the engine splits, caches and
— for HTTP servers — sends concurrently. Sampling is temperature 0. Rules come from
eval/wb_aggregate.py, prompts from eval/wb_prompts.py, parsing from eval/wb_verdicts.py.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from corpora.types import Message
from engines.base import ChatEngine, Sampling
from eval import wb_aggregate as agg
from eval.wb_prompts import PAIR_LABELS, JudgeContext, checklist_prompt, pairwise_prompt, score_prompt
from eval.wb_verdicts import parse_checklist, parse_pair, parse_score

PAIR_SCHEMA = {
    "type": "object",
    "properties": {"analysis_a": {"type": "string"}, "analysis_b": {"type": "string"},
                   "reasons": {"type": "string"}, "choice": {"enum": list(PAIR_LABELS)}},
    "required": ["analysis_a", "analysis_b", "reasons", "choice"],
}
CHECKLIST_SCHEMA = {
    "type": "object",
    "properties": {"items": {"type": "array", "items": {
        "type": "object",
        "properties": {"item": {"type": "integer"}, "analysis": {"type": "string"},
                       "satisfied": {"type": "boolean"}},
        "required": ["item", "analysis", "satisfied"]}}},
    "required": ["items"],
}
SCORE_SCHEMA = {
    "type": "object",
    "properties": {"strengths": {"type": "string"}, "weaknesses": {"type": "string"},
                   "score": {"type": "integer", "minimum": 1, "maximum": 10}},
    "required": ["strengths", "weaknesses", "score"],
}


@dataclass(frozen=True)
class JudgeSettings:
    """How judges are called: reply length cap, and whether to ask servers for JSON-schema output."""

    max_tokens: int = 1024
    use_json_schema: bool = True

    def sampling(self, schema: dict) -> Sampling:
        return Sampling(temperature=0.0, max_tokens=self.max_tokens,
                        json_schema=schema if self.use_json_schema else None)


@dataclass
class PairCall:
    """One pairwise verdict: which judge, which order, the label it gave, the reward it means."""

    judge: str
    test_shown_as_a: bool
    label: str | None
    how: str
    reward: float | None
    penalised: bool = False


@dataclass
class RewardTask:
    """WB-Reward of the model under test against one reference on one task.

    rule: "judge" (verdicts decided), "empty" (the empty-response rule decided, no judge call).
    reward is the mean over the parsed verdicts (judges × orders); None when none parsed.
    """

    session_id: str
    primary_tag: str
    group: str
    test_chars: int
    ref_chars: int
    rule: str
    reward: float | None
    calls: list[PairCall] = field(default_factory=list)


@dataclass
class ChecklistTask:
    """Checklist comparison on one task: items satisfied (by judge majority) for each response."""

    session_id: str
    primary_tag: str
    group: str
    n_items: int
    test_satisfied: int
    ref_satisfied: int
    unanswered_items: int
    outcome: float
    verdicts: dict[str, list[list[bool | None]]] = field(default_factory=dict)


@dataclass
class ScoreTask:
    """WB-Score of one response on one task: raw 1–10 scores per judge, and the rescaled mean."""

    session_id: str
    primary_tag: str
    group: str
    scores: dict[str, float | None]
    rescaled: float | None


def judge_all(judges: dict[str, ChatEngine], prompts: Sequence[str], sampling: Sampling
              ) -> dict[str, list[str]]:
    """Every judge answers every prompt (one batched call per judge); {judge: replies}."""
    convs = [[Message("user", p)] for p in prompts]
    return {name: (engine.chat(convs, sampling) if convs else []) for name, engine in judges.items()}


def reward_tasks(contexts: Sequence[JudgeContext], meta: Sequence[tuple[str, str]],
                 test: Sequence[str], ref: Sequence[str], judges: dict[str, ChatEngine], k: int,
                 settings: JudgeSettings, both_orders: bool = True) -> list[RewardTask]:
    """WB-Reward per task for the model under test (`test`) against a reference (`ref`).

    meta: (session_id, primary_tag) per task. Tasks the empty rule decides are not sent to judges.
    Both orders are judged by default (test shown first, then the reference shown first) and
    every parsed verdict, mapped back to the test model, is averaged.
    """
    orders = (True, False) if both_orders else (True,)
    jobs: list[tuple[int, bool]] = []
    prompts: list[str] = []
    for i, ctx in enumerate(contexts):
        if agg.empty_rule(test[i], ref[i]) is None:
            for test_first in orders:
                a, b = (test[i], ref[i]) if test_first else (ref[i], test[i])
                jobs.append((i, test_first))
                prompts.append(pairwise_prompt(ctx, a, b))
    replies = judge_all(judges, prompts, settings.sampling(PAIR_SCHEMA))
    calls: dict[int, list[PairCall]] = {}
    for judge, texts in replies.items():
        for (i, test_first), text in zip(jobs, texts):
            calls.setdefault(i, []).append(_pair_call(judge, test_first, text, test[i], ref[i], k))
    out = []
    for i, (session_id, tag) in enumerate(meta):
        fixed = agg.empty_rule(test[i], ref[i])
        task_calls = calls.get(i, [])
        reward = fixed if fixed is not None else agg.mean_or_none(c.reward for c in task_calls)
        out.append(RewardTask(session_id, tag, agg.tag_group(tag), len(test[i]), len(ref[i]),
                              "empty" if fixed is not None else "judge", reward, task_calls))
    return out


def _pair_call(judge: str, test_first: bool, text: str, test: str, ref: str, k: int) -> PairCall:
    verdict = parse_pair(text)
    if verdict.label is None:
        return PairCall(judge, test_first, None, verdict.how, None)
    len_a, len_b = (len(test), len(ref)) if test_first else (len(ref), len(test))
    penalised = agg.length_penalised(verdict.label, len_a, len_b, k) != verdict.label
    reward = agg.reward_for_test(verdict.label, test_first, len_a, len_b, k)
    return PairCall(judge, test_first, verdict.label, verdict.how, reward, penalised)


def checklist_verdicts(contexts: Sequence[JudgeContext], responses: Sequence[str],
                       judges: dict[str, ChatEngine], settings: JudgeSettings
                       ) -> tuple[list[dict[str, list[bool | None]]], Counter]:
    """Per task, {judge: item verdicts} for one model's responses, and a Counter of parse paths.
    An empty response satisfies no item (no judge call); a task without a checklist has no items."""
    jobs = [i for i, (c, r) in enumerate(zip(contexts, responses)) if c.checklist and r.strip()]
    prompts = [checklist_prompt(contexts[i], responses[i]) for i in jobs]
    replies = judge_all(judges, prompts, settings.sampling(CHECKLIST_SCHEMA))
    out: list[dict[str, list[bool | None]]] = [
        {j: [False] * len(c.checklist) for j in judges} for c in contexts]
    how: Counter = Counter()
    for judge, texts in replies.items():
        for i, text in zip(jobs, texts):
            verdict = parse_checklist(text, len(contexts[i].checklist))
            out[i][judge] = list(verdict.items)
            how[verdict.how] += 1
            how["items_missing"] += verdict.missing
    return out, how


def checklist_tasks(meta: Sequence[tuple[str, str]], n_items: Sequence[int],
                    test: Sequence[dict[str, list[bool | None]]],
                    ref: Sequence[dict[str, list[bool | None]]]) -> list[ChecklistTask]:
    """Compare satisfied-item counts per task: more satisfied wins (1), fewer loses (0), equal 0.5."""
    out = []
    for i, (session_id, tag) in enumerate(meta):
        t_sat, t_missing = agg.satisfied_items(list(test[i].values()))
        r_sat, r_missing = agg.satisfied_items(list(ref[i].values()))
        result = 1.0 if t_sat > r_sat else 0.0 if t_sat < r_sat else 0.5
        out.append(ChecklistTask(session_id, tag, agg.tag_group(tag), n_items[i], t_sat, r_sat,
                                 t_missing + r_missing, result,
                                 {"test": list(test[i].values()), "ref": list(ref[i].values())}))
    return out


def score_tasks(contexts: Sequence[JudgeContext], meta: Sequence[tuple[str, str]],
                responses: Sequence[str], judges: dict[str, ChatEngine], settings: JudgeSettings
                ) -> tuple[list[ScoreTask], Counter]:
    """WB-Score per task for one model. An empty response gets the lowest score, 1, without a judge
    call; the task's score is the mean over judges whose reply parsed, then rescaled (S − 5) × 2."""
    jobs = [i for i, r in enumerate(responses) if r.strip()]
    replies = judge_all(judges, [score_prompt(contexts[i], responses[i]) for i in jobs],
                        settings.sampling(SCORE_SCHEMA))
    scores: list[dict[str, float | None]] = [
        {j: (None if r.strip() else 1.0) for j in judges} for r in responses]
    how: Counter = Counter()
    for judge, texts in replies.items():
        for i, text in zip(jobs, texts):
            verdict = parse_score(text)
            scores[i][judge] = verdict.score
            how[verdict.how] += 1
    out = []
    for i, (session_id, tag) in enumerate(meta):
        raw = agg.mean_or_none(scores[i].values())
        out.append(ScoreTask(session_id, tag, agg.tag_group(tag), scores[i],
                             None if raw is None else agg.rescale_score(raw)))
    return out, how
