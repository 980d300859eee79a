"""Admin routes (admin key or token only): tenants, keys, quotas, purges, stats, prices, audit.

Every change writes an audit entry in the transaction that makes it (docs/api-admin.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, delete, get, patch, post, put
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.audit import AdminRepository, AuditRepository, PurgeFilter
from app.cache.policy import parse_policy
from app.dependencies import ADMIN_DEPENDENCIES
from app.errors import BadRequest, NotFound
from app.ledger.repository import LedgerRepository, ModelPrice
from app.services import Services
from app.tenants.auth import Principal
from app.tenants.models import Tenant
from app.tenants.repository import KeyRepository, TenantRepository
from app.tenants.schemas import (
    AuditOut,
    IssuedKeyOut,
    KeyIn,
    KeyOut,
    Period,
    PriceIn,
    PriceOut,
    PurgedOut,
    QuotaIn,
    QuotaOut,
    StatsOut,
    TenantCreatedOut,
    TenantIn,
    TenantOut,
    TenantPatch,
)
from app.tenants.service import AdminService, TenantDeletion

AUDIT_LIMIT_MAX = 1000


def utc(at: datetime | None) -> datetime | None:
    """Times without a zone are read as UTC."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def forgetting(services: Services, content: Any, status_code: int = HTTP_200_OK) -> Response[Any]:
    """Drop this process's remembered keys now and again once the transaction has committed,
    so that no key resolved in between carries the old state."""
    services.authenticator.forget()
    return Response(
        content, status_code=status_code, background=BackgroundTask(services.authenticator.forget)
    )


async def live_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    tenant = await TenantRepository(session).get_live(tenant_id)
    if tenant is None:
        raise NotFound(f"No tenant {tenant_id}.")
    return tenant


