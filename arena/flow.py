"""The participant flow on the database: creating participants, their sessions and turns, votes,
the final preference. Every function commits before it returns, so what a page shows next is
already stored (a vote is committed before the next turn is shown).

Stages: consent -> instructions -> practice -> study -> final -> done. Practice and study are
sessions of turns; each turn holds the participant's message and both replies; the reply voted
for (a coin decides ties and both-bad) continues the conversation for both assistants.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from arena.assignment import model_a_on_left, pair_for, task_index, tie_continues_left
from arena.config import StudyConfig
from arena.generation import Reply
from arena.models import Participant, PostEvent, StudySession, Turn, Vote, now
from corpora.types import Message, Task

NEXT_STAGE = {"consent": "instructions", "instructions": "practice", "practice": "study",
              "study": "final", "final": "done"}
WINNER = {"tie": "tie", "bothbad": "tie (bothbad)"}
RATE_WINDOW = 60.0  # seconds: rate_limit_per_minute posts in any window this long

# The statements of every request, built once (building one costs more than running it)
_EVENTS = PostEvent.__table__
_Q = {
    "by_token": select(Participant).where(Participant.token == bindparam("token")),
    "session": select(StudySession).where(StudySession.participant_id == bindparam("pid"),
                                          StudySession.kind == bindparam("kind")),
    "turns": select(Turn).where(Turn.session_id == bindparam("sid")).order_by(Turn.index)
    .options(joinedload(Turn.vote)),
    "owned_turn": select(Turn).join(StudySession).where(
        Turn.id == bindparam("tid"), StudySession.participant_id == bindparam("pid"))
    .options(joinedload(Turn.vote)),
    "votes": select(func.count()).select_from(Vote).join(Turn)
    .where(Turn.session_id == bindparam("sid")),
    "lock_participant": select(Participant.id).where(Participant.id == bindparam("pid"))
    .with_for_update(),
    "drop_old_posts": _EVENTS.delete().where(_EVENTS.c.participant_id == bindparam("pid"),
                                             _EVENTS.c.at <= bindparam("before")),
    "recent_posts": select(func.count()).select_from(_EVENTS)
    .where(_EVENTS.c.participant_id == bindparam("pid")),
    "add_post": _EVENTS.insert().values(participant_id=bindparam("pid"), at=bindparam("at")),
}


class FlowError(Exception):
    """A request that does not fit the participant's state; `status` is the HTTP answer."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


def create_participant(db: Session, cfg: StudyConfig, external_id: str | None,
                       tasks: list[Task]) -> Participant:
    """A new participant with fresh tokens, assigned to a pair (balanced, seeded) and a task.

    An external id may start `max_sessions_per_participant` sessions: the n-th gets
    external_seq n, unique per id, so concurrent starts (any worker) cannot exceed the limit;
    the one that loses the race counts again."""
    for _ in range(cfg.max_sessions_per_participant + 1):
        seq = None
        if external_id:
            seq = 1 + db.scalar(select(func.count()).select_from(Participant)
                                .where(Participant.external_id == external_id))
            if seq > cfg.max_sessions_per_participant:
                db.rollback()
                raise FlowError("this participant id has already started the study", 403)
        p = Participant(token=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32),
                        external_id=external_id, external_seq=seq, study_id=cfg.study_id,
                        config_version=cfg.version, pair_index=-1, model_a="", model_b="",
                        stage="consent")
        db.add(p)
        try:
            db.flush()  # the id numbers arrivals for the balanced assignment
        except IntegrityError:  # the same id started concurrently: count again
            db.rollback()
            continue
        p.pair_index = pair_for(p.id - 1, len(cfg.pairs), cfg.seed)
        p.model_a, p.model_b = cfg.pairs[p.pair_index]
        if tasks:
            task = tasks[task_index(cfg.seed, p.id, len(tasks))]
            p.task_id, p.task_intent = task.task_id, task.intent
        db.commit()
        return p
    raise FlowError("this participant id has already started the study", 403)


def allow_post(db: Session, p: Participant, limit: int, window: float = RATE_WINDOW) -> bool:
    """Count one form post of `p` unless it already made `limit` in the last `window` seconds
    (committed before it returns). The state is in the database, so every worker shares it: the
    participant's row is locked (PostgreSQL) or the write lock held (SQLite) while counting."""
    t = time.time()
    db.commit()  # end the request's read transaction: the check commits on its own
    # PostgreSQL: lock the participant's row (SQLite ignores FOR UPDATE) ...
    db.execute(_Q["lock_participant"], {"pid": p.id})
    # ... SQLite: a write before the count takes the write lock (SQLite's and this process's)
    db.execute(_Q["drop_old_posts"], {"pid": p.id, "before": t - window})
    allowed = db.scalar(_Q["recent_posts"], {"pid": p.id}) < limit
    if allowed:
        db.execute(_Q["add_post"], {"pid": p.id, "at": t})
    db.commit()
    return allowed


def by_token(db: Session, token: str) -> Participant:
    """The participant with this token; FlowError 404 for any other string."""
    p = db.scalar(_Q["by_token"], {"token": token})
    if p is None:
        raise FlowError("not found", 404)
    return p


def by_turn_owner(db: Session, p: Participant, turn_id: int) -> Turn:
    """Turn `turn_id` (with its vote) if it belongs to participant `p`; FlowError 404
    otherwise."""
    t = db.scalar(_Q["owned_turn"], {"tid": turn_id, "pid": p.id})
    if t is None:
        raise FlowError("not found", 404)
    return t


def advance(db: Session, p: Participant, expected: str) -> None:
    """Move from stage `expected` to the next one (a resent form at a later stage is a no-op)."""
    if p.stage == expected:
        p.stage = NEXT_STAGE[expected]
        db.commit()


