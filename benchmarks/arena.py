"""Benchmark: vote-submission latency and throughput of the study server under 50 participants.

    .venv/bin/python benchmarks/arena.py                        # SQLite and PostgreSQL
    .venv/bin/python benchmarks/arena.py --backends sqlite --participants 50 --turns 5

For each backend: `wildsim arena serve` (one uvicorn worker) in its own process on a fresh
database (SQLite WAL in a temporary folder, or a throwaway PostgreSQL server from
arena/tempdb.py); two instant assistants on a loopback OpenAI-compatible server; `--participants`
scripted participants run at once, each through consent, instructions and `--turns` study turns
(message, then vote). Only the vote POSTs are timed (the POST alone, its 303 not followed: the
time to validate, commit and answer). Prints p50/p95/p99 vote latency, votes per second over the
whole run (messages, page loads and all) and checks that no vote was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from arena.config import StudyConfig  # noqa: E402
from arena.tempdb import PostgresServer, free_port  # noqa: E402
from foundation.config import save_config  # noqa: E402


class InstantAssistant(BaseHTTPRequestHandler):
    """Answers every chat completion at once."""

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        data = json.dumps({"choices": [{"message": {"role": "assistant",
                                                    "content": f"{body['model']}: ok"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def participant(url: str, turns: int) -> list[float]:
    """One scripted participant; returns the latency (s) of each vote POST."""
    import re
    latencies = []
    with httpx.Client(base_url=url, timeout=120) as c:
        r = c.get("/start", follow_redirects=True)
        token = str(r.url).split("/p/")[1].split("/")[0]
        csrf = re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)
        for step in ("consent", "instructions"):
            c.post(f"/p/{token}/{step}", data={"csrf": csrf}, follow_redirects=True)
        for i in range(turns):
            r = c.post(f"/p/{token}/message", data={"csrf": csrf, "text": f"message {i}"},
                       follow_redirects=True)
            turn = re.search(r'name="turn_id" value="(\d+)"', r.text).group(1)
            t0 = time.perf_counter()
            r = c.post(f"/p/{token}/vote", data={"csrf": csrf, "turn_id": turn,
                                                 "choice": "left", "rationale": "fine"})
            latencies.append(time.perf_counter() - t0)
            assert r.status_code == 303, r.text[:300]
            c.get(r.headers["location"])
    return latencies


def run(backend: str, db_url: str, participants: int, turns: int, folder: Path,
        assistants_url: str) -> dict:
    cfg = StudyConfig(study_id=f"bench-{backend}",
                      assistants={"a": f"openai:{assistants_url}#a", "b": f"openai:{assistants_url}#b"},
                      practice_exchanges=0, min_exchanges=turns, max_exchanges=turns + 1,
                      db_url=db_url, rate_limit_per_minute=10_000)
    port = free_port()
    log = open(folder / f"server-{backend}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "wildsim", "arena", "serve", "--config",
                             str(save_config(cfg, folder / f"{backend}.yaml")), "--port", str(port)],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(participants) as pool:
            results = list(pool.map(lambda _: participant(url, turns), range(participants)))
        wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(30)
    lat = sorted(x for r in results for x in r)
    q = statistics.quantiles(lat, n=100, method="inclusive")
    from sqlalchemy import create_engine, text
    with create_engine(db_url).connect() as conn:
        stored = conn.execute(text("select count(*) from votes")).scalar()
    return {"backend": backend, "votes": len(lat), "stored": stored, "p50_ms": 1000 * q[49],
            "p95_ms": 1000 * q[94], "p99_ms": 1000 * q[98], "wall_s": wall,
            "votes_per_s": len(lat) / wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="sqlite,postgres", help="sqlite and/or postgres")
    p.add_argument("--participants", type=int, default=50, help="participants at once (50)")
    p.add_argument("--turns", type=int, default=5, help="study turns per participant (5)")
    args = p.parse_args()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), InstantAssistant)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    assistants_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    folder = Path(tempfile.mkdtemp(prefix="arena-bench-"))
    print(f"{args.participants} participants x {args.turns} turns, one uvicorn worker, "
          f"{os.cpu_count()} CPUs")
    for backend in args.backends.split(","):
        pg = PostgresServer() if backend == "postgres" else None
        try:
            url = pg.new_database() if pg else f"sqlite:///{folder}/bench.db"
            r = run(backend, url, args.participants, args.turns, folder, assistants_url)
        finally:
            if pg:
                pg.stop()
        print(f"{r['backend']:9s} votes {r['votes']} (stored {r['stored']}, lost "
              f"{r['votes'] - r['stored']})  vote latency p50 {r['p50_ms']:.1f} ms  p95 "
              f"{r['p95_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  throughput {r['votes_per_s']:.1f} "
              f"votes/s ({r['wall_s']:.1f} s)", flush=True)
    httpd.shutdown()


if __name__ == "__main__":
    main()
