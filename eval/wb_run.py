"""The WildBench evaluation pipeline behind `wildsim eval wildbench` (see eval/wildbench.py):
load tasks → generate responses (cached) → judge (cached) → aggregate → JSON, markdown, PNG.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from corpora.types import Message
from engines.base import Sampling
from eval import eval_report as rep
from eval import stats
from eval import wb_aggregate as agg
from eval.wb_judge import (ChecklistTask, JudgeSettings, RewardTask, ScoreTask, checklist_tasks,
                           checklist_verdicts, reward_tasks, score_tasks)
from eval.wb_prompts import JudgeContext
from wildsim.config import to_dict

log = logging.getLogger(__name__)
PROMPT_VERSION = "wb-v1"  # bump when the judge prompts change, so cached verdicts are not reused


REF_PREFIX = "ref:"  # `--model-b ref:gpt-4` uses the dataset's own reference responses


def load_contexts(data: str, limit: int | None
                  ) -> tuple[list[JudgeContext], list[tuple[str, str]], list[dict[str, str]]]:
    """WildBench tasks as judge contexts, (session_id, primary_tag) and the references per task."""
    from corpora.wildbench import load_wildbench

    tasks = load_wildbench(data, limit=limit)
    contexts, meta, refs = [], [], []
    for t in tasks:
        contexts.append(JudgeContext(history=tuple(t.history), query=t.query,
                                     checklist=tuple(t.checklist)))
        meta.append((t.session_id, t.primary_tag or ""))
        refs.append(dict(t.references))
    return contexts, meta, refs


def dataset_responses(spec: str, refs: Sequence[dict[str, str]]) -> tuple[list[str], int]:
    """The dataset's reference responses named by `ref:<model>` (e.g. ref:gpt-4), and how many
    tasks lack one (those count as empty responses, so they lose; the count is reported)."""
    name = spec[len(REF_PREFIX):]
    texts = [r.get(name) for r in refs]
    return [t or "" for t in texts], sum(t is None for t in texts)


def cache_batch_size(spec: str) -> int:
    """engines.cache.CachedChatEngine's batch_size for `spec`. A local engine (no `chat_each`)
    gets its misses 8 per call and each batch is saved when the call returns, so a slow CPU
    engine loses at most 8 answers to a kill; an HTTP engine streams every answer to the file as
    it arrives, and 64 only sets how often the file is fsynced."""
    return 64 if spec.startswith("openai:") else 8


def generate(spec: str, contexts: Sequence[JudgeContext], cache_dir: Path, max_tokens: int
             ) -> list[str]:
    """Greedy responses of model `spec` to each task's conversation (history + query), cached."""
    from engines.cache import CachedChatEngine
    from engines.spec import load_chat_engine

    engine = CachedChatEngine(load_chat_engine(spec), cache_dir / "generations.jsonl",
                              key_prefix=f"gen|{spec}", batch_size=cache_batch_size(spec))
    convs = [[*c.history, Message("user", c.query)] for c in contexts]
    log.info("generating %d responses with %s", len(convs), spec)
    return engine.chat(convs, Sampling(temperature=0.0, max_tokens=max_tokens))


def load_judges(specs: Sequence[str], cache_dir: Path,
                options: dict[str, dict] | None = None) -> dict[str, Any]:
    """{spec: CachedChatEngine} for each judge (built with `options[spec]`, if any); the cache
    key holds the spec and prompt version."""
    from engines.cache import CachedChatEngine
    from engines.spec import load_chat_engine

    options = options or {}
    return {s: CachedChatEngine(load_chat_engine(s, **options.get(s, {})), cache_dir / "judge.jsonl",
                                key_prefix=f"judge|{s}|{PROMPT_VERSION}",
                                batch_size=cache_batch_size(s)) for s in specs}


def reward_summary(tasks: Sequence[RewardTask], level: float, n_boot: int, seed: int
                   ) -> dict[str, Any]:
    """Aggregates of WB-Reward tasks: mean with CI, tag groups, task-macro, win rate, counts."""
    scored = [t for t in tasks if t.reward is not None]
    rewards = [t.reward for t in scored]
    groups = agg.group_means([(t.group, t.reward) for t in scored])
    outcomes = [stats.outcome(r, 0.0) for r in rewards]
    calls = [c for t in tasks for c in t.calls]
    return {
        "n_tasks": len(tasks), "n_scored": len(scored), "n_unscored": len(tasks) - len(scored),
        "n_empty_rule": sum(t.rule == "empty" for t in tasks),
        "mean": stats.summarize_mean(rewards, level, n_boot, seed).as_dict(),
        "task_macro": agg.task_macro(groups),
        "groups": [asdict(g) for g in groups],
        "win_rate": stats.summarize_win_rate(outcomes, level, n_boot, seed).as_dict(),
        "labels": dict(Counter(c.label or "unparsed" for c in calls)),
        "parse": dict(Counter(c.how for c in calls)),
        "length_penalised": sum(c.penalised for c in calls),
    }


def checklist_summary(tasks: Sequence[ChecklistTask], how: Counter, level: float, n_boot: int,
                      seed: int) -> dict[str, Any]:
    """Checklist win rate (ties half, tie-adjusted SE), mean satisfied fractions, parse counts."""
    with_items = [t for t in tasks if t.n_items]
    outcomes = [t.outcome for t in tasks]
    return {
        "n_tasks": len(tasks), "n_without_checklist": len(tasks) - len(with_items),
        "win_rate": stats.summarize_win_rate(outcomes, level, n_boot, seed).as_dict(),
        "test_satisfied_fraction": _mean([t.test_satisfied / t.n_items for t in with_items]),
        "ref_satisfied_fraction": _mean([t.ref_satisfied / t.n_items for t in with_items]),
        "groups": [asdict(g) for g in agg.group_means([(t.group, t.outcome) for t in tasks])],
        "unanswered_items": sum(t.unanswered_items for t in tasks),
        "parse": dict(how),
    }


