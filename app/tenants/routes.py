"""Admin routes of tenants and their keys (`/admin/tenants…`, `/admin/keys/…`): thin, over
`TenantService`, which the CLI uses too. Admin key or token only (docs/api-admin.md)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Response, delete, get, patch, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from app.dependencies import ADMIN_DEPENDENCIES, known_query
from app.services import Services
from app.tenants.auth import Principal
from app.tenants.schemas import (
    IssuedKeyOut,
    KeyIn,
    KeyOut,
    TenantCreatedOut,
    TenantIn,
    TenantOut,
    TenantPatch,
    out,
)
from app.tenants.service import IssuedKey, TenantDeletion, TenantService, delete_tenant


def issued(key: IssuedKey) -> IssuedKeyOut:
    return IssuedKeyOut(
        key_id=key.key.id,
        api_key=key.new.key,
        prefix=key.new.prefix,
        name=key.key.name,
        created_at=key.key.created_at,
    )


def forgetting(services: Services, content: Any, status_code: int = HTTP_200_OK) -> Response[Any]:
    """Drop this process's remembered keys now and again once the transaction has committed,
    so that no key resolved in between carries the old state."""
    services.authenticator.forget()
    return Response(
        content, status_code=status_code, background=BackgroundTask(services.authenticator.forget)
    )


class TenantAdminController(Controller):
    path = "/admin"
    tags = ("admin",)
    dependencies = ADMIN_DEPENDENCIES

    @post(
        "/tenants",
        status_code=HTTP_201_CREATED,
        summary="Create a tenant and its first API key",
        guards=[known_query()],
    )
    async def create_tenant(
        self,
        data: JSONBody[TenantIn],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> TenantCreatedOut:
        created = await TenantService(session, admin.actor).create(data.name, data.settings)
        return TenantCreatedOut(tenant=out(created.tenant, TenantOut), api_key=issued(created.first_key))

    @get(
        "/tenants",
        summary="List tenants (deleted ones only with include_deleted=true)",
        guards=[known_query("include_deleted")],
    )
    async def list_tenants(
        self,
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        include_deleted: FromQuery[bool] = False,
    ) -> list[TenantOut]:
        tenants = await TenantService(session, admin.actor).list(include_deleted=include_deleted)
        return [out(t, TenantOut) for t in tenants]

    @get("/tenants/{tenant_id:uuid}", summary="One tenant", guards=[known_query()])
    async def get_tenant(
        self,
        tenant_id: FromPath[uuid.UUID],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> TenantOut:
        return out(await TenantService(session, admin.actor).get(tenant_id), TenantOut)

    @patch(
        "/tenants/{tenant_id:uuid}",
        summary="Rename, suspend or resume a tenant, or change its settings",
        guards=[known_query()],
    )
    async def update_tenant(
        self,
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[TenantPatch],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
    ) -> Response[TenantOut]:
        tenant = await TenantService(session, admin.actor).update(tenant_id, data)
        # Keys resolved before the change carry the old status and settings.
        return forgetting(services, out(tenant, TenantOut))

    @delete(
        "/tenants/{tenant_id:uuid}",
        status_code=HTTP_200_OK,
        summary="Delete a tenant: cache, keys, quotas, usage; the ledger is anonymised unless included",
        guards=[known_query("include_ledger")],
    )
    async def delete_tenant(
        self,
        tenant_id: FromPath[uuid.UUID],
        admin: NamedDependency[Principal],
        services: NamedDependency[Services],
        include_ledger: FromQuery[bool] = False,
    ) -> TenantDeletion:
        return await delete_tenant(
            services.sessionmaker,
            admin.actor,
            tenant_id,
            include_ledger=include_ledger,
            keys_removed=services.authenticator.forget,
        )

    # Keys

    @post(
        "/tenants/{tenant_id:uuid}/keys",
        status_code=HTTP_201_CREATED,
        summary="Issue an API key",
        guards=[known_query()],
    )
    async def issue_key(
        self,
        tenant_id: FromPath[uuid.UUID],
        data: JSONBody[KeyIn],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> IssuedKeyOut:
        return issued(await TenantService(session, admin.actor).issue_key(tenant_id, name=data.name))

    @get("/tenants/{tenant_id:uuid}/keys", summary="A tenant's keys (prefixes only)", guards=[known_query()])
    async def list_keys(
        self,
        tenant_id: FromPath[uuid.UUID],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> list[KeyOut]:
        return [out(k, KeyOut) for k in await TenantService(session, admin.actor).list_keys(tenant_id)]

    @get("/keys", summary="The admin keys (prefixes only)", guards=[known_query()])
    async def list_admin_keys(
        self,
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
    ) -> list[KeyOut]:
        return [out(k, KeyOut) for k in await TenantService(session, admin.actor).list_admin_keys()]

    @delete(
        "/keys/{key_id:uuid}", status_code=HTTP_200_OK, summary="Revoke an API key", guards=[known_query()]
    )
    async def revoke_key(
        self,
        key_id: FromPath[uuid.UUID],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
    ) -> Response[KeyOut]:
        key = await TenantService(session, admin.actor).revoke_key(key_id)
        return forgetting(services, out(key, KeyOut))
