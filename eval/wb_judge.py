"""WildBench judging: build the judge prompts for every task, call the judges, read the verdicts,
and return one typed result per task for each mode (reward, checklist, score).

Judges are ChatEngines (normally CachedChatEngines, so a killed run resumes without repeating a
call); each judge gets all its prompts in one batched call, which the engine splits, caches and
— for HTTP servers — sends concurrently. Sampling is temperature 0; with `tries` > 1 (the paper
protocol) the prompts whose reply did not parse are asked again at temperature 0.3. Every choice
that differs between protocols comes from the WBProtocol (eval/wb_protocol.py); rules from
eval/wb_aggregate.py, prompts from eval/wb_prompts.py and eval/wb_official_prompts.py, parsing
from eval/wb_verdicts.py.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

from corpora.types import Message
from engines.base import ChatEngine, Sampling
from eval import wb_aggregate as agg
from eval import wb_protocol as wbp
from eval.wb_official_prompts import official_pairwise_prompt, official_score_prompt
from eval.wb_prompts import PAIR_LABELS, JudgeContext, checklist_prompt, pairwise_prompt, score_prompt
from eval.wb_verdicts import (parse_checklist, parse_pair, parse_pair_strict, parse_score,
                              parse_score_strict)

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
    """How judges are called: reply length cap, JSON-schema output, and tries per call (a reply
    that does not parse is asked again, up to `tries` calls in all)."""

    max_tokens: int = 1024
    use_json_schema: bool = True
    tries: int = 1

    def sampling(self, schema: dict, attempt: int = 0) -> Sampling:
        """The judge call's sampling; the schema's free-text fields are sized to max_tokens
        (engines.constrained.fit_schema), so the verdict field after them always fits."""
        from engines.constrained import fit_schema

        base = Sampling(temperature=0.0, max_tokens=self.max_tokens,
                        json_schema=fit_schema(schema, self.max_tokens) if self.use_json_schema
                        else None)
        return wbp.retry_sampling(base, attempt)


@dataclass(frozen=True)
class TaskMeta:
    """What the aggregation needs about a task: its key, primary tag and the groups it counts in."""

    session_id: str
    primary_tag: str
    groups: tuple[str, ...]


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

    rule: "judge" (verdicts decided), "empty" (the empty-response rule decided, no judge call),
    "skipped" (official: an empty or truncated response; no verdict, kept in the plain reward's
    denominator), "dropped" (paper: a verdict failed in some order, the task is left out).
    reward is the mean over the parsed verdicts (judges × orders); None when none parsed.
    """

    session_id: str
    primary_tag: str
    groups: tuple[str, ...]
    test_chars: int
    ref_chars: int
    rule: str
    reward: float | None
    calls: list[PairCall] = field(default_factory=list)


@dataclass
class ChecklistTask:
    """Checklist comparison on one task: items satisfied (by judge majority) for each response.

    status: "scored"; "no_checklist" (left out: nothing to compare); "no_comparable_items" (every
    item lacked a verdict on some side); "incomplete" (paper: some item lacks a verdict).
    outcome: 1 / 0.5 / 0 for more / as many / fewer satisfied items; None unless scored.
    """

    session_id: str
    primary_tag: str
    groups: tuple[str, ...]
    n_items: int
    test_satisfied: int
    ref_satisfied: int
    left_out_items: int
    status: str
    outcome: float | None
    verdicts: dict[str, list[list[bool | None]]] = field(default_factory=dict)


@dataclass
class ScoreTask:
    """WB-Score of one response on one task: raw 1–10 scores per judge, and the rescaled mean."""

    session_id: str
    primary_tag: str
    groups: tuple[str, ...]
    scores: dict[str, float | None]
    rescaled: float | None
    skipped: bool = False


def judge_all(judges: dict[str, ChatEngine], prompts: Sequence[str], settings: JudgeSettings,
              schema: dict, parsed: Callable[[int, str], bool] = lambda i, text: True
              ) -> tuple[dict[str, list[str]], int]:
    """Every judge answers every prompt (one batched call per judge and try); {judge: replies}
    and the number of retried calls. A reply for which `parsed(prompt index, reply)` is False is
asked again, up to
    settings.tries calls in all (later tries at temperature 0.3, see wb_protocol.retry_sampling)."""
    out: dict[str, list[str]] = {}
    retried = 0
    for name, engine in judges.items():
        replies = [""] * len(prompts)
        pending = list(range(len(prompts)))
        for attempt in range(settings.tries):
            if not pending:
                break
            retried += len(pending) if attempt else 0
            convs = [[Message("user", prompts[i])] for i in pending]
            for i, text in zip(pending, engine.chat(convs, settings.sampling(schema, attempt))):
                replies[i] = text
            pending = [i for i in pending if not parsed(i, replies[i])]
        out[name] = replies
    return out, retried


