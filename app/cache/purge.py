"""Removing a tenant's cache entries in batches: admin purges and tenant deletion.

Each batch is its own short transaction, so that purging a large tenant never holds locks or
a snapshot long enough to slow other tenants down. The audit entry is written by the caller
in the first transaction; each later batch adds its rows to it, so the log always says
exactly what has been removed, even if the work stops half-way. A batch that runs past the
statement timeout (a loaded database) was rolled back whole: after a pause it is tried again at
half the size, down to `MIN_PURGE_BATCH` (at most seven tries from 5,000), and the next batches
keep the smaller size. These are the
only commits below the routes apart from tenant deletion (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.admin.audit import AuditRepository
from app.cache.models import CacheEntry
from app.db.engine import transaction
from app.db.errors import is_statement_timeout

log = logging.getLogger(__name__)

PURGE_BATCH = 5_000
# A batch this small that still times out means the database cannot do the work now: the error
# goes to the caller (a 503 with Retry-After), with what was removed so far audited.
MIN_PURGE_BATCH = 50
# A breath between batches lets other transactions take the locks and I/O in between.
BATCH_PAUSE_S = 0.005
# After a batch timed out, a longer one: the database is loaded.
RETRY_PAUSE_S = 0.2


@dataclass(frozen=True, slots=True)
class PurgeFilter:
    """Which of a tenant's cache entries a purge removes; None matches everything."""

    model: str | None = None
    namespace: str | None = None
    created_before: datetime | None = None

    def conditions(self, tenant_id: uuid.UUID) -> list[ColumnElement[bool]]:
        """The one WHERE clause of a purge: what it deletes and what its preview counts."""
        conditions = [CacheEntry.tenant_id == tenant_id]
        if self.model is not None:
            conditions.append(CacheEntry.model == self.model)
        if self.namespace is not None:
            conditions.append(CacheEntry.namespace == self.namespace)
        if self.created_before is not None:
            conditions.append(CacheEntry.created_at < self.created_before)
        return conditions


async def count_matching(session: AsyncSession, tenant_id: uuid.UUID, where: PurgeFilter) -> int:
    """How many entries a purge with this filter would remove now (the dashboard shows it before
    the purge is confirmed)."""
    stmt = select(func.count()).select_from(CacheEntry).where(*where.conditions(tenant_id))
    return int((await session.execute(stmt)).scalar_one())


async def purge_batch(
    session: AsyncSession, tenant_id: uuid.UUID, where: PurgeFilter, batch_size: int
) -> int:
    """Delete up to `batch_size` of the tenant's matching entries; the number deleted."""
    # Chosen once (MATERIALIZED): as a plain `IN (subquery)`, the planner may rescan the locking,
    # limited subquery for every row (a nested-loop semi-join, when the statistics say the tenant
    # is small); each rescan skips the rows this statement has already deleted and returns the
    # next ones, so one "batch" deleted every matching entry in one long statement.
    doomed = (
        select(CacheEntry.id)
        .where(*where.conditions(tenant_id))
        .limit(batch_size)
        .with_for_update()
        .cte("doomed")
        .prefix_with("MATERIALIZED")
    )
    # The tenant named on the delete too: it then reads the tenant's partition only.
    result = await session.execute(
        delete(CacheEntry).where(CacheEntry.tenant_id == tenant_id, CacheEntry.id.in_(select(doomed.c.id)))
    )
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
        while True:
            batch = self.batch_size
            try:
                async with transaction(self._sessionmaker, system=True) as session:
                    deleted = await purge_batch(session, tenant_id, where, batch)
                    audit = await AuditRepository(session).record(
                        actor, "cache.purge", tenant_id=tenant_id, filters=parameters, rows_affected=deleted
                    )
                break
            except Exception as exc:
                await self._shrink_or_raise(exc)
        if deleted == batch:
            deleted += await self.purge_rest(tenant_id, where, audit.id)
        return deleted

    async def purge_rest(self, tenant_id: uuid.UUID, where: PurgeFilter, audit_id: int) -> int:
        """Batches until nothing matches, each counted into the audit entry `audit_id`."""
        total = 0
        while True:
            await asyncio.sleep(BATCH_PAUSE_S)
            batch = self.batch_size
            try:
                async with transaction(self._sessionmaker, system=True) as session:
                    deleted = await purge_batch(session, tenant_id, where, batch)
                    await AuditRepository(session).add_rows(audit_id, deleted)
            except Exception as exc:
                await self._shrink_or_raise(exc)
                continue
            total += deleted
            if deleted < batch:
                return total

    async def _shrink_or_raise(self, error: Exception) -> None:
        """After a failed batch (rolled back whole): halve the batch when it ran out of time and
        can still shrink, and pause; otherwise the error stands."""
        if not is_statement_timeout(error) or self.batch_size <= MIN_PURGE_BATCH:
            raise error
        self.batch_size = max(MIN_PURGE_BATCH, self.batch_size // 2)
        log.warning("purge batch timed out: retried smaller", extra={"batch_size": self.batch_size})
        await asyncio.sleep(RETRY_PAUSE_S)
