"""Admin routes that belong to no single domain: the audit log and per-tenant stats.

The other admin routes live with their domain (app/tenants/routes.py, app/ledger/admin_routes.py,
app/cache/admin_routes.py); every change they make writes an audit entry in the transaction
that makes it (docs/api-admin.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.audit import AuditRepository
from app.dependencies import ADMIN_DEPENDENCIES
from app.errors import BadRequest
from app.ledger.rollup import ROLLUP_REQUEST_BUDGET_S, roll_up_ledger
from app.services import Services
from app.tenants.stats import TenantStats, tenant_stats

AUDIT_LIMIT_MAX = 1000


class StatsOut(msgspec.Struct):
    since: datetime | None
    until: datetime | None
    tenants: list[TenantStats]


class AuditOut(msgspec.Struct):
    id: int
    at: datetime
    actor: str
    action: str
    tenant_id: uuid.UUID | None
    filters: dict[str, Any]
    rows_affected: int | None


def utc(at: datetime | None) -> datetime | None:
    """Times without a zone are read as UTC."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


class AdminController(Controller):
    path = "/admin"
    tags = ("admin",)
    dependencies = ADMIN_DEPENDENCIES

    @get("/stats", summary="Per tenant: requests, hits, misses, hit rate, cost and avoided cost, entries")
    async def stats(
        self,
        session: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
    ) -> StatsOut:
        since, until = utc(since), utc(until)
        if since is not None and until is not None and since >= until:
            raise BadRequest("'since' must be before 'until'.")
        await services.pipeline.writer.flush()  # this process's bookings, written after their responses
        # Whole hours are read from the hourly rollup: the closed ones into it first, briefly.
        await roll_up_ledger(services.sessionmaker, budget_s=ROLLUP_REQUEST_BUDGET_S, wait=False)
        return StatsOut(since=since, until=until, tenants=await tenant_stats(session, since, until))

    @get("/audit", summary="The audit log, newest first")
    async def audit(
        self,
        session: NamedDependency[AsyncSession],
        tenant_id: FromQuery[uuid.UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=AUDIT_LIMIT_MAX)] = 100,
    ) -> list[AuditOut]:
        rows = await AuditRepository(session).list(tenant_id=tenant_id, limit=limit)
        return [msgspec.convert(r, AuditOut, from_attributes=True) for r in rows]
