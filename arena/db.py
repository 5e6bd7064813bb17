"""Opening the study database: SQLite in WAL mode with no set-up, or PostgreSQL by URL; the
Alembic migrations bring the schema to the newest version.

SQLite allows one writer at a time; a writer that finds the database locked sleeps in SQLite's
busy handler (1, 2, 5 ... 100 ms naps) and, under load, waits far longer than the write takes.
So the threads of one process queue on a Python lock per database file instead: a connection
takes it at its transaction's first INSERT/UPDATE/DELETE (when the sqlite3 module opens the
transaction) and gives it back at commit, rollback or close. Other processes (a second server,
`wildsim arena export`) still meet the busy timeout. Readers never wait (WAL).

    engine = open_database("sqlite:///runs/arena/arena.db")   # creates the file, migrates
    with session_factory(engine)() as db: ...
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_TIMEOUT = 30.0  # seconds, as SQLite's busy timeout
_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class _WriterCursor(sqlite3.Cursor):
    """Takes its connection's write lock before the statement that opens a write transaction."""

    def execute(self, sql, parameters=()):
        self.connection.before(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters):
        self.connection.before(sql)
        return super().executemany(sql, seq_of_parameters)


class _OneWriterConnection(sqlite3.Connection):
    """A sqlite3 connection whose write transactions hold this process's lock of its file."""

    write_lock: threading.Lock  # set on the per-file subclass

    def cursor(self, factory=_WriterCursor):
        return super().cursor(factory)

    def execute(self, sql, parameters=()):
        self.before(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters):
        self.before(sql)
        return super().executemany(sql, seq_of_parameters)

    def before(self, sql: str) -> None:
        if (not getattr(self, "holds", False) and not self.in_transaction
                and sql.lstrip()[:7].upper().startswith(_WRITES)):
            if not self.write_lock.acquire(timeout=LOCK_TIMEOUT):
                raise sqlite3.OperationalError("database is locked (waited for another writer "
                                               f"of this process for {LOCK_TIMEOUT:.0f} s)")
            self.holds = True

    def _release(self) -> None:
        if getattr(self, "holds", False):
            self.holds = False
            self.write_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()


def _connection_class(path: str) -> type[_OneWriterConnection]:
    """The connection class of database file `path`: one write lock per file in this process."""
    if not path or path == ":memory:":
        lock = threading.Lock()
    else:
        with _WRITE_LOCKS_GUARD:
            lock = _WRITE_LOCKS.setdefault(str(Path(path).resolve()), threading.Lock())
    return type("OneWriterConnection", (_OneWriterConnection,), {"write_lock": lock})


def make_engine(url: str) -> Engine:
    """An SQLAlchemy engine for `url`; SQLite gets WAL, a 30 s busy timeout, full syncs (a
    commit is on disk when it returns) and one writer at a time per process, and its folder is
    created."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30,
                                                  "factory": _connection_class(path)})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to `revision` on `engine`'s database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def open_database(url: str) -> Engine:
    """make_engine + migrate: a database ready for the app."""
    engine = make_engine(url)
    migrate(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
