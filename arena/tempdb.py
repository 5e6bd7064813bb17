"""A throwaway PostgreSQL server for the arena's tests and benchmark: Debian's binaries
(initdb, pg_ctl) run as an unprivileged user (`nobody` when we are root: PostgreSQL refuses
root) in a temporary folder, listening on a free loopback port; `stop()` removes everything.

    server = PostgresServer()
    url = server.new_database()   # postgresql+psycopg://arena@127.0.0.1:<port>/arena_test_1
    ...
    server.stop()
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its commands as `nobody` when we are root."""
    return ["runuser", "-u", "nobody", "--", *cmd] if os.geteuid() == 0 else cmd


class PostgresServer:
    """A PostgreSQL server of Debian's binaries in a temporary folder on a free loopback port,
    run as an unprivileged user; `new_database()` gives each test its own database URL."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise FileNotFoundError(f"PostgreSQL binaries not found in {PG_BIN} "
                                    "(run `make system-deps`)")
        self.dir = Path(tempfile.mkdtemp(prefix="arena-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "nobody", "nogroup")
        self.port = free_port()
        self.user = "nobody" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
        data = self.dir / "data"
        subprocess.run(_as_postgres_user([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust",
                                          "-U", "arena", "--no-sync"]),
                       check=True, capture_output=True)
        subprocess.run(_as_postgres_user([
            str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"), "-w", "start",
            "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c max_connections=200"]), check=True, capture_output=True)
        self.data = data
        self.count = 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://arena@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg
        self.count += 1
        name = f"arena_test_{self.count}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=arena dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(_as_postgres_user([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m",
                                          "immediate", "-w", "stop"]), capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
