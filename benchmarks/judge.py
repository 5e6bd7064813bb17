"""Judging throughput through the HTTP chat engine against a loopback server with a fixed latency.

A local OpenAI-compatible server (its own process: one asyncio event loop speaking HTTP/1.1
keep-alive) answers every /v1/chat/completions request `--latency` seconds after it has read
it, with `asyncio.sleep`, so any number of requests wait at once without a thread each. For each
concurrency level the engine sends `--requests-per-worker × concurrency` judge-sized requests in
one `chat` call and the script prints requests/s next to the ideal (concurrency / latency) and
their ratio, which measures the client's overhead: worker threads, HTTP, JSON and endpoint
balancing. `--cached` sends them through the on-disk judge cache, as WildBench judges are.
`--latency 0` measures the ceiling instead: how many requests/s client and server manage
together on this machine with no waiting at all. The load average is printed with the figures,
since the server and the client share the machine's cores. The run is bounded and stops by
itself.

Run:  .venv/bin/python benchmarks/judge.py [--latency 0.05] [--concurrency 1 8 32] [--repeat 3]
                                          [--cached]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from corpora.types import Message
from engines.base import Sampling
from engines.cache import CachedChatEngine
from engines.http import OpenAIChatEngine

VERDICT = '{"score": 7, "reason": "clear and correct"}'
REPLY = json.dumps({"choices": [{"message": {"role": "assistant", "content": VERDICT}}]}).encode()
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(REPLY)).encode() + b"\r\n\r\n" + REPLY)
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


def _serve(port_queue: "multiprocessing.Queue[int]", latency: float) -> None:
    """Server process: answer every POST `latency` seconds after reading it, forever (the parent
    terminates it). One coroutine per connection; requests on a connection are answered in turn."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = CONTENT_LENGTH.search(head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                await asyncio.sleep(latency)
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # the client closed the connection
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(connection, "127.0.0.1", 0, backlog=256)
        port_queue.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def measure(url: str, concurrency: int, n_requests: int, repeat: int, cache_dir: str | None
            ) -> list[float]:
    """Seconds to answer n_requests judge prompts at the given concurrency, `repeat` times, with
    one engine (its connections opened by a warm-up call first). With `cache_dir`, the requests
    go through a CachedChatEngine as WildBench judges' do (a fresh cache file per run, so every
    request is a miss and its answer is appended to the file)."""
    engine = OpenAIChatEngine(url, "judge", max_concurrency=concurrency, timeout=10.0, max_retries=2)
    prompt = "Rate the assistant's answer from 1 to 10 and explain briefly. " * 20
    convs = [[Message("system", "You are a strict judge."), Message("user", f"{prompt} #{i}")]
             for i in range(n_requests)]
    sampling = Sampling(temperature=0.0, max_tokens=64)
    engine.chat(convs[:concurrency], sampling)  # open connections, start worker threads
    times = []
    for run in range(repeat):
        judge: Any = engine
        if cache_dir is not None:
            judge = CachedChatEngine(engine, Path(cache_dir) / f"judge-c{concurrency}-{run}.jsonl",
                                     key_prefix=f"bench|{run}", batch_size=64)
        start = time.perf_counter()
        replies = judge.chat(convs, sampling)
        times.append(time.perf_counter() - start)
        assert len(replies) == n_requests
    engine.close()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.05,
                        help="server latency per request (s); 0 measures the ceiling")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32],
                        help="client concurrency levels to measure")
    parser.add_argument("--requests-per-worker", type=int, default=20,
                        help="requests per concurrency slot at each level (bounds the run)")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per concurrency level")
    parser.add_argument("--cached", action="store_true",
                        help="send through the on-disk judge cache (CachedChatEngine, batches of "
                        "64) as `wildsim eval wildbench` does")
    args = parser.parse_args(argv)

    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(queue, args.latency), daemon=True)
    server.start()
    cache_dir = tempfile.TemporaryDirectory(prefix="judge-bench-") if args.cached else None
    try:
        url = f"http://127.0.0.1:{queue.get(timeout=30)}/v1"
        print(f"latency {args.latency * 1000:.0f} ms per request, loopback server at {url}, "
              f"{os.cpu_count()} CPUs" + (", through the judge cache" if args.cached else ""))
        print(f"{'concurrency':>11} {'requests':>8} {'seconds':>8} {'req/s':>8} {'ideal':>8} "
              f"{'ratio':>6}   load average (1, 5, 15 min)")
        for c in args.concurrency:
            n = c * args.requests_per_worker
            for seconds in measure(url, c, n, args.repeat, cache_dir and cache_dir.name):
                rate = n / seconds
                ideal = f"{c / args.latency:>8.1f}" if args.latency > 0 else f"{'-':>8}"
                ratio = f"{rate * args.latency / c:>6.1%}" if args.latency > 0 else f"{'-':>6}"
                load = " ".join(f"{x:.2f}" for x in os.getloadavg())
                print(f"{c:>11} {n:>8} {seconds:>8.2f} {rate:>8.1f} {ideal} {ratio}   {load}")
    finally:
        server.terminate()
        server.join(5)
        if cache_dir is not None:
            cache_dir.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
