"""Engine, sessions and the row-level security context.

Tenant-owned tables are under row-level security keyed by two transaction-local settings:
`deja.tenant_id` (the tenant whose rows are visible) and `deja.system` ('on' only for
authentication and admin work). Both reset when the transaction ends, so a pooled
connection never carries one request's tenant into the next.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar

from pgvector import HalfVector
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.db.errors import is_database_outage
from app.settings import Settings

_T = TypeVar("_T")

_SET_TENANT = text(
    "SELECT set_config('deja.tenant_id', :tenant_id, true), set_config('deja.system', 'off', true), "
    "set_config('synchronous_commit', :synchronous_commit, true)"
)
_SET_SYSTEM = text("SELECT set_config('deja.system', 'on', true)")


def engine_url(url: str) -> str:
    """`url` as SQLAlchemy's asyncpg dialect connects with it: libpq's `sslmode`, which the URLs
    providers hand out carry, is asyncpg's `ssl` (same values). asyncpg's own DSN (`FastConnections`)
    and psql read `sslmode` as it is."""
    parsed = make_url(url)
    if "sslmode" not in parsed.query:
        return url
    query = {key: value for key, value in parsed.query.items() if key != "sslmode"}
    query["ssl"] = parsed.query["sslmode"]
    return parsed.set(query=query).render_as_string(hide_password=False)


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    db = settings.database
    connect_args: dict[str, object] = {"server_settings": {"application_name": "deja"}}
    if db.statement_timeout_ms:
        connect_args["server_settings"] = {
            "application_name": "deja",
            "statement_timeout": str(db.statement_timeout_ms),
        }
    engine = create_async_engine(
        engine_url(url),
        pool_size=db.pool_size,
        max_overflow=db.max_overflow,
        pool_timeout=db.pool_timeout_s,
        pool_pre_ping=True,
        echo=db.echo,
        # Statement parameters are prompts, embeddings and answers: never in an error message or a log.
        hide_parameters=True,
        connect_args=connect_args,
    )
    event.listen(engine.sync_engine, "connect", _binary_vectors)
    return engine


def _binary_vectors(dbapi_connection: Any, _record: Any) -> None:
    """halfvec parameters travel in pgvector's binary format: no text to format and parse per
    query (pass `pgvector.HalfVector` or a numpy array)."""
    dbapi_connection.run_async(register_halfvec)


async def register_halfvec(connection: Any) -> None:
    """pgvector's binary format for halfvec on an asyncpg connection (the fast path's too)."""
    # "unknown type": a connection made before the migrations create the extension.
    with contextlib.suppress(ValueError):
        await connection.set_type_codec(
            "halfvec",
            schema="public",
            encoder=lambda value: (value if isinstance(value, HalfVector) else HalfVector(value)).to_binary(),
            decoder=HalfVector.from_binary,
            format="binary",
        )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def enter_tenant(session: AsyncSession, tenant_id: uuid.UUID, *, durable: bool = True) -> None:
    """Make only this tenant's rows visible for the rest of the transaction.

    `durable=False` lets the commit return before its WAL reaches disk (synchronous_commit off):
    about 3 ms less per commit here; a Postgres crash (not a clean stop) may then lose the
    last fraction of a second of such commits. Only cache-hit bookings use it (docs/reliability.md).
    """
    await session.execute(
        _SET_TENANT, {"tenant_id": str(tenant_id), "synchronous_commit": "on" if durable else "off"}
    )


async def enter_system(session: AsyncSession) -> None:
    """Make every tenant's rows visible for the rest of the transaction (auth and admin only)."""
    await session.execute(_SET_SYSTEM)


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    tenant_id: uuid.UUID | None = None,
    system: bool = False,
    durable: bool = True,
) -> AsyncIterator[AsyncSession]:
    """One transaction in a given RLS context; commits on success, rolls back on error."""
    async with sessionmaker() as session, session.begin():
        if tenant_id is not None:
            await enter_tenant(session, tenant_id, durable=durable)
        elif system:
            await enter_system(session)
        yield session


def failure_reason(exc: BaseException) -> str:
    """What went wrong, in one line: the driver's own error for a database's (SQLAlchemy wraps
    asyncpg's, which wraps the socket's), its type and the first line of its message."""
    cause: BaseException = exc
    if isinstance(cause, DBAPIError) and cause.orig is not None:
        cause = cause.orig
    cause = cause.__cause__ or cause
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line}"


class DatabaseDown:
    """What `attempt` returns when Postgres could not be reached."""

    def __repr__(self) -> str:
        return "DATABASE_DOWN"


DATABASE_DOWN: Final = DatabaseDown()


async def attempt(
    sessionmaker: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[_T]],
    *,
    tenant_id: uuid.UUID | None = None,
    system: bool = False,
    durable: bool = True,
) -> _T | DatabaseDown:
    """Run `work` in one transaction; `DATABASE_DOWN` when Postgres is unreachable.

    The one place a step of the request path degrades on an outage (docs/reliability.md): the caller
    decides what that means (bypass the cache, spool the row). Every other error propagates.
    """
    try:
        async with transaction(sessionmaker, tenant_id=tenant_id, system=system, durable=durable) as session:
            return await work(session)
    except Exception as exc:
        if not is_database_outage(exc):
            raise
        return DATABASE_DOWN
