"""What leaves the study database: FastChat-style battles (for `wildsim arena analyze` and
other arena tools), the study's conversations in the WildChat schema (so simulators can be
measured against the study's own participants), and the admin progress table.

Battles (one JSON object per line): model_a, model_b (the pair's first- and second-named
assistants), winner ∈ {model_a, model_b, tie, tie (bothbad)}, judge (a pseudonymous participant
id, never the link token), turn (1-based), phase ("turn": a per-turn vote of the study session;
"final": the overall preference), tstamp (Unix seconds), anony (true). Practice votes are not
exported.

WildChat: one record per participant and assistant: the participant's study messages as the
user turns, that assistant's reply to each as the assistant turns (both assistants answered the
same conversation, the chosen path). The user key (hashed_ip) is a hash of the study and the
participant id, so user-disjoint splits keep a participant's two records together.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from arena.config import StudyConfig
from arena.models import Participant, StudySession, Turn

FINAL_WINNER = {"model_a": "model_a", "model_b": "model_b", "tie": "tie",
                "bothbad": "tie (bothbad)"}


def _utc_seconds(t: datetime) -> float:
    """Unix seconds of a stored time (SQLite returns it without its zone: it is UTC)."""
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


def judge_id(p: Participant) -> str:
    """The participant's name in exports (their database id; the token stays secret)."""
    return f"{p.study_id}/p{p.id}"


def _study_turns(db: Session) -> Iterator[tuple[Participant, list[Turn]]]:
    query = (select(StudySession).where(StudySession.kind == "study")
             .options(selectinload(StudySession.turns).selectinload(Turn.vote),
                      selectinload(StudySession.participant))
             .order_by(StudySession.participant_id))
    for sess in db.scalars(query):
        yield sess.participant, [t for t in sess.turns if t.vote is not None]


def battles_from_db(db: Session) -> list[dict[str, Any]]:
    """Every study vote and final preference as a FastChat-style battle."""
    battles = []
    for p, turns in _study_turns(db):
        for number, t in enumerate(turns, 1):
            battles.append({"model_a": p.model_a, "model_b": p.model_b, "winner": t.vote.winner,
                            "judge": judge_id(p), "turn": number, "phase": "turn",
                            "tstamp": _utc_seconds(t.vote.created_at), "anony": True})
        if p.final_choice:
            battles.append({"model_a": p.model_a, "model_b": p.model_b,
                            "winner": FINAL_WINNER[p.final_choice], "judge": judge_id(p),
                            "turn": len(turns), "phase": "final",
                            "tstamp": _utc_seconds(p.finished_at), "anony": True})
    return battles


def wildchat_records(db: Session) -> list[dict[str, Any]]:
    """Two WildChat-schema records per participant with at least one voted study turn."""
    records = []
    for p, turns in _study_turns(db):
        if not turns:
            continue
        user = hashlib.sha256(judge_id(p).encode()).hexdigest()
        for model in (p.model_a, p.model_b):
            records.append(_wildchat_record(p, model, turns, user))
    return records


def _wildchat_record(p: Participant, model: str, turns: list[Turn], user: str) -> dict[str, Any]:
    conversation = []
    for t in turns:
        reply = t.reply_left if t.left_model == model else t.reply_right
        base = {"language": "unknown", "toxic": False, "redacted": False}
        conversation.append({"role": "user", "content": t.user_text, **base,
                             "turn_identifier": 2 * t.id, "hashed_ip": user, "state": None,
                             "country": None, "header": {}})
        conversation.append({"role": "assistant", "content": reply or "", **base,
                             "turn_identifier": 2 * t.id + 1,
                             "timestamp": t.created_at.isoformat()})
    digest = hashlib.md5(f"{judge_id(p)}|{model}".encode()).hexdigest()
    return {"conversation_hash": digest, "model": model,
            "timestamp": turns[0].created_at.isoformat(), "turn": len(turns),
            "language": "unknown", "toxic": False, "redacted": False, "state": None,
            "country": None, "hashed_ip": user, "header": {}, "openai_moderation": [],
            "detoxify_moderation": [], "conversation": conversation,
            "arena": {"study_id": p.study_id, "judge": judge_id(p), "pair": [p.model_a, p.model_b],
                      "intent": p.task_intent}}


def progress_table(db: Session, cfg: StudyConfig) -> list[dict[str, Any]]:
    """Per pair: participants by stage, study votes, final preferences."""
    rows = [{"pair": f"{a} vs {b}", "stages": Counter(), "votes": 0, "finals": 0}
            for a, b in cfg.pairs]
    for p in db.scalars(select(Participant)):
        if 0 <= p.pair_index < len(rows):
            rows[p.pair_index]["stages"][p.stage] += 1
            rows[p.pair_index]["finals"] += bool(p.final_choice)
    for p, turns in _study_turns(db):
        if 0 <= p.pair_index < len(rows):
            rows[p.pair_index]["votes"] += len(turns)
    return rows


def main(argv: list[str] | None = None) -> int:
    """`wildsim arena export --db URL --format battles|wildchat --out FILE.jsonl`."""
    import argparse
    import json
    from pathlib import Path

    from corpora.records import dumps
    parser = argparse.ArgumentParser(prog="wildsim arena export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="SQLAlchemy URL of the study database")
    parser.add_argument("--format", choices=("battles", "wildchat"), default="battles",
                        help="battles: FastChat-style JSONL; wildchat: WildChat-schema JSONL")
    parser.add_argument("--out", required=True, help="output JSONL file")
    args = parser.parse_args(argv)
    from arena.db import open_database, session_factory
    with session_factory(open_database(args.db))() as s:
        rows = battles_from_db(s) if args.format == "battles" else wildchat_records(s)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for row in rows:
            f.write((json.dumps(row) if args.format == "battles" else dumps(row)) + "\n")
    print(f"wrote {len(rows)} {args.format} records to {out}")
    return 0
