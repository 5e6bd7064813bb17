"""`wildsim eval wildbench`: judge two (or more) assistants on WildBench tasks.

    wildsim eval wildbench --model-a hf:runs/rl/final --model-b hf:Qwen/Qwen2.5-3B-Instruct \\
        --judge openai:http://judge:8000/v1#Qwen/Qwen3-32B --mode reward --data allenai/WildBench \\
        --out runs/wb

Steps: load WildBench v2 (hub name, a local file in its schema, or `sample`); generate every
model's response to each task's conversation (greedy, cached on disk); judge in the chosen mode
(reward: WB-Reward pairwise, both orders, length penalty K; checklist: items satisfied by judge
majority, more satisfied wins; score: WB-Score 1–10 → (S−5)×2); aggregate with task-macro weights
and win-rate statistics. `--protocol` picks the rules and units: `wildsim` (the project's
default), `official` (the allenai/WildBench leaderboard tables) or `paper` (the 2605.09808
release); eval/wb_protocol.py and docs/evaluation.md list what each one fixes. Every chat call
goes through a CachedChatEngine under OUT/cache/, keyed
by (engine, prompt, sampling), so a killed run picks up where it stopped. Writes
OUT/wildbench.json (per-task verdicts, aggregates, parse failures, the command line),
OUT/report.md, OUT/wildbench.png and OUT/config.yaml. `--model-b` may be repeated: each reference
is compared in turn and WB-Reward (mix) is the mean over references; `--model-b ref:gpt-4` takes
the responses stored in the tasks' `references` field instead of generating them, and
`--model-b file:PATH` reads stored responses (records with session_id and output), e.g. the
official reference models' outputs for the official three-reference mix.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

from foundation.config import ConfigError, from_dict, option, save_config

log = logging.getLogger(__name__)
MODES = ("reward", "checklist", "score")
PROTOCOLS = ("wildsim", "official", "paper")


@dataclass
class WildBenchConfig:
    """Settings of one WildBench evaluation."""

    model_a: str = option("", help="engine spec of the model under test (e.g. hf:runs/rl/final)")
    model_b: list[str] = option([], help="engine spec(s) of the reference model(s), or "
                                "ref:<name> for the dataset's own reference responses (e.g. "
                                "ref:gpt-4); each is compared with model_a in turn")
    judges: list[str] = option([], help="judge engine spec(s); verdicts are combined over judges "
                               "(reward/score: mean; checklist: per-item majority)")
    judge_engine_options: dict[str, dict] = option(
        {}, help="engine options per judge spec, e.g. {<Qwen3 judge spec>: {extra_body: "
        "{chat_template_kwargs: {enable_thinking: false}}}}; judges not named get none")
    mode: Literal["reward", "checklist", "score"] = option(
        "reward", help="reward: WB-Reward pairwise; checklist: checklist-item win rate; "
        "score: WB-Score per response")
    protocol: Literal["wildsim", "official", "paper"] = option(
        "wildsim", help="wildsim: the project's rules (both orders, primary-tag groups, tolerant "
        "parsing); official: the WildBench leaderboard's (one random order per task, all tag "
        "groups, macro / 4.75, strict JSON, x100 / x10 units); paper: the 2605.09808 release's "
        "(retries, 2-of-3 checklist majority, failed order drops the task, x100)")
    data: str = option("sample", help="allenai/WildBench (hub, config v2), a local JSON/JSONL/"
                       "Parquet file in the WildBench schema, or 'sample' (bundled)")
    limit: int | None = option(None, help="use only the first N tasks (None: all)")
    K: int = option(500, help="WB-Reward length penalty: a slight win becomes a tie when the "
                    "winner is more than K characters longer; any negative K turns it off (K = 0 is "
                    "active, as in the official tables, which test K >= 0)")
    both_orders: bool = option(True, help="judge each pair in both orders and average (removes "
                               "position bias; doubles reward-mode judge calls)")
    order_seed: int = option(42, help="seed of the A/B side drawn per task when one order is "
                             "judged (--one-order, and always under the official protocol)")
    out: str = option("runs/wildbench", help="output folder (reports, JSON, caches)")
    gen_max_tokens: int | None = option(None, help="maximum tokens per generated response "
                                        "(None: 2,048 under paper, else 1,024)")
    judge_max_tokens: int | None = option(None, help="maximum tokens per judge reply (None: the "
                                          "protocol's: wildsim 1,024, official 4,096, paper "
                                          "16,384; a short budget cuts replies and they fail to "
                                          "parse)")
    judge_tries: int | None = option(None, help="tries per judge call before a verdict counts as "
                                     "failed (None: the protocol's: 8 under paper, else 1); "
                                     "retries run at temperature 0.3")
    on_incomplete: Literal["stop", "report"] = option(
        "stop", help="when checklist verdicts stay incomplete after every try (paper protocol): "
        "stop (exit 3 after writing the JSON) or report the run as incomplete")
    json_schema: bool = option(True, help="ask judge servers for JSON-schema-constrained output "
                               "(servers without support ignore it)")
    level: float = option(0.95, help="confidence level of intervals")
    n_boot: int = option(2000, help="bootstrap resamples for intervals")
    seed: int = option(0, help="seed of the bootstrap")

    def __post_init__(self) -> None:
        if not self.model_a:
            raise ConfigError("model_a is required: pass --model-a SPEC (e.g. hf:runs/rl/final)")
        if not self.model_b:
            raise ConfigError("at least one reference is required: pass --model-b SPEC")
        if not self.judges:
            raise ConfigError("at least one judge is required: pass --judge SPEC (repeatable)")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        stray = sorted(set(self.judge_engine_options) - set(self.judges))
        if stray:
            raise ConfigError(f"judge_engine_options names {stray}, which are not in judges "
                              f"{self.judges}; use the judge specs exactly as written there")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1 (or omitted for all tasks), got {self.limit}")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.protocol == "paper" and self.mode == "checklist" and len(self.judges) != 3:
            raise ConfigError("the paper's checklist majority is 2 of exactly 3 judges: pass "
                              f"--judge three times (got {len(self.judges)}) or use --protocol "
                              "wildsim")
        for name in ("gen_max_tokens", "judge_max_tokens", "judge_tries"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1 (or omitted for the protocol's default)")
        if self.on_incomplete not in ("stop", "report"):
            raise ConfigError(f"on_incomplete must be stop or report, got {self.on_incomplete!r}")
        if self.K < -1:
            raise ConfigError(f"K must be >= 0, or -1 to disable the length penalty; got {self.K}")
        if not 0 < self.level < 1:
            raise ConfigError(f"level must be in (0, 1), got {self.level}")


_FLAGS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--model-a", "model_a", {}),
    ("--model-b", "model_b", {"action": "append"}),
    ("--judge", "judges", {"action": "append"}),
    ("--mode", "mode", {"choices": MODES}),
    ("--protocol", "protocol", {"choices": PROTOCOLS}),
    ("--order-seed", "order_seed", {"type": int}),
    ("--judge-tries", "judge_tries", {"type": int}),
    ("--on-incomplete", "on_incomplete", {"choices": ("stop", "report")}),
    ("--data", "data", {}),
    ("--limit", "limit", {"type": int}),
    ("--K", "K", {"type": int}),
    ("--out", "out", {}),
    ("--gen-max-tokens", "gen_max_tokens", {"type": int}),
    ("--judge-max-tokens", "judge_max_tokens", {"type": int}),
    ("--level", "level", {"type": float}),
    ("--n-boot", "n_boot", {"type": int}),
    ("--seed", "seed", {"type": int}),
)


def build_parser() -> argparse.ArgumentParser:
    """The command line: the documented flags plus --config YAML (flags override the YAML)."""
    parser = argparse.ArgumentParser(prog="wildsim eval wildbench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML with WildBenchConfig fields; flags override it")
    helps = {f.name: f.metadata["help"] for f in dataclasses.fields(WildBenchConfig)}
    for flag, dest, extra in _FLAGS:
        parser.add_argument(flag, dest=dest, default=argparse.SUPPRESS, help=helps[dest], **extra)
    parser.add_argument("--one-order", dest="both_orders", action="store_false",
                        default=argparse.SUPPRESS, help="judge one order per task, the side of model_a drawn per task with "
                        "--order-seed (halves reward-mode judge calls)")
    parser.add_argument("--no-json-schema", dest="json_schema", action="store_false",
                        default=argparse.SUPPRESS, help="do not ask servers for JSON-schema output")
    return parser


def parse_args(argv: Sequence[str] | None) -> WildBenchConfig:
    """Parse flags into a validated WildBenchConfig (exits with status 2 and a message on errors)."""
    import yaml

    parser = build_parser()
    args = vars(parser.parse_args(argv))
    try:
        data: dict[str, Any] = {}
        if args.get("config"):
            data = yaml.safe_load(Path(args["config"]).read_text()) or {}
        args.pop("config", None)
        data.update(args)
        return from_dict(WildBenchConfig, data)
    except (ConfigError, OSError, yaml.YAMLError) as err:
        parser.error(str(err))
        raise


def run_wildbench(cfg: WildBenchConfig, argv: Sequence[str] | None = None) -> Path:
    """Run one evaluation end to end; returns the path of OUT/wildbench.json."""
    from eval.wb_run import evaluate

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    return evaluate(cfg, argv if argv is not None else sys.argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = parse_args(argv)
    from corpora.records import DataError
    from eval.wb_run import IncompleteVerdicts

    command = ["wildsim", "eval", "wildbench", *(argv if argv is not None else sys.argv[1:])]
    try:
        path = run_wildbench(cfg, command)
    except DataError as err:
        print(f"wildsim eval wildbench: {err}", file=sys.stderr)
        return 2
    except IncompleteVerdicts as err:
        print(f"wildsim eval wildbench: {err}", file=sys.stderr)
        return 3
    print(f"wrote {path} and {path.parent / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
