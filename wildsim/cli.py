"""The `wildsim` command: a front door that hands each subcommand to the module that implements it.

Each subcommand module exposes `main(argv: list[str] | None) -> int` and builds its own parser
(with --help). Modules are imported only when their subcommand runs, so `wildsim --help` is fast
and a missing optional dependency only affects the commands that need it.
"""

from __future__ import annotations

import importlib
import sys

#: subcommand words -> (module, one-line summary)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("data", "prepare"): ("corpora.prepare", "filter and split WildChat into train/validation/test"),
    ("data", "intents"): ("simulators.intents", "have an LLM write each conversation's hidden intent"),
    ("simulate",): ("eval.simulate", "play a simulator against an assistant; write WildChat-schema JSONL"),
    ("train", "rl"): ("trainers.train_rl", "GRPO training of an assistant against a simulator"),
    ("train", "ppo"): ("trainers.train_ppo", "multi-turn PPO (critic, turn-level rewards) against a simulator"),
    ("train", "simulator"): ("trainers.train_simulator", "fine-tune a simulator on human user turns"),
    ("eval", "fidelity"): ("eval.fidelity", "distributional gap between real and simulated users"),
    ("eval", "turn-fidelity"): ("eval.turn_fidelity", "replay real prefixes; compare next user turns"),
    ("eval", "cross-sim"): ("eval.cross_sim", "assistants x simulators matrix with the training judge"),
    ("eval", "wildbench"): ("eval.wildbench", "WildBench pairwise / checklist / score judging"),
    ("arena", "serve"): ("arena.serve", "serve a human study: participants compare two assistants"),
    ("arena", "analyze"): ("arena.analyze", "study win rates, sign tests, Bradley-Terry ratings"),
    ("arena", "export"): ("arena.export", "study votes as battles JSONL or conversations as WildChat"),
    ("serve",): ("wildsim.serve", "start the vLLM servers a config needs; print their engine specs"),
    ("demo",): ("wildsim.demo", "the CPU demo: train, fine-tune a simulator, evaluate (make demo)"),
}


def _usage() -> str:
    lines = ["usage: wildsim <command> [options]   (wildsim <command> --help for its options)", "",
             "commands:"]
    for words, (_module, summary) in COMMANDS.items():
        lines.append(f"  {' '.join(words):<22} {summary}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for words, (module, _summary) in COMMANDS.items():
        if tuple(argv[: len(words)]) == words:
            rest = argv[len(words):]
            sys.argv[0] = "wildsim " + " ".join(words)
            return int(importlib.import_module(module).main(rest) or 0)
    if argv and argv[0] not in ("-h", "--help"):
        print(f"wildsim: unknown command {' '.join(argv[:2])!r}\n", file=sys.stderr)
        print(_usage(), file=sys.stderr)
        return 2
    print(_usage())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
