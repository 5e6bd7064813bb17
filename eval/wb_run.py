"""The WildBench evaluation pipeline behind `wildsim eval wildbench` (see eval/wildbench.py):
load tasks → generate responses (cached) → judge (cached) → aggregate → JSON, markdown, PNG.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from corpora.types import Message
from engines.base import Sampling
from eval import eval_report as rep
from eval import stats
from eval import wb_aggregate as agg
from eval import wb_protocol as wbp
from eval.wb_judge import (JudgeSettings, ScoreTask, TaskMeta, checklist_tasks, checklist_verdicts,
                           reward_tasks, score_tasks)
from eval.wb_prompts import JudgeContext
from eval.wb_summary import checklist_summary, reward_summary, score_summary
from foundation.config import to_dict

log = logging.getLogger(__name__)
PROMPT_VERSION = "wb-v2"  # bump when the judge prompts change, so cached verdicts are not reused


REF_PREFIX = "ref:"  # `--model-b ref:gpt-4` uses the dataset's own reference responses
FILE_PREFIX = "file:"  # `--model-b file:outputs.json` reads stored responses keyed by session_id


class IncompleteVerdicts(RuntimeError):
    """The paper protocol with on_incomplete=stop met a task whose verdicts are incomplete."""


def load_contexts(data: str, limit: int | None, all_tags: bool = False
                  ) -> tuple[list[JudgeContext], list[TaskMeta], list[dict[str, str]]]:
    """WildBench tasks as judge contexts, their TaskMeta (groups: the primary tag's, plus every
    secondary tag's when `all_tags`) and the references per task."""
    from corpora.wildbench import load_wildbench

    tasks = load_wildbench(data, limit=limit)
    contexts, meta, refs = [], [], []
    for t in tasks:
        contexts.append(JudgeContext(history=tuple(t.history), query=t.query,
                                     checklist=tuple(t.checklist)))
        meta.append(TaskMeta(t.session_id, t.primary_tag or "",
                             agg.task_groups(t.primary_tag, t.secondary_tags, all_tags)))
        refs.append(dict(t.references))
    return contexts, meta, refs


def file_responses(spec: str, meta: Sequence[TaskMeta]) -> tuple[list[str], int]:
    """Responses stored in a JSON list or JSONL file named by `file:<path>`: records with
    `session_id` and `output` (a string, or a list whose first entry is used, as in the official
    model-output files). Returns them in task order and how many tasks have none (empty)."""
    import json

    from corpora.records import DataError

    path = Path(spec[len(FILE_PREFIX):])
    try:
        text = path.read_text(encoding="utf-8")
        records = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()]
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read stored responses ({err})") from err
    by_id = {}
    for n, rec in enumerate(records):
        if not isinstance(rec, dict) or "session_id" not in rec or "output" not in rec:
            raise DataError(f"{path}: record {n} needs 'session_id' and 'output'")
        out = rec["output"]
        by_id[str(rec["session_id"])] = (out[0] if isinstance(out, list) and out else out) or ""
    texts = [by_id.get(m.session_id) for m in meta]
    return [str(t or "") for t in texts], sum(t is None for t in texts)


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


def generate(spec: str, contexts: Sequence[JudgeContext], cache_dir: Path, sampling: Sampling
             ) -> list[str]:
    """Responses of model `spec` to each task's conversation (history + query), cached."""
    from engines.cache import CachedChatEngine
    from engines.spec import load_chat_engine

    engine = CachedChatEngine(load_chat_engine(spec), cache_dir / "generations.jsonl",
                              key_prefix=f"gen|{spec}", batch_size=cache_batch_size(spec))
    convs = [[*c.history, Message("user", c.query)] for c in contexts]
    log.info("generating %d responses with %s", len(convs), spec)
    return engine.chat(convs, sampling)


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


