"""A real kill: `wildsim eval wildbench` is SIGKILLed half-way through judging and run again.

Both models and the judge are served by an OpenAI-compatible server on loopback (threads in
this process) that records every request body it answers. The evaluation runs as a subprocess
(`python -m wildsim eval wildbench`) on the bundled WildBench sample, reward mode, both orders.

What "killed half-way" means here: the server answers the first ANSWERED_BEFORE_KILL judge
requests, then holds every later request open without answering it. The test waits until the
process has written those answers to its judge cache (OUT/cache/judge.jsonl; at most
RECORD_WAIT_S, after which it kills anyway and the assertions say what was lost), then sends
SIGKILL. So at the kill no request is in flight in the sense that matters: every request the
server answered had been received by the client, and the held ones were never answered. A held
request may therefore be sent again by the rerun; an answered one must never be.

Checked: (a) the answered request bodies of the killed run and the rerun together are exactly
(as a multiset) those of one uninterrupted run in a fresh folder: no generation or judge prompt
is sent twice once answered, none is missing; (b) the rerun's wildbench.json and judge cache hold
the same results as the uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.eval_fixtures import ScriptedChatServer

REPO = Path(__file__).resolve().parents[1]
N_TASKS = 5                # 5 tasks x 2 orders = 10 judge requests, all in one cached batch
ANSWERED_BEFORE_KILL = 4
RECORD_WAIT_S = 10.0
LABELS = ("A++", "A+", "A=B", "B+", "B++")


class RecordingServer(ScriptedChatServer):
    """/v1/chat/completions for the models "model-a", "model-b" and "judge", answered
    deterministically from the request itself; `bodies` lists every body it answered in full.
    With `hold_after = n`, judge requests after the n-th (and every request after them) are held
    open unanswered until `release` is set."""

    def __init__(self) -> None:
        super().__init__(_reply)
        self.bodies: list[dict[str, Any]] = []
        self.held: list[dict[str, Any]] = []
        self.hold_after: int | None = None
        self.judge_started = 0
        self.release = threading.Event()

    def judge_answered(self) -> int:
        with self.lock:
            return sum(b["model"] == "judge" for b in self.bodies)

    def hold(self, body: dict[str, Any]) -> bool:
        """Whether to hold this request (decided once per request, under the lock); a held
        request waits for `release` and is never answered."""
        with self.lock:
            if self.hold_after is None:
                return False
            if self.held or (body["model"] == "judge" and self.judge_started >= self.hold_after):
                self.held.append(body)
                held = True
            else:
                self.judge_started += body["model"] == "judge"
                held = False
        if held:
            self.release.wait(60)
        return held

    def answered(self, body: dict[str, Any]) -> None:
        with self.lock:
            self.bodies.append(body)


def _reply(body: dict[str, Any]) -> str:
    """Model answers name the model and the query; the judge's choice is a hash of its prompt."""
    prompt = body["messages"][-1]["content"]
    if body["model"] != "judge":
        return f"{body['model']} answers: {prompt[:60]}"
    label = LABELS[hashlib.sha256(prompt.encode()).digest()[0] % len(LABELS)]
    return json.dumps({"analysis_a": "-", "analysis_b": "-", "reasons": "-", "choice": label})


@pytest.fixture()
def server():
    srv = RecordingServer()
    srv.thread.start()
    yield srv
    srv.release.set()
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _command(server: RecordingServer, out: Path) -> list[str]:
    return [sys.executable, "-m", "wildsim", "eval", "wildbench",
            "--model-a", server.spec("model-a"), "--model-b", server.spec("model-b"),
            "--judge", server.spec("judge"), "--mode", "reward", "--data", "sample",
            "--limit", str(N_TASKS), "--n-boot", "200", "--out", str(out)]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return dict(env, HF_HUB_OFFLINE="1", TRL_EXPERIMENTAL_SILENCE="1")


def _run_to_end(server: RecordingServer, out: Path) -> list[dict[str, Any]]:
    """Run the evaluation to completion; the bodies the server answered during it."""
    before = len(server.bodies)
    proc = subprocess.run(_command(server, out), cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return server.bodies[before:]


def _cache_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _run_and_kill(server: RecordingServer, out: Path) -> list[dict[str, Any]]:
    """Start the evaluation, let the server answer ANSWERED_BEFORE_KILL judge requests and hold the
    rest, wait for those answers to reach the judge cache, SIGKILL; the bodies answered."""
    server.hold_after = ANSWERED_BEFORE_KILL
    log = out.parent / f"{out.name}.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(_command(server, out), cwd=REPO, env=_env(),
                                stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 90
        while server.judge_answered() < ANSWERED_BEFORE_KILL or not server.held:
            assert proc.poll() is None, f"the run ended before the kill: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the judge requests never came"
            time.sleep(0.02)
        recorded = time.monotonic() + RECORD_WAIT_S
        cache = out / "cache" / "judge.jsonl"
        while _cache_lines(cache) < ANSWERED_BEFORE_KILL and time.monotonic() < recorded:
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    with server.lock:
        answered = list(server.bodies)
        server.hold_after, server.judge_started = None, 0
        server.held.clear()
    server.release.set()  # the held handlers give up (their client is gone)
    return answered


def _comparable(out: Path) -> dict[str, Any]:
    """wildbench.json without what names the folder or counts cache hits."""
    result = json.loads((out / "wildbench.json").read_text())
    result.pop("command")
    result.pop("judge_calls")
    result["config"].pop("out")
    return result


def _key(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True)


def test_killed_run_resumes_without_repeating_an_answered_request(server, tmp_path):
    killed_out, fresh_out = tmp_path / "killed", tmp_path / "fresh"
    first = _run_and_kill(server, killed_out)
    assert not (killed_out / "wildbench.json").exists()
    assert sum(b["model"] == "judge" for b in first) == ANSWERED_BEFORE_KILL
    assert _cache_lines(killed_out / "cache" / "judge.jsonl") == ANSWERED_BEFORE_KILL, \
        "answers the client had received were not in its judge cache when it was killed"
    second = _run_to_end(server, killed_out)
    fresh = _run_to_end(server, fresh_out)

    # (a) across the kill, every request was answered exactly as often as in one clean run
    resumed = Counter(_key(b) for b in first + second)
    assert resumed == Counter(_key(b) for b in fresh)
    assert max(resumed.values()) == 1  # and no prompt twice
    assert Counter(b["model"] for b in fresh) == {"model-a": N_TASKS, "model-b": N_TASKS,
                                                 "judge": 2 * N_TASKS}
    assert {b["model"] for b in second} == {"judge"}  # all generations came from the cache

    # (b) the resumed run's results and cache are those of the uninterrupted run
    assert _comparable(killed_out) == _comparable(fresh_out)
    for name in ("generations.jsonl", "judge.jsonl"):
        resumed_lines = (killed_out / "cache" / name).read_text().splitlines()
        fresh_lines = (fresh_out / "cache" / name).read_text().splitlines()
        assert sorted(resumed_lines) == sorted(fresh_lines)
    judge_calls = json.loads((killed_out / "wildbench.json").read_text())["judge_calls"]
    assert judge_calls[server.spec("judge")] == {"cached": ANSWERED_BEFORE_KILL,
                                                 "new": 2 * N_TASKS - ANSWERED_BEFORE_KILL}
