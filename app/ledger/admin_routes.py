"""Admin routes of quotas and prices (`/admin/tenants/{id}/quotas…`, `/admin/prices`): thin,
over `LedgerAdminService`, which the CLI uses too. Admin key or token only."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post, put
from litestar import delete as delete_route
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from app.dependencies import ADMIN_DEPENDENCIES, known_query
from app.ledger.schemas import Period, PriceIn, PriceOut, QuotaIn, QuotaOut
from app.ledger.service import LedgerAdminService
from app.services import Services
from app.tenants.auth import Principal
from app.tenants.service import TenantService


class LedgerAdminController(Controller):
    path = "/admin"
    tags = ("admin",)
    dependencies = ADMIN_DEPENDENCIES

    @get("/tenants/{tenant_id:uuid}/quotas", summary="A tenant's quotas", guards=[known_query()])
    async def list_quotas(
        self,
        tenant_id: FromPath[uuid.UUID],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> list[QuotaOut]:
        await TenantService(session, admin.actor).get(tenant_id)
        quotas = await LedgerAdminService(session, admin.actor).quotas(tenant_id)
        return [QuotaOut.of(q) for q in quotas]

    @put(
        "/tenants/{tenant_id:uuid}/quotas/{period:str}",
        summary="Set a tenant's quota for a day or a month",
        guards=[known_query()],
    )
    async def put_quota(
        self,
        tenant_id: FromPath[uuid.UUID],
        period: FromPath[Period],
        data: JSONBody[QuotaIn],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> QuotaOut:
        await TenantService(session, admin.actor).get(tenant_id)
        quota = await LedgerAdminService(session, admin.actor).put_quota(tenant_id, period, data)
        return QuotaOut.of(quota)

    @delete_route(
        "/tenants/{tenant_id:uuid}/quotas/{period:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Remove a quota (the period becomes unlimited)",
        guards=[known_query()],
    )
    async def delete_quota(
        self,
        tenant_id: FromPath[uuid.UUID],
        period: FromPath[Period],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> None:
        await TenantService(session, admin.actor).get(tenant_id)
        await LedgerAdminService(session, admin.actor).delete_quota(tenant_id, period)

    @get("/prices", summary="Every price, newest first per model (history kept)", guards=[known_query()])
    async def list_prices(
        self, admin: NamedDependency[Principal], session: NamedDependency[AsyncSession]
    ) -> list[PriceOut]:
        prices = await LedgerAdminService(session, admin.actor).prices()
        return [PriceOut.of(p) for p in prices]

    @post(
        "/prices",
        status_code=HTTP_201_CREATED,
        summary="Add a price; it applies from effective_from",
        guards=[known_query()],
    )
    async def add_price(
        self,
        data: JSONBody[PriceIn],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
    ) -> PriceOut:
        row = await LedgerAdminService(session, admin.actor).add_price(data)
        services.prices.invalidate()
        return PriceOut.of(row)
