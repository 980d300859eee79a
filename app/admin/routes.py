"""Admin routes that belong to no single domain: the audit log and per-tenant stats.

The other admin routes live with their domain (app/tenants/routes.py, app/ledger/admin_routes.py,
app/cache/admin_routes.py); every change they make writes an audit entry in the transaction
that makes it (docs/api-admin.md)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.audit import AuditRepository
from app.bounds import MAX_BIGINT, query_time
from app.dependencies import ADMIN_DEPENDENCIES, known_query
from app.errors import BadRequest
from app.ledger.pricing import decimal_text
from app.ledger.rollup import roll_up_for_readers
from app.services import Services
from app.tenants.models import TenantStatus
from app.tenants.stats import TenantStats, tenant_stats

AUDIT_LIMIT_MAX = 1000


class TenantStatsOut(msgspec.Struct):
    """`TenantStats` with its money as decimal text ("0.0003636500"), never in exponent form."""

    tenant_id: uuid.UUID
    tenant_name: str
    status: TenantStatus
    requests: int
    hits: int
    misses: int
    bypasses: int
    errors: int
    hit_rate: float | None
    cost_usd: str
    avoided_cost_usd: str
    cache_entries: int

    @classmethod
    def of(cls, stats: TenantStats) -> TenantStatsOut:
        figures = {field.name: getattr(stats, field.name) for field in dataclasses.fields(stats)}
        figures["cost_usd"] = decimal_text(stats.cost_usd)
        figures["avoided_cost_usd"] = decimal_text(stats.avoided_cost_usd)
        return cls(**figures)


class StatsOut(msgspec.Struct):
    since: datetime | None
    until: datetime | None
    tenants: list[TenantStatsOut]


class AuditOut(msgspec.Struct):
    id: int
    at: datetime
    actor: str
    action: str
    tenant_id: uuid.UUID | None
    filters: dict[str, Any]
    rows_affected: int | None


class AdminController(Controller):
    path = "/admin"
    tags = ("admin",)
    dependencies = ADMIN_DEPENDENCIES

    @get(
        "/stats",
        summary="Per tenant: requests, hits, misses, hit rate, cost and avoided cost, entries",
        guards=[known_query("since", "until", times=("since", "until"))],
    )
    async def stats(
        self,
        session: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
    ) -> StatsOut:
        # In UTC, within what Postgres and Python both hold (app.bounds): outside, a 400.
        since, until = query_time(since, "since"), query_time(until, "until")
        if since is not None and until is not None and since >= until:
            raise BadRequest("'since' must be before 'until'.")
        await services.pipeline.writer.flush()  # this process's bookings, written after their responses
        # Whole hours are read from the hourly rollup: the closed ones into it first, briefly.
        await roll_up_for_readers(services.sessionmaker)
        stats = await tenant_stats(session, since, until)
        return StatsOut(since=since, until=until, tenants=[TenantStatsOut.of(s) for s in stats])

    @get(
        "/audit",
        summary="The audit log, newest first",
        guards=[known_query("tenant_id", "limit", "before", "action", numbers=("limit", "before"))],
    )
    async def audit(
        self,
        session: NamedDependency[AsyncSession],
        tenant_id: FromQuery[uuid.UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=AUDIT_LIMIT_MAX)] = 100,
        before: Annotated[int | None, QueryParameter(ge=1, le=MAX_BIGINT)] = None,
        action: Annotated[str | None, QueryParameter(min_length=1, max_length=100)] = None,
    ) -> list[AuditOut]:
        """Newest first; `before` (an entry's id) pages back past it, `action` keeps one kind."""
        rows = await AuditRepository(session).list(
            tenant_id=tenant_id, limit=limit, before=before, action=action
        )
        return [msgspec.convert(r, AuditOut, from_attributes=True) for r in rows]
