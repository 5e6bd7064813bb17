"""The study app in process (FastAPI TestClient) against a scripted loopback OpenAI-compatible
server, on SQLite and on a real PostgreSQL server: the whole participant flow as stored in the
database, the migrations, assignment, retries and recorded generation failures."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select

from arena.app import create_app
from arena.assignment import pair_for
from arena.db import make_engine, migrate, open_database, session_factory
from arena.models import Base, Participant, StudySession, Turn, Vote
from tests.arena_fixtures import Participant as Walker
from tests.arena_fixtures import db_url, postgres_server, scripted_reply, study_config  # noqa: F401
from tests.eval_fixtures import ScriptedChatServer


@pytest.fixture
def server():
    with ScriptedChatServer(scripted_reply) as srv:
        yield srv


def _app(cfg):
    engine = open_database(cfg.db_url)
    return TestClient(create_app(cfg, engine)), session_factory(engine)


def test_migrations_build_the_models_schema_and_downgrade(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    migrate_down = __import__("alembic.command", fromlist=["downgrade"]).downgrade
    from alembic.config import Config
    from arena.db import MIGRATIONS
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        migrate_down(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}


def test_a_whole_session_is_stored_vote_by_vote(server, db_url):
    client, make = _app(study_config(server, db_url))
    walker = Walker(client)
    walker.complete(choices=("left", "right", "tie"), final="right")
    assert "CODE-1234" in walker.html
    with make() as s:
        p = s.scalar(select(Participant))
        assert p.stage == "done" and p.final_choice in ("model_a", "model_b")
        kinds = {sess.kind: sess for sess in s.scalars(select(StudySession))}
        assert len(kinds["practice"].turns) == 1
        study = kinds["study"].turns
        assert [t.user_text for t in study] == ["question 0", "question 1", "question 2"]
        for t, choice in zip(study, ("left", "right", "tie")):
            assert {t.left_model, t.right_model} == {"zeta-alpha", "zeta-beta"}
            # each side shows its own assistant's reply to the conversation so far
            assert t.reply_left.startswith(f"{t.left_model} says: question")
            assert t.reply_right.startswith(f"{t.right_model} says: question")
            assert t.latency_left_s >= 0 and t.error_left is None and t.error_right is None
            assert t.vote.choice == choice and t.vote.rationale.startswith("reason")
            if choice != "tie":
                chosen = t.left_model if choice == "left" else t.right_model
                assert t.vote.continued_model == chosen
                assert t.vote.winner == ("model_a" if chosen == p.model_a else "model_b")
            else:
                assert t.vote.winner == "tie"
        assert s.scalar(select(Vote).where(Vote.turn_id == study[0].id)).created_at is not None


def test_the_chosen_reply_continues_both_conversations(server, db_url):
    seen = []

    def reply(body):
        seen.append((body["model"], [m["content"] for m in body["messages"]]))
        return scripted_reply(body)

    server.reply = reply
    client, make = _app(study_config(server, db_url, practice_exchanges=0))
    walker = Walker(client)
    walker.post("consent")
    walker.post("instructions")
    walker.exchange("first", "left")
    with make() as s:
        first = s.scalar(select(Turn).order_by(Turn.id))
        chosen = first.reply_left
    seen.clear()
    walker.post("message", text="second")
    assert sorted(m for m, _ in seen) == ["zeta-alpha", "zeta-beta"]
    for _model, contents in seen:  # both assistants continue from the chosen reply
        assert contents == ["first", chosen, "second"]


def test_sides_are_redrawn_and_pairs_balanced(server, tmp_path):
    cfg = study_config(server, f"sqlite:///{tmp_path}/a.db", practice_exchanges=0,
                       max_exchanges=8, min_exchanges=8,
                       assistants={n: server.spec(n) for n in ("zeta-a", "zeta-b", "zeta-c")})
    assert len(cfg.pairs) == 3
    client, make = _app(cfg)
    walkers = [Walker(client) for _ in range(6)]
    walker = walkers[0]
    walker.post("consent")
    walker.post("instructions")
    for i in range(8):
        walker.exchange(f"m{i}", "left")
    with make() as s:
        pairs = [p.pair_index for p in s.scalars(select(Participant).order_by(Participant.id))]
        lefts = [t.left_model for t in s.scalars(select(Turn))]
    assert sorted(pairs) == [0, 0, 1, 1, 2, 2]  # two complete blocks of three pairs
    assert pairs == [pair_for(i, 3, cfg.seed) for i in range(6)]
    assert len(set(lefts)) == 2  # both assistants of the pair sat on the left at some turn


def test_a_failing_assistant_is_retried_then_shown_and_recorded(server, tmp_path):
    def reply(body):
        if body["model"] == "zeta-beta":
            raise RuntimeError("model crashed")
        return scripted_reply(body)

    server.reply = reply
    client, make = _app(study_config(server, f"sqlite:///{tmp_path}/a.db", practice_exchanges=0))
    walker = Walker(client)
    walker.post("consent")
    walker.post("instructions")
    walker.post("message", text="hello")
    assert 'id="generation-error"' in walker.html and 'name="turn_id"' not in walker.html
    assert server.calls["zeta-beta"] == 2  # generation_attempts
    with make() as s:
        t = s.scalar(select(Turn))
        failed = t.error_left if t.left_model == "zeta-beta" else t.error_right
        assert "400" in failed and t.vote is None
    server.reply = scripted_reply  # the participant sends it again: a new turn
    walker.post("message", text="hello")
    assert 'name="turn_id"' in walker.html


def test_the_link_resumes_at_the_stage_and_pending_turn(server, tmp_path):
    client, _ = _app(study_config(server, f"sqlite:///{tmp_path}/a.db"))
    walker = Walker(client)
    walker.post("consent")
    walker.post("instructions")
    walker.post("message", text="pending question")
    again = client.get(f"/p/{walker.token}", follow_redirects=True)
    assert again.url.path.endswith("/chat")
    assert "pending question" in again.text and 'name="turn_id"' in again.text


def test_participants_can_be_shown_an_intent_from_a_task_file(server, tmp_path):
    from corpora.tasks import write_tasks
    from corpora.types import Task
    tasks = tmp_path / "tasks.jsonl"
    write_tasks([Task("t1", "Plan a week of vegetarian dinners"),
                 Task("t2", "Fix a failing unit test in a Python project")], tasks)
    client, make = _app(study_config(server, f"sqlite:///{tmp_path}/a.db",
                                     task_source=str(tasks)))
    walker = Walker(client)
    walker.post("consent")
    with make() as s:
        p = s.scalar(select(Participant))
    assert p.task_intent in ("Plan a week of vegetarian dinners",
                             "Fix a failing unit test in a Python project")
    assert p.task_intent in walker.html  # the instructions page shows it
    walker.post("instructions")
    assert p.task_intent in walker.html  # and so does the chat page