def _task_orders(n: int, proto: wbp.WBProtocol, both_orders: bool, order_seed: int
                 ) -> list[tuple[bool, ...]]:
    """The orders judged per task: both (test first, then reference first), or one drawn per
    task from the seed (the official protocol, and --one-order)."""
    if proto.orders == "both" and both_orders:
        return [(True, False)] * n
    return [(first,) for first in wbp.draw_test_first(n, order_seed)]


def _pre_rule(test: str, ref: str, proto: wbp.WBProtocol) -> tuple[str, float | None] | None:
    """(rule, reward) when a pair is decided without a judge, else None."""
    if proto.pair_rule == "skip":
        if wbp.is_skipped(wbp.shown_response(test)) or wbp.is_skipped(wbp.shown_response(ref)):
            return "skipped", None
        return None
    fixed = agg.empty_rule(test, ref)
    return None if fixed is None else ("empty", fixed)


def reward_tasks(contexts: Sequence[JudgeContext], meta: Sequence[TaskMeta], test: Sequence[str],
                 ref: Sequence[str], judges: dict[str, ChatEngine], k: int,
                 settings: JudgeSettings, proto: wbp.WBProtocol = wbp.PROTOCOLS["wildsim"],
                 both_orders: bool = True, order_seed: int = 42) -> tuple[list[RewardTask], int]:
    """WB-Reward per task for the model under test (`test`) against a reference (`ref`), and the
    number of retried judge calls. Pairs the pre-rule decides are not sent to judges."""
    official = proto.prompts == "official"
    shown_t = [wbp.shown_response(t) if official else t for t in test]
    shown_r = [wbp.shown_response(r) if official else r for r in ref]
    jobs: list[tuple[int, bool]] = []
    prompts: list[str] = []
    for i, orders in enumerate(_task_orders(len(contexts), proto, both_orders, order_seed)):
        if _pre_rule(test[i], ref[i], proto) is not None:
            continue
        for test_first in orders:
            a, b = (shown_t[i], shown_r[i]) if test_first else (shown_r[i], shown_t[i])
            jobs.append((i, test_first))
            prompts.append(official_pairwise_prompt(contexts[i], a, b) if official
                           else pairwise_prompt(contexts[i], a, b))
    parse = parse_pair_strict if proto.strict_parsing else parse_pair
    replies, retried = judge_all(judges, prompts, settings, PAIR_SCHEMA,
                                 lambda _, text: parse(text).label is not None)
    calls: dict[int, list[PairCall]] = {}
    for judge, texts in replies.items():
        for (i, test_first), text in zip(jobs, texts):
            calls.setdefault(i, []).append(
                _pair_call(judge, test_first, parse(text), shown_t[i], shown_r[i], k))
    out = []
    for i, m in enumerate(meta):
        task_calls = calls.get(i, [])
        rule, reward = _pre_rule(test[i], ref[i], proto) or (
            "judge", agg.mean_or_none(c.reward for c in task_calls))
        if proto.pair_failure == "drop_task" and any(c.reward is None for c in task_calls):
            rule, reward = "dropped", None
        out.append(RewardTask(m.session_id, m.primary_tag, m.groups, len(shown_t[i]),
                              len(shown_r[i]), rule, reward, task_calls))
    return out, retried


def _pair_call(judge: str, test_first: bool, verdict, test: str, ref: str, k: int) -> PairCall:
    if verdict.label is None:
        return PairCall(judge, test_first, None, verdict.how, None)
    len_a, len_b = (len(test), len(ref)) if test_first else (len(ref), len(test))
    penalised = agg.length_penalised(verdict.label, len_a, len_b, k) != verdict.label
    reward = agg.reward_for_test(verdict.label, test_first, len_a, len_b, k)
    return PairCall(judge, test_first, verdict.label, verdict.how, reward, penalised)


