"""What leaves the study database: battles JSONL and WildChat-schema conversations through
`wildsim arena export`, read back by `wildsim arena analyze --db` and the WildChat loader."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from arena.analyze import main as analyze_main
from arena.app import create_app
from arena.db import open_database
from arena.export import main as export_main
from corpora.wildchat import iter_wildchat, to_messages
from tests.arena_fixtures import Participant as Walker
from tests.arena_fixtures import scripted_reply, study_config
from tests.eval_fixtures import ScriptedChatServer


def _finished_study(tmp_path, participants=2):
    with ScriptedChatServer(scripted_reply) as srv:
        cfg = study_config(srv, f"sqlite:///{tmp_path}/study.db")
        client = TestClient(create_app(cfg, open_database(cfg.db_url)))
        for i in range(participants):
            Walker(client).complete(choices=("left", "right", "tie"), final="tie")
    return cfg.db_url


def test_wildchat_export_loads_back_through_the_loader(tmp_path):
    url = _finished_study(tmp_path)
    out = tmp_path / "wildchat.jsonl"
    assert export_main(["--db", url, "--format", "wildchat", "--out", str(out)]) == 0
    convs = list(iter_wildchat(str(out)))
    assert len(convs) == 4  # two participants x two assistant paths
    assert sorted(c.model for c in convs) == ["zeta-alpha", "zeta-alpha", "zeta-beta", "zeta-beta"]
    for c in convs:
        messages = to_messages(c)
        assert [m.content for m in messages if m.role == "user"] == [
            "question 0", "question 1", "question 2"]  # practice turns are not study data
        assert all(m.content.startswith(f"{c.model} says:")
                   for m in messages if m.role == "assistant")
    keys = {c.user_key for c in convs}
    assert len(keys) == 2  # one user per participant: splits keep their two paths together


def test_battles_export_and_analyze_from_the_database(tmp_path):
    url = _finished_study(tmp_path)
    out = tmp_path / "battles.jsonl"
    assert export_main(["--db", url, "--format", "battles", "--out", str(out)]) == 0
    battles = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(battles) == 8  # 2 participants x (3 turns + 1 final)
    assert {b["phase"] for b in battles} == {"turn", "final"}
    assert {b["judge"] for b in battles} == {"test-study/p1", "test-study/p2"}  # never the token
    turn_winners = sorted(b["winner"] for b in battles if b["phase"] == "turn")
    assert turn_winners.count("tie") == 2
    assert analyze_main(["--db", url, "--out", str(tmp_path / "a"), "--n-boot", "100"]) == 0
    result = json.loads((tmp_path / "a" / "arena.json").read_text())
    (pair,) = result["pairs"]
    assert pair["battles"] == 6 and pair["ties"] == 2 and pair["judges"] == 2
    assert pair["wins_a"] == turn_winners.count("model_a")
    assert result["final"]["pairs"][0]["ties"] == 2
    assert set(result["bradley_terry"]) == {"zeta-alpha", "zeta-beta"}
