"""Benchmark: vote-submission latency and throughput of the study server under 50 participants.

    .venv/bin/python benchmarks/arena.py                        # SQLite and PostgreSQL, no pause
    .venv/bin/python benchmarks/arena.py --think-ms 3000        # participants who read and think
    .venv/bin/python benchmarks/arena.py --backends postgres --workers 2
    .venv/bin/python benchmarks/arena.py --backends sqlite --participants 50 --turns 5

For each backend: `wildsim arena serve` (`--workers` uvicorn workers) in its own process on a
fresh database (SQLite WAL in a temporary folder, or a throwaway PostgreSQL server from
arena/tempdb.py); two instant assistants on a loopback OpenAI-compatible server; `--participants`
scripted participants run at once, each through consent, instructions and `--turns` study turns
(message, then vote), pages followed as a browser does.

`--think-ms 0` (the default) is a saturation test: every participant posts again the moment its
page arrives, so the figures are the server's top throughput and latency is mostly queueing.
`--think-ms T` pauses before every form post for a seeded random time, uniform in [T/2, 3T/2]
(participants also arrive spread over the first T): the latency at that pace. Real people read
two replies and choose: tens of seconds, far slower than any T used here.

Only the vote POSTs are timed (the POST alone, its 303 not followed: the time to check, commit
and answer). Prints p50/p95/p99 vote latency, votes per second over the whole run (messages,
page loads and all), the CPU time per vote of the server (all its processes, from /proc: a
figure less sensitive to other jobs on a shared machine than the latency) and of the rest (this
process: the scripted participants and the assistants, which compete for the same CPUs;
PostgreSQL's own processes are not counted), the load average before the run, and checks that
no vote was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
    """Answers every chat completion at once (keeping the connection open, as vLLM does)."""

    protocol_version = "HTTP/1.1"

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


def participant(url: str, turns: int, think_ms: float = 0.0, seed: int = 0) -> list[float]:
    """One scripted participant; returns the latency (s) of each vote POST. With `think_ms`,
    a seeded pause uniform in [think_ms/2, 3 think_ms/2] before every form post."""
    import re
    rng = random.Random(seed)

    def think() -> None:
        if think_ms > 0:
            time.sleep(rng.uniform(0.5, 1.5) * think_ms / 1000)

    latencies = []
    if think_ms > 0:
        time.sleep(rng.uniform(0, think_ms) / 1000)  # arrivals spread out
    with httpx.Client(base_url=url, timeout=120) as c:
        r = c.get("/start", follow_redirects=True)
        token = str(r.url).split("/p/")[1].split("/")[0]
        csrf = re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)
        for step in ("consent", "instructions"):
            think()
            c.post(f"/p/{token}/{step}", data={"csrf": csrf}, follow_redirects=True)
        for i in range(turns):
            think()
            r = c.post(f"/p/{token}/message", data={"csrf": csrf, "text": f"message {i}"},
                       follow_redirects=True)
            turn = re.search(r'name="turn_id" value="(\d+)"', r.text).group(1)
            think()
            t0 = time.perf_counter()
            r = c.post(f"/p/{token}/vote", data={"csrf": csrf, "turn_id": turn,
                                                 "choice": "left", "rationale": "fine"})
            latencies.append(time.perf_counter() - t0)
            assert r.status_code == 303, r.text[:300]
            c.get(r.headers["location"])
    return latencies


def process_tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` and its live descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, (0, 0.0))[1]
        todo += [c for c, (ppid, _) in stats.items() if ppid == p]
    return total


def run(backend: str, db_url: str, participants: int, turns: int, folder: Path,
        assistants_url: str, workers: int = 1, think_ms: float = 0.0, seed: int = 0) -> dict:
    cfg = StudyConfig(study_id=f"bench-{backend}",
                      assistants={"a": f"openai:{assistants_url}#a", "b": f"openai:{assistants_url}#b"},
                      practice_exchanges=0, min_exchanges=turns, max_exchanges=turns + 1,
                      db_url=db_url, rate_limit_per_minute=10_000)
    port = free_port()
    log = open(folder / f"server-{backend}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "wildsim", "arena", "serve", "--config",
                             str(save_config(cfg, folder / f"{backend}.yaml")), "--port", str(port),
                             "--workers", str(workers)],
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
        for _ in range(10 * workers):  # every worker up (each answers its first page)
            httpx.get(url + "/", timeout=30)
        load = os.getloadavg()[0]
        cpu0, mine0 = process_tree_cpu_s(proc.pid), process_tree_cpu_s(os.getpid())
        t0 = time.perf_counter()
        with ThreadPoolExecutor(participants) as pool:
            results = list(pool.map(lambda i: participant(url, turns, think_ms, seed * 1000 + i),
                                    range(participants)))
        wall = time.perf_counter() - t0
        cpu = process_tree_cpu_s(proc.pid) - cpu0
        mine = process_tree_cpu_s(os.getpid()) - mine0 - cpu  # participants and assistants
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
            "votes_per_s": len(lat) / wall, "cpu_ms_per_vote": 1000 * cpu / len(lat),
            "client_cpu_ms_per_vote": 1000 * mine / len(lat),
            "load": load}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="sqlite,postgres", help="sqlite and/or postgres")
    p.add_argument("--participants", type=int, default=50, help="participants at once (50)")
    p.add_argument("--turns", type=int, default=5, help="study turns per participant (5)")
    p.add_argument("--think-ms", type=float, default=0.0,
                   help="mean pause before each form post, ms (0: none, a saturation test)")
    p.add_argument("--workers", type=int, default=1,
                   help="uvicorn workers (1; more need PostgreSQL: SQLite backends are skipped)")
    p.add_argument("--seed", type=int, default=0, help="seed of the pauses (0)")
    args = p.parse_args()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), InstantAssistant)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    assistants_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    folder = Path(tempfile.mkdtemp(prefix="arena-bench-"))
    print(f"{args.participants} participants x {args.turns} turns, {args.workers} uvicorn "
          f"worker(s), think {args.think_ms:g} ms, {os.cpu_count()} CPUs")
    for backend in args.backends.split(","):
        if backend == "sqlite" and args.workers > 1:
            print("sqlite    skipped: several workers need PostgreSQL (wildsim arena serve)")
            continue
        pg = PostgresServer() if backend == "postgres" else None
        try:
            url = pg.new_database() if pg else f"sqlite:///{folder}/bench-{args.think_ms:g}.db"
            r = run(backend, url, args.participants, args.turns, folder, assistants_url,
                    args.workers, args.think_ms, args.seed)
        finally:
            if pg:
                pg.stop()
        print(f"{r['backend']:9s} votes {r['votes']} (stored {r['stored']}, lost "
              f"{r['votes'] - r['stored']})  vote latency p50 {r['p50_ms']:.1f} ms  p95 "
              f"{r['p95_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  throughput {r['votes_per_s']:.1f} "
              f"votes/s ({r['wall_s']:.1f} s)  CPU per vote: server {r['cpu_ms_per_vote']:.0f} ms, "
              f"the rest {r['client_cpu_ms_per_vote']:.0f} ms  "
              f"load {r['load']:.2f}", flush=True)
    httpd.shutdown()


if __name__ == "__main__":
    main()