class AdminController(Controller):
    path = "/admin"
    tags = ("admin",)
    dependencies = ADMIN_DEPENDENCIES

    # Tenants

    @post("/tenants", status_code=HTTP_201_CREATED, summary="Create a tenant and its first API key")
    async def create_tenant(
        self,
        data: JSONBody[TenantIn],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> TenantCreatedOut:
        parse_policy(data.settings)  # 422 on settings the cache could not use
        tenant = await TenantRepository(session).create(data.name.strip(), data.settings)
        key, new = await KeyRepository(session).issue(tenant.id, name="first key")
        await AuditRepository(session).record(
            admin.actor,
            "tenant.create",
            tenant_id=tenant.id,
            filters={"name": tenant.name, "settings": tenant.settings, "key_id": str(key.id)},
            rows_affected=2,
        )
        return TenantCreatedOut(tenant=TenantOut.of(tenant), api_key=IssuedKeyOut.of(key, new))

    @get("/tenants", summary="List tenants (deleted ones are not listed)")
    async def list_tenants(self, session: NamedDependency[AsyncSession]) -> list[TenantOut]:
        return [TenantOut.of(t) for t in await TenantRepository(session).list_live()]

    @get("/tenants/{tenant_id:uuid}", summary="One tenant")
    async def get_tenant(
        self, tenant_id: FromPath[uuid.UUID], session: NamedDependency[AsyncSession]
    ) -> TenantOut:
        return TenantOut.of(await live_tenant(session, tenant_id))

    @patch("/tenants/{tenant_id:uuid}", summary="Rename, suspend or resume a tenant, or change its settings")
    async def update_tenant(
        self,
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[TenantPatch],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
    ) -> Response[TenantOut]:
        tenant = await live_tenant(session, tenant_id)
        changes = {
            field: getattr(data, field)
            for field in data.__struct_fields__
            if getattr(data, field) is not msgspec.UNSET
        }
        if isinstance(changes.get("name"), str):
            changes["name"] = changes["name"].strip()
        if "settings" in changes:
            parse_policy(changes["settings"])
        tenant = await TenantRepository(session).update(tenant, **changes)
        await AuditRepository(session).record(
            admin.actor, "tenant.update", tenant_id=tenant_id, filters=changes, rows_affected=1
        )
        # Keys resolved before the change carry the old status and settings.
        return forgetting(services, TenantOut.of(tenant))

    @delete(
        "/tenants/{tenant_id:uuid}",
        status_code=HTTP_200_OK,
        summary="Delete a tenant: cache, keys, quotas, usage; the ledger is anonymised unless included",
    )
    async def delete_tenant(
        self,
        tenant_id: FromPath[uuid.UUID],
        admin: NamedDependency[Principal],
        services: NamedDependency[Services],
        include_ledger: FromQuery[bool] = False,
    ) -> TenantDeletion:
        admin_service = AdminService(services.sessionmaker, services.authenticator)
        deletion = await admin_service.delete_tenant(admin.actor, tenant_id, include_ledger=include_ledger)
        return deletion

    # Keys

    @post("/tenants/{tenant_id:uuid}/keys", status_code=HTTP_201_CREATED, summary="Issue an API key")
    async def issue_key(
        self,
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[KeyIn],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> IssuedKeyOut:
        await live_tenant(session, tenant_id)
        key, new = await KeyRepository(session).issue(tenant_id, name=data.name)
        await AuditRepository(session).record(
            admin.actor,
            "key.issue",
            tenant_id=tenant_id,
            filters={"key_id": str(key.id), "name": key.name, "prefix": key.prefix},
            rows_affected=1,
        )
        return IssuedKeyOut.of(key, new)

    @get("/tenants/{tenant_id:uuid}/keys", summary="A tenant's keys (prefixes only)")
    async def list_keys(
        self, tenant_id: FromPath[uuid.UUID], session: NamedDependency[AsyncSession]
    ) -> list[KeyOut]:
        await live_tenant(session, tenant_id)
        return [KeyOut.of(k) for k in await KeyRepository(session).list_for_tenant(tenant_id)]

    @delete("/keys/{key_id:uuid}", status_code=HTTP_200_OK, summary="Revoke an API key")
    async def revoke_key(
        self,
        key_id: FromPath[uuid.UUID],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
    ) -> Response[KeyOut]:
        keys = KeyRepository(session)
        key = await keys.get(key_id)
        if key is None:
            raise NotFound(f"No API key {key_id}.")
        already = key.revoked_at is not None
        key = await keys.revoke(key)
        await AuditRepository(session).record(
            admin.actor,
            "key.revoke",
            tenant_id=key.tenant_id,
            filters={"key_id": str(key_id), "prefix": key.prefix},
            rows_affected=0 if already else 1,
        )
        return forgetting(services, KeyOut.of(key))

    # Quotas

    @get("/tenants/{tenant_id:uuid}/quotas", summary="A tenant's quotas")
    async def list_quotas(
        self, tenant_id: FromPath[uuid.UUID], session: NamedDependency[AsyncSession]
    ) -> list[QuotaOut]:
        await live_tenant(session, tenant_id)
        return [QuotaOut.of(q) for q in await LedgerRepository(session).quotas(tenant_id)]

    @put("/tenants/{tenant_id:uuid}/quotas/{period:str}", summary="Set a tenant's quota for a day or a month")
    async def put_quota(
        self,
        tenant_id: FromPath[uuid.UUID],
        period: FromPath[Period],
        data: JSONBody[QuotaIn],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> QuotaOut:
        await live_tenant(session, tenant_id)
        quota = await LedgerRepository(session).put_quota(
            tenant_id,
            period,
            max_requests=data.max_requests,
            max_tokens=data.max_tokens,
            max_cost_usd=data.max_cost_usd,
        )
        await AuditRepository(session).record(
            admin.actor,
            "quota.put",
            tenant_id=tenant_id,
            filters={"period": period, **msgspec.to_builtins(data)},
            rows_affected=1,
        )
        return QuotaOut.of(quota)

    @delete(
        "/tenants/{tenant_id:uuid}/quotas/{period:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Remove a quota (the period becomes unlimited)",
    )
    async def delete_quota(
        self,
        tenant_id: FromPath[uuid.UUID],
        period: FromPath[Period],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> None:
        await live_tenant(session, tenant_id)
        if not await LedgerRepository(session).delete_quota(tenant_id, period):
            raise NotFound(f"Tenant {tenant_id} has no {period} quota.")
        await AuditRepository(session).record(
            admin.actor, "quota.delete", tenant_id=tenant_id, filters={"period": period}, rows_affected=1
        )

    # Cache purge

    @delete(
        "/tenants/{tenant_id:uuid}/cache",
        status_code=HTTP_200_OK,
        summary="Purge a tenant's cache entries, all or by model, namespace and age",
    )
    async def purge_cache(
        self,
        tenant_id: FromPath[uuid.UUID],
        admin: NamedDependency[Principal],
        services: NamedDependency[Services],
        model: FromQuery[str | None] = None,
        namespace: FromQuery[str | None] = None,
        older_than: Annotated[int | None, QueryParameter(ge=0, le=100 * 365 * 86400)] = None,
        created_before: FromQuery[datetime | None] = None,
    ) -> PurgedOut:
        created_before = utc(created_before)
        # Age becomes one cutoff, fixed when the purge starts, however long its batches take.
        cutoffs = [c for c in (created_before,) if c is not None]
        if older_than is not None:
            cutoffs.append(datetime.now(UTC) - timedelta(seconds=older_than))
        where = PurgeFilter(model=model, namespace=namespace, created_before=min(cutoffs, default=None))
        parameters: dict[str, Any] = {
            "model": model,
            "namespace": namespace,
            "older_than": older_than,
            "created_before": created_before.isoformat() if created_before else None,
        }
        parameters = {k: v for k, v in parameters.items() if v is not None}
        admin_service = AdminService(services.sessionmaker, services.authenticator)
        return PurgedOut(deleted=await admin_service.purge_cache(admin.actor, tenant_id, where, parameters))

    # Stats, prices, audit

    @get("/stats", summary="Per tenant: requests, hits, misses, hit rate, cost and avoided cost, entries")
    async def stats(
        self,
        session: NamedDependency[AsyncSession],
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
    ) -> StatsOut:
        since, until = utc(since), utc(until)
        if since is not None and until is not None and since >= until:
            raise BadRequest("'since' must be before 'until'.")
        rows = await AdminRepository(session).stats(since, until)
        return StatsOut(since=since, until=until, tenants=rows)

    @get("/prices", summary="Every price, newest first per model (history kept)")
    async def list_prices(self, session: NamedDependency[AsyncSession]) -> list[PriceOut]:
        return [PriceOut.of(p) for p in await LedgerRepository(session).price_rows()]

    @post("/prices", status_code=HTTP_201_CREATED, summary="Add a price; it applies from effective_from")
    async def add_price(
        self,
        data: JSONBody[PriceIn],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
    ) -> PriceOut:
        price = ModelPrice(
            model=data.model,
            input_per_mtok=data.input_per_mtok,
            output_per_mtok=data.output_per_mtok,
            cached_input_per_mtok=data.cached_input_per_mtok,
            effective_from=data.effective_from or datetime.now(UTC),
        )
        row = await LedgerRepository(session).add_price(price)
        await AuditRepository(session).record(
            admin.actor, "price.add", filters=msgspec.to_builtins(PriceOut.of(row)), rows_affected=1
        )
        services.prices.invalidate()
        return PriceOut.of(row)

    @get("/audit", summary="The audit log, newest first")
    async def audit(
        self,
        session: NamedDependency[AsyncSession],
        tenant_id: FromQuery[uuid.UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=AUDIT_LIMIT_MAX)] = 100,
    ) -> list[AuditOut]:
        rows = await AuditRepository(session).list(tenant_id=tenant_id, limit=limit)
        return [AuditOut.of(r) for r in rows]
