"""A few raw asyncpg connections for the statements on the hottest path (the exact probe, the
semantic tier's nearest-neighbour search).

Each call is one statement outside any explicit transaction: no pool pre-ping, no BEGIN, no
COMMIT, no ORM; asyncpg's statement cache makes a repeated call one round trip. A statement that
needs a tenant context sets it itself, transaction-locally (`set_config(..., true)`), so it ends
with the statement. Vectors travel in pgvector's binary format (halfvec). A connection that fails is dropped and the call is tried once more on a new one;
a second failure is the caller's (the usual outage handling then applies).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from app.db.engine import register_halfvec
from app.db.errors import is_database_outage

log = logging.getLogger(__name__)

# SQLSTATE of a call to a function that is not there: a fast-path function whose migration has not
# run yet (its caller falls back to a transaction).
UNDEFINED_FUNCTION = "42883"


def connection_failed(error: BaseException) -> bool:
    """The driver's own errors that mean "this connection (or the server) is gone"."""
    if isinstance(error, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
        return True
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in ("08", "57", "53"):
        return True
    return is_database_outage(error)


def unavailable(error: BaseException, function: str, fallback: str) -> bool:
    """True when a fast-path call failed in a way its caller answers by falling back to a
    transaction: the database unreachable (the transaction path handles the outage), or `function`
    missing because its migration has not run (logged; the caller stops trying it). False: any
    other error, for the caller to raise."""
    if connection_failed(error):
        return True
    if getattr(error, "sqlstate", None) == UNDEFINED_FUNCTION:
        log.warning("%s is missing (migrations not applied): %s", function, fallback)
        return True
    return False


def missing_function(error: BaseException) -> bool:
    """The call failed because its function is not in the database (its migration has not run)."""
    return getattr(error, "sqlstate", None) == UNDEFINED_FUNCTION


def asyncpg_dsn(url: str) -> str:
    """SQLAlchemy's `postgresql+asyncpg://` URL as a plain libpq-style DSN for asyncpg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class FastConnections:
    """At most `size` connections, opened on demand and kept (LIFO: the warmest is reused)."""

    def __init__(
        self, url: str, *, statement_timeout_ms: int = 0, connect_timeout_s: float = 5.0, size: int = 4
    ) -> None:
        self.dsn = asyncpg_dsn(url)
        server_settings = {"application_name": "deja"}
        if statement_timeout_ms:
            server_settings["statement_timeout"] = str(statement_timeout_ms)
        self.server_settings = server_settings
        self.connect_timeout_s = connect_timeout_s
        self._idle: list[asyncpg.Connection] = []
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    async def _connect(self) -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(
            self.dsn, server_settings=self.server_settings, timeout=self.connect_timeout_s
        )
        try:
            await register_halfvec(connection)
        except BaseException:
            connection.terminate()
            raise
        return connection

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """One statement's first row; a connection that failed is replaced and the call retried once."""
        row: asyncpg.Record | None = await self._run("fetchrow", sql, args)
        return row

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """One statement's rows; a connection that failed is replaced and the call retried once."""
        rows: list[asyncpg.Record] = await self._run("fetch", sql, args)
        return rows

    async def _run(self, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        if self._closed:
            raise ConnectionError("the fast-path connections are closed")
        async with self._slots:
            for retry in (True, False):
                connection = self._idle.pop() if self._idle else await self._connect()
                try:
                    result = await getattr(connection, method)(sql, *args)
                except BaseException as exc:
                    # In doubt (cancelled mid-statement, a broken socket): never reuse it.
                    connection.terminate()
                    if retry and isinstance(exc, Exception) and connection_failed(exc):
                        continue
                    raise
                if self._closed:
                    await connection.close()
                else:
                    self._idle.append(connection)
                return result
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            try:
                await connection.close(timeout=2)
            except Exception:
                connection.terminate()
