"""Removing a tenant's cache entries in batches: admin purges and tenant deletion.

Each batch is its own short transaction, so that purging a large tenant never holds locks or
a snapshot long enough to slow other tenants down. The audit entry is written by the caller
in the first transaction; each later batch adds its rows to it, so the log always says
exactly what has been removed, even if the work stops half-way. These are the only commits
below the routes apart from tenant deletion (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.admin.audit import AuditRepository
from app.cache.models import CacheEntry
from app.db.engine import transaction

PURGE_BATCH = 5_000
# A breath between batches lets other transactions take the locks and I/O in between.
BATCH_PAUSE_S = 0.005


@dataclass(frozen=True, slots=True)
class PurgeFilter:
    """Which of a tenant's cache entries a purge removes; None matches everything."""

    model: str | None = None
    namespace: str | None = None
    created_before: datetime | None = None


async def purge_batch(
    session: AsyncSession, tenant_id: uuid.UUID, where: PurgeFilter, batch_size: int
) -> int:
    """Delete up to `batch_size` of the tenant's matching entries; the number deleted."""
    conditions = [CacheEntry.tenant_id == tenant_id]
    if where.model is not None:
        conditions.append(CacheEntry.model == where.model)
    if where.namespace is not None:
        conditions.append(CacheEntry.namespace == where.namespace)
    if where.created_before is not None:
        conditions.append(CacheEntry.created_at < where.created_before)
    doomed = select(CacheEntry.id).where(*conditions).limit(batch_size).with_for_update()
    result = await session.execute(delete(CacheEntry).where(CacheEntry.id.in_(doomed.scalar_subquery())))
    return int(result.rowcount)  # type: ignore[attr-defined]


class CachePurge:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, batch_size: int = PURGE_BATCH
    ) -> None:
        self._sessionmaker = sessionmaker
        self.batch_size = batch_size

    async def purge(
        self, actor: str, tenant_id: uuid.UUID, where: PurgeFilter, parameters: dict[str, Any]
    ) -> int:
        """Delete the tenant's matching entries, audited as `cache.purge`; the exact number deleted.
        The caller has checked that the tenant exists."""
        async with transaction(self._sessionmaker, system=True) as session:
            deleted = await purge_batch(session, tenant_id, where, self.batch_size)
            audit = await AuditRepository(session).record(
                actor, "cache.purge", tenant_id=tenant_id, filters=parameters, rows_affected=deleted
            )
        if deleted == self.batch_size:
            deleted += await self.purge_rest(tenant_id, where, audit.id)
        return deleted

    async def purge_rest(self, tenant_id: uuid.UUID, where: PurgeFilter, audit_id: int) -> int:
        """Batches until nothing matches, each counted into the audit entry `audit_id`."""
        total = 0
        while True:
            await asyncio.sleep(BATCH_PAUSE_S)
            async with transaction(self._sessionmaker, system=True) as session:
                deleted = await purge_batch(session, tenant_id, where, self.batch_size)
                await AuditRepository(session).add_rows(audit_id, deleted)
            total += deleted
            if deleted < self.batch_size:
                return total
