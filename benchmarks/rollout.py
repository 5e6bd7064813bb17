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

Overlap mode (`--mode overlap`): the simulator and the judge (rewards.judge.JudgeReward) are
OpenAI-compatible servers on loopback that answer each request after a fixed latency plus a cost
per completion token (`--latency-ms`, `--judge-latency-ms`, `--per-token-ms`; requests are served
concurrently, as a batching server does); the policy is local (the tiny model). It plays the same
conversations lockstep (rewards scored after the rollout) and overlapped (`--waves`; groups
scored as they end) and prints the wall time of each and of each engine alone — the policy's
calls, the simulator's calls and the judge's scoring, each timed inside the lockstep run where
nothing overlaps — and the ratio overlapped / max(engine alone) (target <= 1.15).
    python benchmarks/rollout.py --mode overlap [--conversations 16 --turns 3 --waves 4]
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


class _ServedModel:
    """A loopback OpenAI-compatible /chat/completions server replying `reply` after
    latency + per_token x (reply's whitespace tokens) seconds; requests run concurrently."""

    def __init__(self, reply: str, latency: float, per_token: float):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        import threading

        body = json.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": reply}}],
                           "usage": {"completion_tokens": len(reply.split())}}).encode()
        delay = latency + per_token * len(reply.split())

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ServedSimulator:
    """A user simulator whose every reply comes from a served model (asks for more, never ends)."""

    name = "served"

    def __init__(self, engine):
        self.engine = engine

    def open(self, episodes):
        return [ep.task.opening for ep in episodes]

    def reply(self, episodes):
        from engines.base import Sampling

        texts = self.engine.chat([ep.messages for ep in episodes], Sampling(max_tokens=64))
        return [UserTurn(t, False) for t in texts]


def run_overlap(conversations: int, turns: int, max_tokens: int, hidden: int, waves: int,
                latency: float, judge_latency: float, per_token: float) -> dict[str, float]:
    """Lockstep vs overlapped wall time with served simulator and judge (see the docstring)."""
    from engines.hf import HFEngine, load_hf
    from engines.http import OpenAIChatEngine
    from engines.tiny import build_tiny_model
    from rewards.judge import JudgeReward

    with tempfile.TemporaryDirectory() as tmp:
        model, tok = load_hf(str(build_tiny_model(Path(tmp), hidden=hidden)), dtype="float32",
                             device="cpu")
    engine = HFEngine(model, tok, batch_size=conversations)
    sim_server = _ServedModel("ok, and can you make it shorter and explain the second part "
                              "again please", latency, per_token)
    judge_server = _ServedModel(json.dumps({"rationale": "answers the question", "score": 7}),
                                judge_latency, per_token)
    try:
        sim = ServedSimulator(OpenAIChatEngine(sim_server.url, "sim", max_concurrency=64))
        judge = JudgeReward([OpenAIChatEngine(judge_server.url, "judge", max_concurrency=64)])
        out: dict[str, float] = {}
        for schedule in ("lockstep", "overlapped", "lockstep", "overlapped"):  # warm-up, then timed
            cfg = RolloutConfig(max_turns=turns, max_tokens=max_tokens, max_total_tokens=8192,
                                temperature=1.0, schedule=schedule, waves=waves)
            stats = run_rollout(_episodes(conversations), make_policy(engine), sim, cfg, seed=1,
                                reward=judge).stats
            out[f"{schedule}_s"] = stats.total_s
            if schedule == "overlapped":
                out["overlapped_policy_s"] = stats.policy_s
            if schedule == "lockstep":
                out.update(policy_alone_s=stats.policy_s, simulator_alone_s=stats.simulator_s,
                           judge_alone_s=stats.reward_s)
    finally:
        sim_server.close()
        judge_server.close()
    slowest = max(out["policy_alone_s"], out["simulator_alone_s"], out["judge_alone_s"])
    out["ratio"] = out["overlapped_s"] / slowest
    out["speedup"] = out["lockstep_s"] / out["overlapped_s"]
    return out


def _print_overlap(f: dict[str, float], args) -> None:
    print(f"{args.conversations} conversations x {args.turns} turns, {args.waves} waves; served "
          f"simulator {args.latency_ms:.0f} ms + judge {args.judge_latency_ms:.0f} ms per request, "
          f"+{args.per_token_ms:.0f} ms per token")
    print(f"alone:      policy {f['policy_alone_s']:.2f} s, simulator {f['simulator_alone_s']:.2f} s, "
          f"judge {f['judge_alone_s']:.2f} s")
    print(f"lockstep:   {f['lockstep_s']:.2f} s")
    print(f"overlapped: {f['overlapped_s']:.2f} s ({f['speedup']:.2f}x faster than lockstep; its "
          f"policy calls took {f['overlapped_policy_s']:.2f} s in smaller batches)")
    print(f"overlapped / max(engine alone) = {f['ratio']:.3f} (target <= 1.15)")


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
    parser.add_argument("--mode", choices=["batching", "overlap"], default="batching",
                        help="batching: lockstep vs one at a time; overlap: lockstep vs "
                        "overlapped with served simulator and judge")
    parser.add_argument("--waves", type=int, default=4, help="overlap mode: waves")
    parser.add_argument("--latency-ms", type=float, default=300, help="overlap mode: simulator "
                        "server latency per request")
    parser.add_argument("--judge-latency-ms", type=float, default=150,
                        help="overlap mode: judge server latency per request")
    parser.add_argument("--per-token-ms", type=float, default=5, help="overlap mode: server "
                        "cost per completion token")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.mode == "overlap":
        figures = run_overlap(args.conversations, args.turns, args.max_tokens, args.hidden,
                              args.waves, args.latency_ms / 1000, args.judge_latency_ms / 1000,
                              args.per_token_ms / 1000)
        _print_overlap(figures, args)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=1))
        return 0
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