def checklist_verdicts(contexts: Sequence[JudgeContext], responses: Sequence[str],
                       judges: dict[str, ChatEngine], settings: JudgeSettings,
                       proto: wbp.WBProtocol = wbp.PROTOCOLS["wildsim"]
                       ) -> tuple[list[dict[str, list[bool | None]]], Counter]:
    """Per task, {judge: item verdicts} for one model's responses, and a Counter of parse paths
    (plus "items_missing" and "retried"). An empty response satisfies no item (no judge call); a
    task without a checklist has no items."""
    jobs = [i for i, (c, r) in enumerate(zip(contexts, responses)) if c.checklist and r.strip()]
    prompts = [checklist_prompt(contexts[i], responses[i], proto.checklist_clearly) for i in jobs]
    sizes = [len(contexts[i].checklist) for i in jobs]
    replies, retried = judge_all(judges, prompts, settings, CHECKLIST_SCHEMA,
                                 lambda j, text: parse_checklist(text, sizes[j]).missing == 0)
    out: list[dict[str, list[bool | None]]] = [
        {j: [False] * len(c.checklist) for j in judges} for c in contexts]
    how: Counter = Counter({"retried": retried})
    for judge, texts in replies.items():
        for i, text in zip(jobs, texts):
            verdict = parse_checklist(text, len(contexts[i].checklist))
            out[i][judge] = list(verdict.items)
            how[verdict.how] += 1
            how["items_missing"] += verdict.missing
    return out, how


def checklist_tasks(meta: Sequence[TaskMeta], n_items: Sequence[int],
                    test: Sequence[dict[str, list[bool | None]]],
                    ref: Sequence[dict[str, list[bool | None]]],
                    proto: wbp.WBProtocol = wbp.PROTOCOLS["wildsim"]) -> list[ChecklistTask]:
    """Compare satisfied-item counts per task (more satisfied wins 1, fewer 0, equal 0.5) over the
    items with a majority verdict on both sides; tasks without a checklist or without comparable
    items are left out (status says why), and under the paper protocol a task with any item left
    out is "incomplete"."""
    out = []
    for i, m in enumerate(meta):
        t_rows, r_rows = list(test[i].values()), list(ref[i].values())
        t_sat, r_sat, left = agg.compare_items(t_rows, r_rows, proto.checklist_two_of_three) \
            if n_items[i] else (0, 0, 0)
        if not n_items[i]:
            status = "no_checklist"
        elif left == n_items[i]:
            status = "no_comparable_items"
        elif left and proto.checklist_two_of_three:
            status = "incomplete"
        else:
            status = "scored"
        outcome = (1.0 if t_sat > r_sat else 0.0 if t_sat < r_sat else 0.5) \
            if status == "scored" else None
        out.append(ChecklistTask(m.session_id, m.primary_tag, m.groups, n_items[i], t_sat, r_sat,
                                 left, status, outcome, {"test": t_rows, "ref": r_rows}))
    return out


def score_tasks(contexts: Sequence[JudgeContext], meta: Sequence[TaskMeta],
                responses: Sequence[str], judges: dict[str, ChatEngine], settings: JudgeSettings,
                proto: wbp.WBProtocol = wbp.PROTOCOLS["wildsim"]) -> tuple[list[ScoreTask], Counter]:
    """WB-Score per task for one model; the task's score is the mean over judges whose reply
    parsed, then rescaled (S − 5) × 2. wildsim/paper: an empty response gets 1 without a judge
    call. official: an empty response is judged as the empty placeholder, strict parsing, and a
    placeholder or truncated response is left out of the tag groups (`skipped`)."""
    official = proto.prompts == "official"
    shown = [(r.strip() or wbp.EMPTY_PLACEHOLDER) if official else r for r in responses]
    jobs = [i for i, r in enumerate(shown) if r.strip()]
    make = official_score_prompt if official else score_prompt
    parse = parse_score_strict if proto.strict_parsing else parse_score
    replies, retried = judge_all(judges, [make(contexts[i], shown[i]) for i in jobs], settings,
                                 SCORE_SCHEMA, lambda _, text: parse(text).score is not None)
    scores: list[dict[str, float | None]] = [
        {j: (None if r.strip() else 1.0) for j in judges} for r in shown]
    how: Counter = Counter({"retried": retried})
    for judge, texts in replies.items():
        for i, text in zip(jobs, texts):
            verdict = parse(text)
            scores[i][judge] = verdict.score
            how[verdict.how] += 1
    out = []
    for i, m in enumerate(meta):
        raw = agg.mean_or_none(scores[i].values())
        out.append(ScoreTask(m.session_id, m.primary_tag, m.groups, scores[i],
                             None if raw is None else agg.rescale_score(raw),
                             official and wbp.is_skipped(shown[i])))
    return out, how
