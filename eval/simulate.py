"""`wildsim simulate`: play a zoo simulator against an assistant over a task file and write the
conversations as WildChat-schema JSONL (what the fidelity tools read).

    wildsim simulate --simulator roleplay2-cpu --assistant builtin:smollm2-135m-instruct \\
        --tasks sample --out runs/sim/roleplay2.jsonl --limit 20 --max-turns 3

Conversations are played with the training rollout engine (trainers/rollout.py), in batches of
`--batch` episodes, with a progress bar. Each line is one conversation in the WildChat schema
(conversation_hash, model, timestamp, turn, language, toxic, redacted, state, country,
hashed_ip, header, openai_moderation, detoxify_moderation, conversation[{role, content,
language, toxic, redacted, turn_identifier, …}]), plus the extra fields `simulator`,
`end_reason`, `task_id`, `intent` and `persona`. Placeholder values: language "English"
(not detected), toxic/redacted false, moderation lists empty, hashed_ip "simulated-<simulator>".
The end reasons are counted and printed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from corpora.types import Episode, Task

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wildsim simulate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--simulator", required=True, help="simulator name in the zoo (e.g. roleplay2-cpu)")
    p.add_argument("--assistant", required=True, help="engine spec of the assistant "
                   "(builtin:…, hf:<dir>[@lora=<dir>], vllm:…, openai:<url>#<model>)")
    p.add_argument("--tasks", default="sample", help="task file (corpora.tasks.read_tasks: Task "
                   "JSONL or WildChat-schema data) or 'sample' (default)")
    p.add_argument("--out", required=True, help="output JSONL file")
    p.add_argument("--zoo", default=None, help="simulator zoo YAML (default configs/simulators.yaml)")
    p.add_argument("--sim-engine", default=None, help="engine spec replacing the simulator's own")
    p.add_argument("--limit", type=int, default=None, help="use only the first N tasks")
    p.add_argument("--max-turns", type=int, default=5, help="most assistant turns per conversation")
    p.add_argument("--max-tokens", type=int, default=256, help="most tokens per assistant turn")
    p.add_argument("--temperature", type=float, default=0.7, help="assistant sampling temperature")
    p.add_argument("--batch", type=int, default=16, help="conversations played in lockstep at once")
    p.add_argument("--seed", type=int, default=0, help="seed of the assistant and the simulator")
    return p


def conversation_hash(simulator: str, assistant: str, task_id: str, sample: int) -> str:
    """A stable 32-hex id for one simulated conversation."""
    key = json.dumps([simulator, assistant, task_id, sample])
    return hashlib.md5(key.encode()).hexdigest()


def episode_to_wildchat(ep: Episode, assistant: str, timestamp: str, chash: str) -> dict[str, Any]:
    """One episode as a WildChat-schema record (see the module docstring for placeholders)."""
    ip = f"simulated-{ep.simulator}"
    utterances = []
    for i, m in enumerate(ep.messages):
        u: dict[str, Any] = {"role": m.role, "content": m.content, "language": "English",
                             "toxic": False, "redacted": False,
                             "turn_identifier": int(chash[:8], 16) * 100 + i}
        if m.role == "user":
            u.update(hashed_ip=ip, state=None, country=None, header={})
        else:
            u["timestamp"] = timestamp
        utterances.append(u)
    return {
        "conversation_hash": chash, "model": assistant, "timestamp": timestamp,
        "turn": sum(m.role == "user" for m in ep.messages), "language": "English",
        "toxic": False, "redacted": False, "state": None, "country": None, "hashed_ip": ip,
        "header": {}, "openai_moderation": [], "detoxify_moderation": [],
        "conversation": utterances,
        "simulator": ep.simulator, "end_reason": ep.end_reason, "task_id": ep.task.task_id,
        "intent": ep.task.intent, "persona": ep.persona,
    }


def simulate(tasks: Sequence[Task], simulator: Any, policy: Any, rollout: Any, out: Path,
             assistant: str, batch: int, seed: int) -> Counter:
    """Play every task in batches, append records to `out` as each batch ends; end-reason counts."""
    from tqdm import tqdm

    from trainers.rollout import run_rollout

    reasons: Counter = Counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    timestamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with open(out, "w", encoding="utf-8") as f, tqdm(total=len(tasks), desc="simulate") as bar:
        for start in range(0, len(tasks), batch):
            chunk = tasks[start:start + batch]
            episodes = [Episode(task=t, simulator=simulator.name, group_id=t.task_id) for t in chunk]
            run_rollout(episodes, policy, simulator, rollout, seed=seed + start)
            for ep in episodes:
                chash = conversation_hash(ep.simulator, assistant, ep.task.task_id, ep.sample)
                record = episode_to_wildchat(ep, assistant, timestamp, chash)
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                reasons[str(ep.end_reason)] += 1
            f.flush()
            bar.update(len(chunk))
            bar.set_postfix(dict(reasons))
    return reasons


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from corpora.records import DataError
    from eval.cross_sim import load_policy_engine, load_tasks
    from simulators.zoo import ZooError, load_simulator
    from trainers.rollout import RolloutConfig, make_policy

    try:
        rollout = RolloutConfig(max_turns=args.max_turns, max_tokens=args.max_tokens,
                                temperature=args.temperature)
        tasks = load_tasks(args.tasks, args.limit)
        simulator = load_simulator(args.simulator, args.zoo, engine_override=args.sim_engine,
                                   seed=args.seed)
    except (DataError, ZooError, ValueError, KeyError) as err:
        print(f"wildsim simulate: {err}", file=sys.stderr)
        return 2
    if not tasks:
        print(f"wildsim simulate: no tasks in {args.tasks!r}", file=sys.stderr)
        return 2
    policy = make_policy(load_policy_engine(args.assistant))
    reasons = simulate(tasks, simulator, policy, rollout, Path(args.out), args.assistant,
                       args.batch, args.seed)
    print(f"wrote {sum(reasons.values())} conversations to {args.out}; end reasons: "
          + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