def _responses(cfg: Any, proto: wbp.WBProtocol, contexts, meta, refs, cache: Path
               ) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Every model's responses: generated, the dataset's (`ref:`) or stored in a file (`file:`)."""
    models = [cfg.model_a, *[b for b in cfg.model_b if b != cfg.model_a]]
    max_tokens = cfg.gen_max_tokens or proto.gen_max_tokens or 1024
    responses, missing = {}, {}
    for m in models:
        if m.startswith(REF_PREFIX):
            responses[m], missing[m] = dataset_responses(m, refs)
        elif m.startswith(FILE_PREFIX):
            responses[m], missing[m] = file_responses(m, meta)
        else:
            responses[m] = generate(m, contexts, cache,
                                    proto.generation_sampling(cfg.mode, max_tokens))
    return responses, missing


def evaluate(cfg: Any, argv: Sequence[str]) -> Path:
    """Run the whole evaluation for a WildBenchConfig; returns OUT/wildbench.json."""
    proto = wbp.get_protocol(cfg.protocol)
    out, cache = Path(cfg.out), Path(cfg.out) / "cache"
    contexts, meta, refs = load_contexts(cfg.data, cfg.limit, proto.tag_groups == "all")
    if not contexts:
        raise SystemExit(f"wildsim eval wildbench: no tasks in {cfg.data!r}")
    responses, missing_refs = _responses(cfg, proto, contexts, meta, refs, cache)
    judges = load_judges(cfg.judges, cache, cfg.judge_engine_options)
    settings = JudgeSettings(cfg.judge_max_tokens or proto.judge_max_tokens, cfg.json_schema,
                             cfg.judge_tries or proto.judge_tries)
    result: dict[str, Any] = {
        "command": rep.command_line(argv), "config": to_dict(cfg), "mode": cfg.mode,
        "protocol": proto.name, "protocol_settings": asdict(proto),
        "judge_settings": asdict(settings),
        "prompt_version": PROMPT_VERSION, "n_tasks": len(contexts),
        "tag_groups": agg.tag_group_counts(m.primary_tag for m in meta),
        "empty_responses": {m: sum(not r.strip() for r in rs) for m, rs in responses.items()},
        "missing_dataset_references": missing_refs,
        "smoke_test": any(rep.is_small_model(j) for j in cfg.judges),
        "references": {},
    }
    runner = {"reward": _run_reward, "checklist": _run_checklist, "score": _run_score}[cfg.mode]
    runner(cfg, proto, contexts, meta, responses, judges, settings, result)
    result["judge_calls"] = {name: {"cached": e.hits, "new": e.misses} for name, e in judges.items()}
    path = rep.write_json(out / "wildbench.json", result)
    from eval.wb_report import write_report

    write_report(result, out)
    if result.get("incomplete") and cfg.on_incomplete == "stop":
        raise IncompleteVerdicts(
            f"{result['incomplete']} task(s) have incomplete checklist verdicts after "
            f"{settings.tries} tries; the run is not scored (see {path}); rerun to retry them or "
            "pass --on-incomplete report")
    return path


def _run_reward(cfg, proto, contexts, meta, responses, judges, settings, result) -> None:
    test = responses[cfg.model_a]
    macros, plains = {}, []
    for ref_spec in cfg.model_b:
        tasks, retried = reward_tasks(contexts, meta, test, responses[ref_spec], judges, cfg.K,
                                      settings, proto, cfg.both_orders, cfg.order_seed)
        summary = reward_summary(tasks, proto, cfg.level, cfg.n_boot, cfg.seed)
        summary["retried_calls"] = retried
        macros[ref_spec] = summary["task_macro"]
        plains.append(summary["reward"])
        result["references"][ref_spec] = {"summary": summary, "tasks": [asdict(t) for t in tasks]}
    kept = [m for m in macros.values() if m is not None]
    result["mix"] = {"task_macro": sum(kept) / len(kept) if kept else None,
                     "n_references": len(kept)}
    if proto.name == "official":
        by_name = {name: next((v for s, v in macros.items() if name in s), None)
                   for name in wbp.OFFICIAL_REFERENCES}
        kept_plain = [p for p in plains if p is not None]
        result["mix"] = {"task_macro": wbp.official_mix(by_name), "n_references": 3,
                         "official_references_found": [n for n, v in by_name.items()
                                                       if v is not None],
                         "mixture_of_rewards": (sum(kept_plain) / len(kept_plain)
                                                if kept_plain else None)}


def _run_checklist(cfg, proto, contexts, meta, responses, judges, settings, result) -> None:
    test_verdicts, how = checklist_verdicts(contexts, responses[cfg.model_a], judges, settings,
                                            proto)
    n_items = [len(c.checklist) for c in contexts]
    incomplete = 0
    for ref_spec in cfg.model_b:
        ref_verdicts, ref_how = checklist_verdicts(contexts, responses[ref_spec], judges,
                                                   settings, proto)
        tasks = checklist_tasks(meta, n_items, test_verdicts, ref_verdicts, proto)
        summary = checklist_summary(tasks, how + ref_how, proto, cfg.level, cfg.n_boot, cfg.seed)
        incomplete += summary["n_incomplete"]
        result["references"][ref_spec] = {"summary": summary, "tasks": [asdict(t) for t in tasks]}
    result["incomplete"] = incomplete


def _run_score(cfg, proto, contexts, meta, responses, judges, settings, result) -> None:
    per_model: dict[str, list[ScoreTask]] = {}
    result["models"] = {}
    for spec, resp in responses.items():
        tasks, how = score_tasks(contexts, meta, resp, judges, settings, proto)
        per_model[spec] = tasks
        result["models"][spec] = {"summary": score_summary(tasks, how, proto, cfg.level,
                                                           cfg.n_boot, cfg.seed),
                                  "tasks": [asdict(t) for t in tasks]}
    test = {t.session_id: t.rescaled for t in per_model[cfg.model_a] if t.rescaled is not None}
    for ref_spec in cfg.model_b:
        ref = {t.session_id: t.rescaled for t in per_model[ref_spec] if t.rescaled is not None}
        keys, outcomes = stats.paired_outcomes(test, ref)
        result["references"][ref_spec] = {"summary": {
            "n_pairs": len(keys),
            "win_rate": stats.summarize_win_rate(outcomes, cfg.level, cfg.n_boot, cfg.seed).as_dict()}}
