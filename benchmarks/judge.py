"""Judging throughput through the HTTP chat engine against a loopback server with a fixed latency.

A local OpenAI-compatible server (its own process, HTTP/1.1 keep-alive) answers every
/v1/chat/completions request after sleeping `--latency` seconds. For each concurrency level the
engine sends `--requests-per-worker × concurrency` judge-sized requests in one `chat` call and the
script prints requests/s next to the ideal (concurrency / latency) and their ratio, which measures
the client's overhead: the thread pool, httpx, JSON and the endpoint balancing. The run is bounded
and stops by itself.

Run:  .venv/bin/python benchmarks/judge.py [--latency 0.05] [--concurrency 1 8 32]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from corpora.types import Message
from engines.base import Sampling
from engines.http import OpenAIChatEngine

REPLY = json.dumps({"choices": [{"message": {"role": "assistant",
                                             "content": '{"score": 7, "reason": "clear and correct"}'}}]}).encode()


def _serve(port_queue: "multiprocessing.Queue[int]", latency: float) -> None:
    """Server process: answer every POST after `latency` seconds, forever (killed by the parent)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(latency)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(REPLY)))
            self.end_headers()
            self.wfile.write(REPLY)

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(httpd.server_address[1])
    httpd.serve_forever()


def measure(url: str, concurrency: int, n_requests: int) -> float:
    """Seconds to answer n_requests judge prompts at the given concurrency (after a warm-up)."""
    engine = OpenAIChatEngine(url, "judge", max_concurrency=concurrency, timeout=10.0, max_retries=2)
    prompt = "Rate the assistant's answer from 1 to 10 and explain briefly. " * 20
    convs = [[Message("system", "You are a strict judge."), Message("user", f"{prompt} #{i}")]
             for i in range(n_requests)]
    engine.chat(convs[:concurrency], Sampling(temperature=0.0, max_tokens=64))  # open connections
    start = time.perf_counter()
    replies = engine.chat(convs, Sampling(temperature=0.0, max_tokens=64))
    elapsed = time.perf_counter() - start
    engine.close()
    assert len(replies) == n_requests
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.05, help="server latency per request (s)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32],
                        help="client concurrency levels to measure")
    parser.add_argument("--requests-per-worker", type=int, default=15,
                        help="requests per concurrency slot at each level (bounds the run)")
    args = parser.parse_args(argv)

    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(queue, args.latency), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{queue.get(timeout=30)}/v1"
        print(f"latency {args.latency * 1000:.0f} ms per request, loopback server at {url}")
        print(f"{'concurrency':>11} {'requests':>8} {'seconds':>8} {'req/s':>8} {'ideal':>8} {'ratio':>6}")
        for c in args.concurrency:
            n = c * args.requests_per_worker
            seconds = measure(url, c, n)
            rate, ideal = n / seconds, c / args.latency
            print(f"{c:>11} {n:>8} {seconds:>8.2f} {rate:>8.1f} {ideal:>8.1f} {rate / ideal:>6.1%}")
    finally:
        server.terminate()
        server.join(5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