def score_summary(tasks: Sequence[ScoreTask], how: Counter, level: float, n_boot: int, seed: int
                  ) -> dict[str, Any]:
    """WB-Score of one model: mean rescaled score with CI, tag groups, task-macro, parse counts."""
    scored = [t for t in tasks if t.rescaled is not None]
    groups = agg.group_means([(t.group, t.rescaled) for t in scored])
    return {
        "n_tasks": len(tasks), "n_scored": len(scored), "n_unscored": len(tasks) - len(scored),
        "mean": stats.summarize_mean([t.rescaled for t in scored], level, n_boot, seed).as_dict(),
        "task_macro": agg.task_macro(groups), "groups": [asdict(g) for g in groups],
        "parse": dict(how),
    }


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def evaluate(cfg: Any, argv: Sequence[str]) -> Path:
    """Run the whole evaluation for a WildBenchConfig; returns OUT/wildbench.json."""
    out, cache = Path(cfg.out), Path(cfg.out) / "cache"
    contexts, meta, refs = load_contexts(cfg.data, cfg.limit)
    if not contexts:
        raise SystemExit(f"wildsim eval wildbench: no tasks in {cfg.data!r}")
    models = [cfg.model_a, *[b for b in cfg.model_b if b != cfg.model_a]]
    responses, missing_refs = {}, {}
    for m in models:
        if m.startswith(REF_PREFIX):
            responses[m], missing_refs[m] = dataset_responses(m, refs)
        else:
            responses[m] = generate(m, contexts, cache, cfg.gen_max_tokens)
    judges = load_judges(cfg.judges, cache, cfg.judge_engine_options)
    settings = JudgeSettings(cfg.judge_max_tokens, cfg.json_schema)
    result: dict[str, Any] = {
        "command": rep.command_line(argv), "config": to_dict(cfg), "mode": cfg.mode,
        "prompt_version": PROMPT_VERSION, "n_tasks": len(contexts),
        "tag_groups": agg.tag_group_counts(tag for _, tag in meta),
        "empty_responses": {m: sum(not r.strip() for r in rs) for m, rs in responses.items()},
        "missing_dataset_references": missing_refs,
        "smoke_test": any(rep.is_small_model(j) for j in cfg.judges),
        "references": {},
    }
    runner = {"reward": _run_reward, "checklist": _run_checklist, "score": _run_score}[cfg.mode]
    runner(cfg, contexts, meta, responses, judges, settings, result)
    result["judge_calls"] = {name: {"cached": e.hits, "new": e.misses} for name, e in judges.items()}
    path = rep.write_json(out / "wildbench.json", result)
    from eval.wb_report import write_report

    write_report(result, out)
    return path


def _run_reward(cfg, contexts, meta, responses, judges, settings, result) -> None:
    test = responses[cfg.model_a]
    macros = []
    for ref_spec in cfg.model_b:
        tasks = reward_tasks(contexts, meta, test, responses[ref_spec], judges, cfg.K, settings,
                             cfg.both_orders)
        summary = reward_summary(tasks, cfg.level, cfg.n_boot, cfg.seed)
        macros.append(summary["task_macro"])
        result["references"][ref_spec] = {"summary": summary, "tasks": [asdict(t) for t in tasks]}
    kept = [m for m in macros if m is not None]
    result["mix"] = {"task_macro": sum(kept) / len(kept) if kept else None,
                     "n_references": len(kept)}


def _run_checklist(cfg, contexts, meta, responses, judges, settings, result) -> None:
    test_verdicts, how = checklist_verdicts(contexts, responses[cfg.model_a], judges, settings)
    n_items = [len(c.checklist) for c in contexts]
    for ref_spec in cfg.model_b:
        ref_verdicts, ref_how = checklist_verdicts(contexts, responses[ref_spec], judges, settings)
        tasks = checklist_tasks(meta, n_items, test_verdicts, ref_verdicts)
        summary = checklist_summary(tasks, how + ref_how, cfg.level, cfg.n_boot, cfg.seed)
        result["references"][ref_spec] = {"summary": summary, "tasks": [asdict(t) for t in tasks]}


def _run_score(cfg, contexts, meta, responses, judges, settings, result) -> None:
    per_model: dict[str, list[ScoreTask]] = {}
    result["models"] = {}
    for spec, resp in responses.items():
        tasks, how = score_tasks(contexts, meta, resp, judges, settings)
        per_model[spec] = tasks
        result["models"][spec] = {"summary": score_summary(tasks, how, cfg.level, cfg.n_boot,
                                                           cfg.seed),
                                  "tasks": [asdict(t) for t in tasks]}
    test = {t.session_id: t.rescaled for t in per_model[cfg.model_a] if t.rescaled is not None}
    for ref_spec in cfg.model_b:
        ref = {t.session_id: t.rescaled for t in per_model[ref_spec] if t.rescaled is not None}
        keys, outcomes = stats.paired_outcomes(test, ref)
        result["references"][ref_spec] = {"summary": {
            "n_pairs": len(keys),
            "win_rate": stats.summarize_win_rate(outcomes, cfg.level, cfg.n_boot, cfg.seed).as_dict()}}
