"""`wildsim eval cross-sim`: the cross-simulator matrix — assistants × simulators on held-out tasks.

    wildsim eval cross-sim --config configs/eval/cross_sim_demo.yaml [--limit 8] [--out DIR]

Every assistant (an engine spec: a base model, or base + LoRA adapter from a training run) talks
with every simulator of the zoo over the same held-out tasks, with the SAME rollout engine as
training (trainers/rollout.py) and is scored by the SAME reward as training (a reward config in
the training format, built by rewards.build_reward — normally the LLM judge). Judge calls go
through a disk cache (OUT/cache/judge.jsonl); each finished cell's conversations are kept in
OUT/conversations/<assistant>__<simulator>.jsonl with their rewards and judge details, and a
rerun reuses finished cells, so a killed run resumes.

Outputs: OUT/cross_sim.json (per cell: mean reward, bootstrap CI, n, judge parse failures, end
reasons; paired comparisons: per-task win rate of one assistant over another on the same
simulator, ties half, with Wald CI and sign test), OUT/report.md, OUT/cross_sim.png (heatmap),
OUT/config.yaml. `run_cross_sim(cfg)` does the same from Python and returns the JSON path.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from corpora.types import Episode, Task
from eval import eval_report as rep
from rewards.base import attach_result
from eval import stats
from trainers.rollout import RolloutConfig, make_policy, run_rollout
from foundation.config import ConfigError, option, parse_config, save_config, to_dict

log = logging.getLogger(__name__)


@dataclass
class CrossSimConfig:
    """Settings of a cross-simulator evaluation."""

    assistants: dict[str, str] = option({}, help="name -> engine spec of each assistant, e.g. "
                                        "{base: hf:models/qwen, rl: 'hf:models/qwen@lora=runs/rl/adapter'}")
    simulators: list[str] = option([], help="simulator names from the zoo (columns of the matrix)")
    zoo: str | None = option(None, help="simulator zoo YAML (default configs/simulators.yaml)")
    sim_engine: str | None = option(None, help="engine spec replacing every simulator's own "
                                    "(e.g. builtin:smollm2-135m-instruct on a CPU machine)")
    sim_max_tokens: int | None = option(None, help="cap on every simulator's tokens per user turn "
                                        "(None: each zoo entry's own max_tokens)")
    tasks: str = option("sample", help="held-out task file (corpora.tasks.read_tasks) or 'sample'")
    limit: int | None = option(None, help="use only the first N tasks (None: all)")
    samples: int = option(1, help="conversations per task and cell (per-task rewards are averaged)")
    rollout: RolloutConfig = option(default_factory=lambda: RolloutConfig(temperature=0.0),
                                    help="how conversations are played (the training rollout "
                                    "settings; evaluation defaults to greedy)")
    reward: dict[str, Any] = option({"kind": "judge", "judges": ["builtin:smollm2-135m-instruct"]},
                                    help="reward config in the training format (rewards.build_reward)")
    compare: list[list[str]] = option([], help="pairs [a, b] of assistant names for the paired "
                                      "win rate of a over b; default: every assistant vs the first")
    tie_tol: float = option(0.0, help="per-task rewards closer than this count as a tie")
    cache: bool = option(True, help="cache judge calls on disk (OUT/cache/judge.jsonl)")
    out: str = option("runs/cross_sim", help="output folder")
    seed: int = option(0, help="rollout and simulator seed; also seeds the bootstrap")
    level: float = option(0.95, help="confidence level of intervals")
    n_boot: int = option(2000, help="bootstrap resamples")

    def __post_init__(self) -> None:
        if not self.assistants:
            raise ConfigError("assistants is empty: give at least one name -> engine spec")
        if not self.simulators:
            raise ConfigError("simulators is empty: name at least one simulator of the zoo")
        if self.samples < 1:
            raise ConfigError(f"samples must be >= 1, got {self.samples}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1 (or null for all tasks), got {self.limit}")
        for pair in self.compare:
            if len(pair) != 2 or any(name not in self.assistants for name in pair):
                raise ConfigError(f"compare entry {pair} must be two assistant names out of "
                                  f"{sorted(self.assistants)}")
        if "kind" not in self.reward:
            raise ConfigError("reward needs a kind (judge, rule or weighted), as in training configs")

    def pairs(self) -> list[tuple[str, str]]:
        """The assistant pairs (a, b) to compare: `compare`, else each one vs the first."""
        if self.compare:
            return [(a, b) for a, b in self.compare]
        names = list(self.assistants)
        return [(name, names[0]) for name in names[1:]]


@dataclass
class Cell:
    """One assistant × simulator cell: its conversation records (with rewards) and summary."""

    assistant: str
    simulator: str
    records: list[dict[str, Any]] = field(default_factory=list)

    def task_rewards(self) -> dict[str, float]:
        """Mean reward per task over its samples (what paired comparisons use)."""
        sums: dict[str, list[float]] = {}
        for r in self.records:
            if r["reward"] is not None:
                sums.setdefault(r["task_id"], []).append(r["reward"])
        return {t: sum(v) / len(v) for t, v in sums.items()}


def count_in_details(details: Any, key: str) -> int:
    """Sum of `key` (an int count or a bool flag) anywhere in a reward's details: judge
    "parse_failures" and "fallback_used" sit at the top for a judge reward and nested under
    components for a weighted one."""
    if isinstance(details, dict):
        own = details.get(key, 0)
        own = int(own) if isinstance(own, (int, bool)) else 0
        return own + sum(count_in_details(v, key) for k, v in details.items() if k != key)
    if isinstance(details, list):
        return sum(count_in_details(v, key) for v in details)
    return 0


def cell_summary(cell: Cell, level: float, n_boot: int, seed: int) -> dict[str, Any]:
    """Mean reward with bootstrap CI over conversations, n, parse failures, end reasons."""
    rewards = [r["reward"] for r in cell.records if r["reward"] is not None]
    reasons: dict[str, int] = {}
    for r in cell.records:
        reasons[str(r["end_reason"])] = reasons.get(str(r["end_reason"]), 0) + 1
    turns = [sum(m["role"] == "assistant" for m in r["messages"]) for r in cell.records]
    return {
        "assistant": cell.assistant, "simulator": cell.simulator,
        "reward": stats.summarize_mean(rewards, level, n_boot, seed).as_dict(),
        "n": len(cell.records), "n_tasks": len({r["task_id"] for r in cell.records}),
        "unscored": len(cell.records) - len(rewards),
        "judge_parse_failures": sum(count_in_details(r["reward_details"], "parse_failures")
                                    for r in cell.records),
        "judge_fallbacks": sum(count_in_details(r["reward_details"], "fallback_used") > 0
                               for r in cell.records),
        "end_reasons": reasons,
        "mean_assistant_turns": sum(turns) / len(turns) if turns else None,
    }


def paired_comparison(a: Cell, b: Cell, tol: float, level: float, n_boot: int, seed: int
                      ) -> dict[str, Any]:
    """Win rate of assistant a over b on the tasks both have (per-task mean rewards; ties half)."""
    keys, outcomes = stats.paired_outcomes(a.task_rewards(), b.task_rewards(), tol)
    return {"a": a.assistant, "b": b.assistant, "simulator": a.simulator, "n_tasks": len(keys),
            **stats.summarize_win_rate(outcomes, level, n_boot, seed).as_dict()}


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def cell_path(out: Path, assistant: str, simulator: str) -> Path:
    return out / "conversations" / f"{_slug(assistant)}__{_slug(simulator)}.jsonl"


def load_cell(path: Path, assistant: str, simulator: str, expected: int) -> Cell | None:
    """A finished cell from a previous run (None when missing or incomplete)."""
    if not path.exists():
        return None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return Cell(assistant, simulator, records) if len(records) == expected else None


def save_cell(path: Path, cell: Cell) -> None:
    """Write a cell's records atomically (a killed write leaves no half file behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in cell.records))
    tmp.replace(path)


