"""Cache lookups read from a streaming replica, when one is configured (docs/scaling.md).

Only the searches go there (exact hash, nearest neighbours); the chosen entry is confirmed on the
primary before it is served, so an entry deleted or flagged a moment ago is never served from a
replica that has not replayed that yet, and everything a request writes goes to the primary.
An unreachable replica is left alone for a few seconds while lookups read the primary.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.engine import create_engine, create_sessionmaker, enter_tenant
from app.db.errors import is_database_outage
from app.settings import Settings

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5.0  # how long an unreachable replica is left alone


class ReadReplica:
    def __init__(self, engine: AsyncEngine | None) -> None:
        self.engine = engine
        self.sessionmaker = create_sessionmaker(engine) if engine is not None else None
        self._down_until = 0.0

    @classmethod
    def connect(cls, settings: Settings) -> ReadReplica:
        url = settings.database.read_replica_url
        return cls(create_engine(url, settings) if url else None)

    @asynccontextmanager
    async def reading(self, tenant_id: uuid.UUID) -> AsyncIterator[AsyncSession | None]:
        """A transaction on the replica in which only this tenant's rows are visible; None when
        there is no replica or it is unreachable (then read on the primary)."""
        session = await self._open(tenant_id)
        if session is None:
            yield None
            return
        try:
            yield session
        finally:
            await session.close()  # read only: nothing to commit

    async def _open(self, tenant_id: uuid.UUID) -> AsyncSession | None:
        if self.sessionmaker is None or time.monotonic() < self._down_until:
            return None
        session = self.sessionmaker()
        try:
            await session.begin()
            await enter_tenant(session, tenant_id)
        except Exception as exc:
            await session.close()
            if not is_database_outage(exc):
                raise
            log.warning(
                "read replica unreachable; lookups read the primary", extra={"error": type(exc).__name__}
            )
            self._down_until = time.monotonic() + RETRY_AFTER_S
            return None
        return session

    async def dispose(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
