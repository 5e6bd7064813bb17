"""Test helpers for the arena tests: a study config on two scripted assistants served by a
loopback OpenAI-compatible server, the app on a fresh database, and a scripted participant that
walks the whole flow over HTTP (TestClient or a real server through httpx).

The assistants' replies name the model and echo the last user message, so a test can tell from
the database which assistant's reply was shown where; `XSS_REPLY` models output a script tag and
an onerror attribute.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from arena.config import StudyConfig
from arena.tempdb import PG_BIN, PostgresServer, free_port

XSS = '<script>alert("x")</script><img src=x onerror="alert(1)">'


def scripted_reply(body: dict[str, Any]) -> str:
    """'<model> says: <last user message>' (the xss model adds the payload)."""
    last = body["messages"][-1]["content"]
    extra = XSS if body["model"] == "xss-model" else ""
    return f"{body['model']} says: {last}{extra}"


def study_config(server, db_url: str, **overrides: Any) -> StudyConfig:
    """Two assistants (zeta-alpha, zeta-beta) on the scripted server; small limits."""
    values = dict(study_id="test-study",
                  assistants={"zeta-alpha": server.spec("zeta-alpha"),
                              "zeta-beta": server.spec("zeta-beta")},
                  seed=7, min_exchanges=2, max_exchanges=3, practice_exchanges=1,
                  completion_code="CODE-1234", db_url=db_url, generation_attempts=2,
                  generation_timeout=10.0, rate_limit_per_minute=1000,
                  max_sessions_per_participant=1)
    values.update(overrides)
    return StudyConfig(**values)


def csrf_of(html: str) -> str:
    """The CSRF token of a page's forms."""
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def pending_turn_id(html: str) -> int:
    """The id of the turn awaiting a vote on a chat page."""
    return int(re.search(r'name="turn_id" value="(\d+)"', html).group(1))


class Participant:
    """Walks the flow over HTTP with `client` (anything with .get/.post like httpx.Client)."""

    def __init__(self, client, external_id: str | None = None):
        self.client = client
        r = client.get("/start", params={"PROLIFIC_PID": external_id} if external_id else None,
                       follow_redirects=True)
        r.raise_for_status()
        self.token = str(r.url).split("/p/")[1].split("/")[0]
        self.html = r.text

    def post(self, path: str, **data: Any):
        data.setdefault("csrf", csrf_of(self.html))
        r = self.client.post(f"/p/{self.token}/{path}", data=data, follow_redirects=True)
        r.raise_for_status()
        self.html = r.text
        return r

    def exchange(self, text: str, choice: str, rationale: str = "") -> int:
        """Send a message and vote on the two replies; returns the voted turn's id."""
        self.post("message", text=text)
        turn = pending_turn_id(self.html)
        self.post("vote", turn_id=turn, choice=choice, rationale=rationale)
        return turn

    def complete(self, choices=("left", "right", "tie"), final: str = "left",
                 practice: bool = True) -> None:
        """Consent, instructions, practice, the study turns, the final preference."""
        self.post("consent")
        self.post("instructions")
        if practice:
            self.exchange("practice question", "left")
        for i, choice in enumerate(choices):
            self.exchange(f"question {i}", choice, rationale=f"reason {i}")
        if 'id="finish"' in self.html:
            self.post("finish")
        self.post("final", choice=final, rationale="overall")


# --- real servers: PostgreSQL in a temporary folder, the study app under uvicorn -------------

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def postgres_server():
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN} (run `make system-deps`)")
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """Each database test runs on SQLite (WAL, a file) and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/arena.db"
    return request.getfixturevalue("postgres_server").new_database()


class StudyServer:
    """`python -m wildsim arena serve --config FILE` in a subprocess on a free port."""

    def __init__(self, cfg: StudyConfig, folder: Path, env: dict[str, str] | None = None):
        from foundation.config import save_config
        self.config_path = save_config(cfg, folder / "study.yaml")
        self.port = free_port()
        self.env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        self.log = open(folder / "server.log", "ab")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "StudyServer":
        import httpx
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wildsim", "arena", "serve", "--config", str(self.config_path),
             "--port", str(self.port)], cwd=REPO, env=self.env, stdout=self.log,
            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the study server exited with {self.proc.returncode}; see "
                                   f"{self.log.name}")
            try:
                if httpx.get(self.url + "/", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the study server did not answer within 60 s")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
