"""SQL of admin work that spans domains: the audit log, cache purges, per-tenant stats."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.models import AuditLog
from app.cache.models import CacheEntry
from app.ledger.models import LedgerEntry
from app.tenants.models import Tenant


@dataclass(frozen=True, slots=True)
class PurgeFilter:
    """Which of a tenant's cache entries a purge removes; None matches everything."""

    model: str | None = None
    namespace: str | None = None
    created_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class TenantStats:
    tenant_id: uuid.UUID
    tenant_name: str
    status: str
    requests: int
    hits: int
    misses: int
    bypasses: int
    errors: int
    # hits / (hits + misses); null without any cacheable request in the window.
    hit_rate: float | None
    cost_usd: Decimal
    avoided_cost_usd: Decimal
    cache_entries: int


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        actor: str,
        action: str,
        *,
        tenant_id: uuid.UUID | None = None,
        filters: dict[str, Any] | None = None,
        rows_affected: int | None = None,
    ) -> AuditLog:
        row = AuditLog(
            actor=actor,
            action=action,
            tenant_id=tenant_id,
            filters=filters or {},
            rows_affected=rows_affected,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def add_rows(self, audit_id: int, rows: int) -> None:
        """Count more affected rows into an entry (work done in several transactions)."""
        stmt = (
            update(AuditLog)
            .where(AuditLog.id == audit_id)
            .values(rows_affected=func.coalesce(AuditLog.rows_affected, 0) + rows)
        )
        await self.session.execute(stmt)

    async def list(self, *, tenant_id: uuid.UUID | None, limit: int) -> Sequence[AuditLog]:
        stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
        if tenant_id is not None:
            stmt = stmt.where(AuditLog.tenant_id == tenant_id)
        return (await self.session.scalars(stmt)).all()


class AdminRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def purge_batch(self, tenant_id: uuid.UUID, where: PurgeFilter, batch_size: int) -> int:
        """Delete up to `batch_size` of the tenant's matching entries; the number deleted."""
        conditions = [CacheEntry.tenant_id == tenant_id]
        if where.model is not None:
            conditions.append(CacheEntry.model == where.model)
        if where.namespace is not None:
            conditions.append(CacheEntry.namespace == where.namespace)
        if where.created_before is not None:
            conditions.append(CacheEntry.created_at < where.created_before)
        doomed = select(CacheEntry.id).where(*conditions).limit(batch_size).with_for_update()
        result = await self.session.execute(
            delete(CacheEntry).where(CacheEntry.id.in_(doomed.scalar_subquery()))
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def stats(self, since: datetime | None, until: datetime | None) -> list[TenantStats]:
        """Per live tenant (and deleted ones with ledger rows in the window): the ledger's
        counts and money in [since, until), and the cache entries stored now."""
        window = [LedgerEntry.tenant_id == Tenant.id]
        if since is not None:
            window.append(LedgerEntry.created_at >= since)
        if until is not None:
            window.append(LedgerEntry.created_at < until)
        status = LedgerEntry.cache_status

        def count_of(value: str) -> Any:
            return func.count().filter(status == value)

        ledger = (
            select(
                func.count(LedgerEntry.id).label("requests"),
                count_of("hit").label("hits"),
                count_of("miss").label("misses"),
                count_of("bypass").label("bypasses"),
                count_of("error").label("errors"),
                func.coalesce(func.sum(LedgerEntry.cost_usd), 0).label("cost_usd"),
                func.coalesce(func.sum(LedgerEntry.avoided_cost_usd), 0).label("avoided_cost_usd"),
            )
            .where(and_(*window))
            .lateral("l")
        )
        entries = (
            select(func.count(CacheEntry.id).label("cache_entries"))
            .where(CacheEntry.tenant_id == Tenant.id)
            .lateral("e")
        )
        stmt = (
            select(Tenant.id, Tenant.name, Tenant.status, ledger, entries)
            .select_from(Tenant)
            .join(ledger, true())
            .join(entries, true())
            .where((Tenant.status != "deleted") | (ledger.c.requests > 0))
            .order_by(Tenant.created_at, Tenant.name)
        )
        rows = (await self.session.execute(stmt)).all()
        return [
            TenantStats(
                tenant_id=row.id,
                tenant_name=row.name,
                status=row.status,
                requests=row.requests,
                hits=row.hits,
                misses=row.misses,
                bypasses=row.bypasses,
                errors=row.errors,
                hit_rate=row.hits / (row.hits + row.misses) if row.hits + row.misses else None,
                cost_usd=Decimal(row.cost_usd),
                avoided_cost_usd=Decimal(row.avoided_cost_usd),
                cache_entries=row.cache_entries,
            )
            for row in rows
        ]
