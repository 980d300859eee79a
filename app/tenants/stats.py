"""Per-tenant figures for `GET /admin/stats`: the ledger's counts and money in a window, and the
cache entries stored now. The same definitions as the analytics views (docs/analytics.md)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache.models import CacheEntry
from app.ledger.models import LedgerEntry
from app.tenants.models import Tenant, TenantStatus


@dataclass(frozen=True, slots=True)
class TenantStats:
    tenant_id: uuid.UUID
    tenant_name: str
    status: TenantStatus
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


async def tenant_stats(
    session: AsyncSession, since: datetime | None, until: datetime | None
) -> list[TenantStats]:
    """Per live tenant (and deleted ones with ledger rows in the window): the ledger's counts
    and money in [since, until), and the cache entries stored now."""
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
        .where((Tenant.status != TenantStatus.DELETED) | (ledger.c.requests > 0))
        .order_by(Tenant.created_at, Tenant.name)
    )
    rows = (await session.execute(stmt)).all()
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