def session_of(db: Session, p: Participant, kind: str) -> StudySession:
    """The participant's practice or study session, created on first use."""
    s = db.scalar(_Q["session"], {"pid": p.id, "kind": kind})
    if s is None:
        s = StudySession(participant_id=p.id, kind=kind)
        db.add(s)
        try:
            db.commit()
        except IntegrityError:  # created by a concurrent request of the same participant
            db.rollback()
            return session_of(db, p, kind)
    return s


@dataclass
class SessionView:
    """What the chat page needs: the conversation so far (the chosen path), the turn awaiting a
    vote (None when the participant should write), the last failed turn, the votes counted and
    the turns stored (the index of the next turn)."""

    history: list[Message]
    pending: Turn | None
    failed: Turn | None
    votes: int
    turns: int


def view(db: Session, s: StudySession) -> SessionView:
    """The state of session `s` read from the database."""
    turns = list(db.scalars(_Q["turns"], {"sid": s.id}).unique())
    history: list[Message] = []
    pending = failed = None
    votes = 0
    for t in turns:
        if t.failed:
            failed = t
            continue
        failed = None
        if t.vote is None:
            pending = t
            continue
        votes += 1
        history += [Message("user", t.user_text), Message("assistant", _continued_text(t))]
    return SessionView(history, pending, failed, votes, len(turns))


def _continued_text(t: Turn) -> str:
    return t.reply_left if t.vote.continued_model == t.left_model else t.reply_right


def add_turn(db: Session, p: Participant, s: StudySession, index: int, text: str,
             sides: list[str], replies: list[Reply]) -> Turn:
    """Store the participant's message and both replies (or their errors) as turn `index` (the
    next one when the message was read; a message sent twice at once is stored once: 409)."""
    (left, right), (rl, rr) = sides, replies
    t = Turn(session_id=s.id, index=index, user_text=text, left_model=left, right_model=right,
             reply_left=rl.text, reply_right=rr.text, latency_left_s=rl.latency_s,
             latency_right_s=rr.latency_s, error_left=rl.error, error_right=rr.error)
    db.add(t)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise FlowError("this message was already sent; reload the page", 409)
    return t


def sides_for(cfg: StudyConfig, p: Participant, kind: str, index: int) -> list[str]:
    """[left model, right model] of turn `index` (re-drawn every turn)."""
    a_left = model_a_on_left(cfg.seed, p.token, kind, index)
    return [p.model_a, p.model_b] if a_left else [p.model_b, p.model_a]


def record_vote(db: Session, cfg: StudyConfig, p: Participant, s: StudySession, turn_id: int,
                choice: str, rationale: str | None) -> Vote:
    """Store the vote on the pending turn `turn_id` (a resent vote returns the stored one)."""
    t = by_turn_owner(db, p, turn_id)
    if t.vote is not None:
        return t.vote
    if t.session_id != s.id or t.failed:
        raise FlowError("this turn cannot be voted on", 409)
    if choice in ("left", "right"):
        continued = t.left_model if choice == "left" else t.right_model
        winner = "model_a" if continued == p.model_a else "model_b"
    else:
        left = tie_continues_left(cfg.seed, p.token, s.kind, t.index)
        continued, winner = (t.left_model if left else t.right_model), WINNER[choice]
    v = Vote(turn_id=t.id, participant_id=p.id, choice=choice, winner=winner,
             continued_model=continued, rationale=rationale or None)
    db.add(v)
    try:
        db.commit()
    except IntegrityError:  # the same vote sent twice at once: the first one stands
        db.rollback()
        return db.scalar(select(Vote).where(Vote.turn_id == turn_id))
    return v


def after_vote(db: Session, cfg: StudyConfig, p: Participant, s: StudySession) -> None:
    """End the practice or the study when it has enough votes."""
    votes = db.scalar(_Q["votes"], {"sid": s.id})
    if s.kind == "practice" and votes >= cfg.practice_exchanges:
        end_session(db, p, s)
    elif s.kind == "study" and votes >= cfg.max_exchanges:
        end_session(db, p, s)


def end_session(db: Session, p: Participant, s: StudySession) -> None:
    """Close session `s` and move the participant on."""
    if s.ended_at is None:
        s.ended_at = now()
    advance(db, p, s.kind)


def final_order(cfg: StudyConfig, p: Participant) -> list[str]:
    """[left model, right model] of the final page's two transcripts (a seeded draw)."""
    return sides_for(cfg, p, "final", 0)


def assistant_paths(db: Session, p: Participant) -> dict[str, list[Message]]:
    """Each assistant's own path through the study session: the participant's messages, each
    followed by that assistant's reply (what the final page and the WildChat export show)."""
    s = session_of(db, p, "study")
    paths: dict[str, list[Message]] = {p.model_a: [], p.model_b: []}
    for t in db.scalars(select(Turn).where(Turn.session_id == s.id).order_by(Turn.index)):
        if t.vote is None:
            continue
        for model, text in ((t.left_model, t.reply_left), (t.right_model, t.reply_right)):
            paths[model] += [Message("user", t.user_text), Message("assistant", text or "")]
    return paths


def record_final(db: Session, cfg: StudyConfig, p: Participant, choice: str,
                 rationale: str | None) -> None:
    """The overall preference, given as left / right / tie / bothbad on the final page."""
    if choice not in ("left", "right", "tie", "bothbad"):
        raise FlowError(f"unknown choice {choice!r}", 422)
    if p.stage != "final":
        return
    if choice in ("left", "right"):
        model = final_order(cfg, p)[0 if choice == "left" else 1]
        choice = "model_a" if model == p.model_a else "model_b"
    p.final_choice, p.final_rationale = choice, rationale or None
    p.finished_at = now()
    p.stage = "done"
    db.commit()