def play_cell(tasks: Sequence[Task], assistant: str, spec: str, policy: Any, simulator: Any,
              sim_name: str, reward: Any, cfg: CrossSimConfig) -> Cell:
    """Play and score every (task, sample) conversation of one cell."""
    episodes = [Episode(task=t, simulator=sim_name, group_id=t.task_id, sample=s)
                for t in tasks for s in range(cfg.samples)]
    run_rollout(episodes, policy, simulator, cfg.rollout, seed=cfg.seed)
    for ep, result in zip(episodes, reward.score(episodes)):
        attach_result(ep, result)  # an excluded result leaves the conversation unscored
    records = []
    for ep in episodes:
        record = ep.to_record()
        record.update(assistant=assistant, assistant_spec=spec)
        records.append(record)
    return Cell(assistant, sim_name, records)


def build_eval_reward(cfg: CrossSimConfig) -> Any:
    """The training reward from its config; judge engines wrapped in the disk cache."""
    from engines.spec import load_chat_engine
    from rewards.weighted import build_reward

    def loader(spec: str, **options: Any) -> Any:
        engine = load_chat_engine(spec, **options)
        if not cfg.cache:
            return engine
        from engines.cache import CachedChatEngine
        from eval.wb_run import cache_batch_size

        return CachedChatEngine(engine, Path(cfg.out) / "cache" / "judge.jsonl",
                                key_prefix=f"judge|{spec}", batch_size=cache_batch_size(spec))

    return build_reward(cfg.reward, engine_loader=loader)


