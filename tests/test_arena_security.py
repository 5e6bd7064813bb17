"""Security of the study app: unguessable links, no access across participants, no leak of
which assistant is A or B, escaped model and participant text, CSRF on every form post, length,
rate and session limits, admin pages behind a password from the environment."""

from __future__ import annotations

import base64
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from arena.app import create_app
from arena.db import open_database, session_factory
from arena.models import Participant, Turn, Vote
from tests.arena_fixtures import XSS, csrf_of, pending_turn_id, scripted_reply, study_config
from tests.arena_fixtures import Participant as Walker
from tests.eval_fixtures import ScriptedChatServer


@pytest.fixture
def study(tmp_path):
    with ScriptedChatServer(scripted_reply) as srv:
        def make(**overrides):
            cfg = study_config(srv, f"sqlite:///{tmp_path}/a.db", **overrides)
            engine = open_database(cfg.db_url)
            return cfg, TestClient(create_app(cfg, engine)), session_factory(engine)
        yield srv, make


def _count(make, model) -> int:
    with make() as s:
        return s.scalar(select(func.count()).select_from(model))


def _at_vote(client) -> Walker:
    w = Walker(client)
    w.post("consent")
    w.post("instructions")
    w.post("message", text="hello")
    return w


def test_tokens_are_long_random_and_unknown_ones_are_404(study):
    _, make = study
    _cfg, client, _ = make()
    a, b = Walker(client), Walker(client)
    assert a.token != b.token and len(a.token) >= 43  # 32 random bytes, urlsafe base64
    for path in ("", "/consent", "/chat", "/final", "/done"):
        assert client.get(f"/p/{a.token[:-1]}x{path}").status_code == 404
    r = client.post(f"/p/{'A' * 43}/consent", data={"csrf": csrf_of(a.html)})
    assert r.status_code == 404


def test_another_participants_turn_is_404_and_untouched(study):
    _, make = study
    _cfg, client, db = make()
    victim, attacker = _at_vote(client), _at_vote(client)
    victim_turn = pending_turn_id(victim.html)
    r = client.post(f"/p/{attacker.token}/vote", data={
        "csrf": csrf_of(attacker.html), "turn_id": victim_turn, "choice": "left"})
    assert r.status_code == 404
    assert _count(db, Vote) == 0


def test_no_page_names_the_assistants(study):
    _, make = study
    _cfg, client, _ = make()
    w = Walker(client)
    pages = [w.html]
    w.post("consent"), pages.append(w.html)
    w.post("instructions"), pages.append(w.html)
    for i in range(3):
        w.post("message", text=f"q{i}")
        pages.append(w.html)
        w.post("vote", turn_id=pending_turn_id(w.html), choice="left")
        pages.append(w.html)
    pages.append(client.get("/static/arena.js").text)
    # the scripted replies say "<model> says:", so strip the reply bodies before looking
    for html in pages:
        html = re.sub(r"zeta-(alpha|beta) says:", "", html)
        for secret in ("zeta-alpha", "zeta-beta", "openai:", "127.0.0.1", "model_a", "model_b"):
            assert secret not in html


def test_model_and_participant_text_is_escaped(study):
    srv, make = study
    _cfg, client, db = make(assistants={"xss-model": srv.spec("xss-model"),
                                        "zeta-beta": srv.spec("zeta-beta")})
    w = Walker(client)
    w.post("consent")
    w.post("instructions")
    w.post("message", text='<b onmouseover="alert(2)">hi</b>')
    for payload in (XSS, '<b onmouseover="alert(2)">'):
        assert payload not in w.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in w.html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in w.html
    assert "&lt;b onmouseover=" in w.html
    assert "script-src 'self'" in client.get(f"/p/{w.token}").headers["content-security-policy"]


def test_every_form_post_needs_the_csrf_token(study):
    _, make = study
    _cfg, client, db = make()
    w = _at_vote(client)
    data = {"text": "x", "turn_id": pending_turn_id(w.html), "choice": "left"}
    for path in ("consent", "instructions", "message", "vote", "finish", "final"):
        for csrf in (None, "forged", csrf_of(w.html)[:-1]):
            sent = dict(data, **({"csrf": csrf} if csrf else {}))
            assert client.post(f"/p/{w.token}/{path}", data=sent).status_code == 403, (path, csrf)
    assert _count(db, Vote) == 0 and _count(db, Turn) == 1
    w.post("vote", turn_id=data["turn_id"], choice="left")  # the real token works
    assert _count(db, Vote) == 1


def test_oversize_message_and_rationale_are_refused(study):
    _, make = study
    _cfg, client, db = make(max_message_chars=50, max_rationale_chars=20)
    w = _at_vote(client)
    csrf = csrf_of(w.html)
    r = client.post(f"/p/{w.token}/vote", data={"csrf": csrf, "turn_id": pending_turn_id(w.html),
                                                "choice": "left", "rationale": "r" * 21})
    assert r.status_code == 413 and _count(db, Vote) == 0
    w.post("vote", turn_id=pending_turn_id(w.html), choice="left")
    r = client.post(f"/p/{w.token}/message", data={"csrf": csrf, "text": "m" * 51})
    assert r.status_code == 413 and _count(db, Turn) == 1


def test_rate_limit_per_participant(study):
    _, make = study
    _cfg, client, _ = make(rate_limit_per_minute=3)
    w, other = Walker(client), Walker(client)
    csrf = csrf_of(w.html)
    codes = [client.post(f"/p/{w.token}/consent", data={"csrf": csrf}).status_code
             for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert client.post(f"/p/{other.token}/consent",  # others are not affected
                       data={"csrf": csrf_of(other.html)}).status_code in (200, 303)


def test_sessions_per_participant_id_are_limited(study):
    _, make = study
    _cfg, client, db = make(max_sessions_per_participant=1)
    Walker(client, external_id="PID-1")
    r = client.get("/start", params={"PROLIFIC_PID": "PID-1"})
    assert r.status_code == 403
    assert _count(db, Participant) == 1


def test_admin_pages_need_the_environment_password(study, monkeypatch):
    _, make = study
    _cfg, client, _ = make()
    Walker(client).complete()
    monkeypatch.delenv("ARENA_ADMIN_PASSWORD", raising=False)
    assert client.get("/admin").status_code == 404  # off without a password
    monkeypatch.setenv("ARENA_ADMIN_PASSWORD", "s3cret-pw")
    assert client.get("/admin").status_code == 401
    bad = base64.b64encode(b"admin:wrong").decode()
    assert client.get("/admin", headers={"Authorization": f"Basic {bad}"}).status_code == 401
    good = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret-pw").decode()}
    page = client.get("/admin", headers=good)
    assert page.status_code == 200 and "s3cret-pw" not in page.text
    battles = client.get("/admin/export/battles.jsonl", headers=good)
    assert battles.status_code == 200 and len(battles.text.splitlines()) == 4  # 3 turns + final
    assert client.get("/admin/export/battles.jsonl").status_code == 401


def test_a_resent_vote_counts_once(study):
    _, make = study
    _cfg, client, db = make()
    w = _at_vote(client)
    data = {"csrf": csrf_of(w.html), "turn_id": pending_turn_id(w.html), "choice": "left"}
    for _ in range(3):
        assert client.post(f"/p/{w.token}/vote", data=data).status_code in (200, 303)
    assert _count(db, Vote) == 1
