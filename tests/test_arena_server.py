"""The study app as deployed: `wildsim arena serve` in its own process (uvicorn), on SQLite and
on a real PostgreSQL server. SIGKILL in the middle of a session loses no committed vote and the
link resumes; 50 participants at once lose and duplicate no vote. Two uvicorn workers on
PostgreSQL lose and duplicate nothing either, and the rate limit and the sessions-per-id limit
hold across them."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest
from sqlalchemy import func, select

from arena.db import open_database, session_factory
from arena.models import Participant, StudySession, Turn, Vote
from tests.arena_fixtures import Participant as Walker
from tests.arena_fixtures import (REPO, StudyServer, csrf_of, db_url,  # noqa: F401
                                  pending_turn_id, postgres_server, scripted_reply, study_config)
from tests.eval_fixtures import ScriptedChatServer

pytestmark = pytest.mark.slow


@pytest.fixture
def assistants():
    with ScriptedChatServer(scripted_reply) as srv:
        yield srv


def test_sigkill_mid_session_keeps_votes_and_the_link_resumes(assistants, db_url, tmp_path):
    cfg = study_config(assistants, db_url, max_exchanges=4, min_exchanges=3)
    server = StudyServer(cfg, tmp_path).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            w = Walker(client)
            w.post("consent")
            w.post("instructions")
            voted = [w.exchange("practice", "left")]
            voted += [w.exchange(f"q{i}", c) for i, c in enumerate(("left", "right"))]
            w.post("message", text="asked before the crash")
            pending = pending_turn_id(w.html)
            server.kill()
            with session_factory(open_database(db_url))() as s:
                assert sorted(s.scalars(select(Vote.turn_id))) == sorted(voted)
            server.start()
            r = client.get(f"/p/{w.token}", follow_redirects=True)
            assert r.url.path.endswith("/chat") and "asked before the crash" in r.text
            assert pending_turn_id(r.text) == pending and "Turns completed: 2" in r.text
            w.html = r.text
            w.post("vote", turn_id=pending, choice="tie")
            w.post("finish")
            w.post("final", choice="left")
            assert "CODE-1234" in w.html
    finally:
        server.stop()
    with session_factory(open_database(db_url))() as s:
        assert s.scalar(select(func.count()).select_from(Vote)) == 4
        assert s.scalar(select(Participant.stage)) == "done"


def _participant(url: str, index: int) -> str:
    with httpx.Client(base_url=url, timeout=120) as client:
        w = Walker(client, external_id=f"P{index}")
        w.complete(choices=("left", "right"), final="tie", practice=False)
        assert "CODE-1234" in w.html
        return w.token


def test_fifty_concurrent_participants_lose_and_duplicate_nothing(assistants, db_url, tmp_path):
    cfg = study_config(assistants, db_url, max_exchanges=2, min_exchanges=2,
                       practice_exchanges=0)
    server = StudyServer(cfg, tmp_path).start()
    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            tokens = list(pool.map(lambda i: _participant(server.url, i), range(50)))
    finally:
        server.stop()
    assert len(set(tokens)) == 50
    with session_factory(open_database(db_url))() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 50
        assert s.scalar(select(func.count()).select_from(Vote)) == 50 * 2
        assert s.scalar(select(func.count()).select_from(Turn)) == 50 * 2  # none unvoted
        for p in s.scalars(select(Participant)):
            assert p.stage == "done" and p.final_choice == "tie"
            (session,) = s.scalars(select(StudySession).where(
                StudySession.participant_id == p.id))
            study = session.turns
            assert session.kind == "study" and [t.index for t in study] == [0, 1]
            assert [t.user_text for t in study] == ["question 0", "question 1"]
            assert [t.vote.choice for t in study] == ["left", "right"]
            assert all(t.vote.participant_id == p.id for t in study)


class TwoWorkerServer(StudyServer):
    """`wildsim arena serve --workers 2`: two uvicorn worker processes behind one port."""

    def start(self) -> "TwoWorkerServer":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wildsim", "arena", "serve", "--config", str(self.config_path),
             "--port", str(self.port), "--workers", "2"], cwd=REPO, env=self.env,
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the server exited; see {self.log.name}"
            if len(self.workers()) == 2:
                try:
                    if httpx.get(self.url + "/", timeout=2).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        raise RuntimeError("the study server did not answer within 60 s")

    def workers(self) -> list:
        """The worker processes (uvicorn spawns them with multiprocessing)."""
        return [c for c in psutil.Process(self.proc.pid).children(recursive=True)
                if "spawn_main" in " ".join(c.cmdline())]


def _started(url: str, external_id: str) -> int:
    with httpx.Client(base_url=url, timeout=60) as client:
        return client.get("/start", params={"PROLIFIC_PID": external_id}).status_code


def _consent(url: str, token: str, csrf: str) -> int:
    with httpx.Client(base_url=url, timeout=60) as client:  # a new connection: any worker
        return client.post(f"/p/{token}/consent", data={"csrf": csrf}).status_code


@pytest.mark.postgres
def test_two_workers_on_postgresql_share_votes_and_limits(assistants, postgres_server, tmp_path):
    db_url = postgres_server.new_database()
    cfg = study_config(assistants, db_url, max_exchanges=2, min_exchanges=2,
                       practice_exchanges=0, rate_limit_per_minute=10,
                       max_sessions_per_participant=2)
    server = TwoWorkerServer(cfg, tmp_path).start()
    try:
        with ThreadPoolExecutor(max_workers=24) as pool:
            tokens = list(pool.map(lambda i: _participant(server.url, i), range(24)))
            # 8 starts with one external id at once: exactly max_sessions_per_participant win
            starts = list(pool.map(lambda _: _started(server.url, "SHARED-ID"), range(8)))
            with httpx.Client(base_url=server.url, timeout=60) as client:
                w = Walker(client)
            # 30 posts of one participant at once, on new connections: exactly 10 pass
            codes = list(pool.map(lambda _: _consent(server.url, w.token, csrf_of(w.html)),
                                  range(30)))
        # both workers served participants: each holds connections to PostgreSQL
        with_db = [p for p in server.workers() if any(
            c.raddr and c.raddr.port == postgres_server.port for c in p.net_connections("tcp"))]
        assert len(with_db) == 2
    finally:
        server.stop()
    assert sorted(starts) == [303] * 2 + [403] * 6
    assert codes.count(429) == 20 and codes.count(303) == 10, codes
    assert len(set(tokens)) == 24
    with session_factory(open_database(db_url))() as s:
        assert s.scalar(select(func.count()).select_from(Participant)
                        .where(Participant.external_id == "SHARED-ID")) == 2
        assert s.scalar(select(func.count()).select_from(Vote)) == 24 * 2
        assert s.scalar(select(func.count()).select_from(Turn)) == 24 * 2  # none unvoted
        for p in s.scalars(select(Participant).where(Participant.external_id.like("P%"))):
            assert p.stage == "done" and p.final_choice == "tie"
            (session,) = s.scalars(select(StudySession).where(
                StudySession.participant_id == p.id))
            assert [(t.index, t.user_text, t.vote.choice, t.vote.participant_id)
                    for t in session.turns] == [(0, "question 0", "left", p.id),
                                                (1, "question 1", "right", p.id)]