def load_policy_engine(spec: str) -> Any:
    """A TokenEngine for local specs (the training path), a ChatEngine for openai: servers."""
    from engines.spec import load_chat_engine, load_token_engine, parse_spec

    return load_chat_engine(spec) if parse_spec(spec).backend == "openai" else load_token_engine(spec)


def load_tasks(source: str, limit: int | None) -> list[Task]:
    """Held-out tasks from a file (or the bundled sample), first `limit` of them."""
    from corpora.tasks import read_tasks

    tasks = list(read_tasks(source))
    return tasks[:limit] if limit else tasks


def run_cross_sim(cfg: CrossSimConfig, argv: Sequence[str] | None = None) -> Path:
    """Run the matrix and write its outputs; returns OUT/cross_sim.json."""
    from simulators.zoo import cap_max_tokens, load_simulator
    from tqdm import tqdm

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    tasks = load_tasks(cfg.tasks, cfg.limit)
    if not tasks:
        raise SystemExit(f"wildsim eval cross-sim: no tasks in {cfg.tasks!r}")
    expected = len(tasks) * cfg.samples
    reward = build_eval_reward(cfg)
    sims: dict[str, Any] = {}
    cells: dict[tuple[str, str], Cell] = {}
    grid = [(a, s) for a in cfg.assistants for s in cfg.simulators]
    for assistant, sim_name in tqdm(grid, desc="cross-sim cells"):
        path = cell_path(out, assistant, sim_name)
        cell = load_cell(path, assistant, sim_name, expected)
        if cell is None:
            spec = cfg.assistants[assistant]
            policy = make_policy(load_policy_engine(spec), cfg.rollout.system_prompt)
            if sim_name not in sims:
                sims[sim_name] = load_simulator(sim_name, cfg.zoo, engine_override=cfg.sim_engine,
                                                seed=cfg.seed)
                cap_max_tokens(sims[sim_name], cfg.sim_max_tokens, option_name="sim_max_tokens")
            cell = play_cell(tasks, assistant, spec, policy, sims[sim_name], sim_name, reward, cfg)
            save_cell(path, cell)
        else:
            log.info("reusing finished cell %s x %s from %s", assistant, sim_name, path)
        cells[(assistant, sim_name)] = cell
    result = summarize(cfg, cells, len(tasks), argv)
    result["judge_calls"] = _judge_calls(reward)
    json_path = rep.write_json(out / "cross_sim.json", result)
    from eval.cross_sim_report import write_report

    write_report(result, out)
    return json_path


def summarize(cfg: CrossSimConfig, cells: dict[tuple[str, str], Cell], n_tasks: int,
              argv: Sequence[str] | None) -> dict[str, Any]:
    """The cross_sim.json content: config, command, matrix cells, paired comparisons."""
    level, n_boot, seed = cfg.level, cfg.n_boot, cfg.seed
    matrix = [cell_summary(cells[(a, s)], level, n_boot, seed)
              for a in cfg.assistants for s in cfg.simulators]
    pairs = [paired_comparison(cells[(a, s)], cells[(b, s)], cfg.tie_tol, level, n_boot, seed)
             for a, b in cfg.pairs() for s in cfg.simulators]
    from rewards.judge import judge_entry

    reward_cfg = cfg.reward
    judges = [judge_entry(j)[0] for j in reward_cfg.get("judges", [])] + [
        judge_entry(j)[0] for c in reward_cfg.get("components", []) for j in c.get("judges", [])]
    return {
        "command": rep.command_line(argv), "config": to_dict(cfg), "n_tasks": n_tasks,
        "assistants": cfg.assistants, "simulators": cfg.simulators, "cells": matrix,
        "comparisons": pairs, "smoke_test": any(rep.is_small_model(j) for j in judges),
        "judges": judges,
    }


def _judge_calls(reward: Any) -> dict[str, dict[str, int]]:
    """Cache hits/misses of every cached judge engine reachable from the reward."""
    engines = list(getattr(reward, "judges", []))
    for component in getattr(reward, "components", []):
        inner = component[1] if isinstance(component, tuple) else component
        engines += list(getattr(inner, "judges", []))
    return {getattr(e, "key_prefix", repr(e)): {"cached": e.hits, "new": e.misses}
            for e in engines if hasattr(e, "hits")}


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = parse_config(CrossSimConfig, argv, prog="wildsim eval cross-sim", description=__doc__)
    path = run_cross_sim(cfg, ["wildsim", "eval", "cross-sim", *argv])
    print(f"wrote {path} and {path.parent / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
