"""The study database: SQLAlchemy 2 models of participants, sessions, turns and votes.

    participants  one per study link (unguessable `token`), the pair it compares, its stage
    sessions      a participant's practice and study sessions
    turns         one participant message with both replies: which assistant sat on which side,
                  each reply's latency and error (a failed generation is recorded, never empty)
    votes         the choice on a turn (left/right/tie/bothbad), its winner in battle terms,
                  the rationale and the time; one vote per turn (unique), so a resent form
                  cannot count twice
    post_events   when each participant's recent form posts arrived: the per-participant rate
                  limit, shared by every server worker (rows older than the window are deleted)

A participant's `external_seq` numbers the sessions of one external id (1, 2, ...); it is unique
per external id, so two workers cannot both start the same id's last allowed session.

The schema is created by the Alembic migrations in arena/migrations (arena/db.py runs them);
tests check that the migrations and these models agree.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

STAGES = ("consent", "instructions", "practice", "study", "final", "done")
CHOICES = ("left", "right", "tie", "bothbad")
FINAL_CHOICES = ("model_a", "model_b", "tie", "bothbad")


def now() -> datetime:
    """The current UTC time (stored with its zone)."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Participant(Base):
    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(128), index=True)
    external_seq: Mapped[int | None] = mapped_column(Integer)
    study_id: Mapped[str] = mapped_column(String(128))
    config_version: Mapped[str] = mapped_column(String(32))
    pair_index: Mapped[int] = mapped_column(Integer)
    model_a: Mapped[str] = mapped_column(String(128))
    model_b: Mapped[str] = mapped_column(String(128))
    task_id: Mapped[str | None] = mapped_column(String(256))
    task_intent: Mapped[str | None] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(16), default="consent")
    final_choice: Mapped[str | None] = mapped_column(String(16))
    final_rationale: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    sessions: Mapped[list["StudySession"]] = relationship(back_populates="participant",
                                                          order_by="StudySession.id")
    __table_args__ = (Index("uq_participant_external_seq", "external_id", "external_seq",
                            unique=True),)


class StudySession(Base):
    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "practice" or "study"
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    participant: Mapped[Participant] = relationship(back_populates="sessions")
    turns: Mapped[list["Turn"]] = relationship(back_populates="session", order_by="Turn.index")
    __table_args__ = (UniqueConstraint("participant_id", "kind", name="uq_session_kind"),)


class Turn(Base):
    __tablename__ = "turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    user_text: Mapped[str] = mapped_column(Text)
    left_model: Mapped[str] = mapped_column(String(128))
    right_model: Mapped[str] = mapped_column(String(128))
    reply_left: Mapped[str | None] = mapped_column(Text)
    reply_right: Mapped[str | None] = mapped_column(Text)
    latency_left_s: Mapped[float | None] = mapped_column(Float)
    latency_right_s: Mapped[float | None] = mapped_column(Float)
    error_left: Mapped[str | None] = mapped_column(Text)
    error_right: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)

    session: Mapped[StudySession] = relationship(back_populates="turns")
    vote: Mapped["Vote | None"] = relationship(back_populates="turn", uselist=False)
    __table_args__ = (UniqueConstraint("session_id", "index", name="uq_turn_index"),)

    @property
    def failed(self) -> bool:
        return self.error_left is not None or self.error_right is not None


class Vote(Base):
    __tablename__ = "votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id"), unique=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    choice: Mapped[str] = mapped_column(String(16))  # left / right / tie / bothbad
    winner: Mapped[str] = mapped_column(String(16))  # model_a / model_b / tie / tie (bothbad)
    continued_model: Mapped[str] = mapped_column(String(128))
    rationale: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)

    turn: Mapped[Turn] = relationship(back_populates="vote")


class PostEvent(Base):
    __tablename__ = "post_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    at: Mapped[float] = mapped_column(Float)  # seconds since the epoch
