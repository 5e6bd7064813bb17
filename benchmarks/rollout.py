"""Benchmark the lockstep rollout: batched over all live conversations vs one conversation at a time.

A tiny random chat model (engines.tiny) is the policy (HFEngine) and a scripted simulator that
answers instantly plays the user, so the policy dominates. It plays N conversations of T assistant
turns twice — lockstep (one batched generate call per turn for every live conversation) and
sequentially (one conversation after another, same code path) — and prints:
- conversations/s of each and their ratio (target ≥ 5×);
- where the lockstep run's wall time went: inside the policy's generate calls, inside simulator
  calls, and the rest (the rollout's own work: templating, token views; target ≤ 10%);
- the share of wall time outside the model's forward passes, timed with forward hooks (this also
  counts the engine's decoding loop: sampling, stop checks; for a very small model — hidden 64 —
  each such step costs a sizeable fraction of a forward pass, so the share is higher there).

Run:
    python benchmarks/rollout.py [--conversations 32 --turns 3 --max-tokens 32 --hidden 256 --threads 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpora.types import Episode, Task  # noqa: E402
from simulators.base import UserTurn  # noqa: E402
from trainers.rollout import RolloutConfig, make_policy, run_rollout  # noqa: E402


class InstantSimulator:
    """Opens with the task's opening and always asks for more, at no cost."""

    name = "instant"

    def open(self, episodes):
        return [ep.task.opening for ep in episodes]

    def reply(self, episodes):
        return [UserTurn("ok, can you make it shorter and explain it again please") for _ in episodes]


class ForwardClock:
    """Accumulates wall time inside the model's forward passes (pre/post forward hooks)."""

    def __init__(self, model):
        self.seconds = 0.0
        self._start = 0.0
        model.register_forward_pre_hook(self._pre)
        model.register_forward_hook(self._post)

    def _pre(self, module, args):
        self._start = time.perf_counter()

    def _post(self, module, args, output):
        self.seconds += time.perf_counter() - self._start


def _episodes(n: int) -> list[Episode]:
    return [Episode(task=Task(task_id=f"b{i}", intent="benchmark",
                              opening=f"hello, please write a python function number {i}"),
                    simulator="instant", group_id=f"0:b{i}") for i in range(n)]


def run(conversations: int, turns: int, max_tokens: int, hidden: int) -> dict[str, float]:
    from engines.hf import HFEngine, load_hf
    from engines.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model, tok = load_hf(str(build_tiny_model(Path(tmp), hidden=hidden)), dtype="float32",
                             device="cpu")
    engine = HFEngine(model, tok, batch_size=conversations)
    clock = ForwardClock(model)
    sim = InstantSimulator()
    # the random model rarely samples its end-of-turn token: nearly every turn runs to
    # max_tokens in both modes, so they do the same work
    policy = make_policy(engine)
    cfg = RolloutConfig(max_turns=turns, max_tokens=max_tokens, max_total_tokens=8192,
                        temperature=1.0)
    run_rollout(_episodes(4), policy, sim, cfg, seed=0)  # warm-up
    clock.seconds = 0.0
    batched = run_rollout(_episodes(conversations), policy, sim, cfg, seed=1).stats
    forward_s = clock.seconds
    start = time.perf_counter()
    for ep in _episodes(conversations):
        run_rollout([ep], policy, sim, cfg, seed=1)
    sequential_s = time.perf_counter() - start
    return {
        "conversations": conversations, "turns": turns, "max_tokens": max_tokens,
        "lockstep_conv_per_s": conversations / batched.total_s,
        "sequential_conv_per_s": conversations / sequential_s,
        "speedup": sequential_s / batched.total_s,
        "lockstep_s": batched.total_s, "sequential_s": sequential_s,
        "policy_generate_share": batched.policy_s / batched.total_s,
        "simulator_share": batched.simulator_s / batched.total_s,
        "rollout_overhead_share": batched.other_s / batched.total_s,
        "outside_forward_share": 1 - (forward_s + batched.simulator_s) / batched.total_s,
        "generated_tokens": batched.generated_tokens,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=32, help="conversations per mode")
    parser.add_argument("--turns", type=int, default=3, help="assistant turns per conversation")
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens per assistant turn")
    parser.add_argument("--hidden", type=int, default=256, help="hidden size of the tiny model "
                        "(2 layers; 64 makes Python dispatch dominate every forward pass)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    figures = run(args.conversations, args.turns, args.max_tokens, args.hidden)
    print(f"lockstep:   {figures['lockstep_conv_per_s']:.2f} conversations/s "
          f"({figures['lockstep_s']:.2f} s)")
    print(f"sequential: {figures['sequential_conv_per_s']:.2f} conversations/s "
          f"({figures['sequential_s']:.2f} s)")
    print(f"speedup:    {figures['speedup']:.1f}x (target >= 5x)")
    print(f"lockstep wall time: policy generate {figures['policy_generate_share']:.1%}, "
          f"simulator {figures['simulator_share']:.1%}, rollout overhead "
          f"{figures['rollout_overhead_share']:.1%} (target <= 10%)")
    print(f"outside model forward passes (incl. the decoding loop): "
          f"{figures['outside_forward_share']:.1%}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
