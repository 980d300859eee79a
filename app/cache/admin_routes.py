"""Admin route purging a tenant's cache entries (`DELETE /admin/tenants/{id}/cache`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from app.bounds import query_text, query_time
from app.cache.purge import CachePurge, PurgeFilter
from app.cache.scope import MAX_NAMESPACE_INPUT, namespace_name
from app.dependencies import ADMIN_DEPENDENCIES, known_query
from app.services import Services
from app.tenants.auth import Principal
from app.tenants.service import TenantService

MAX_AGE_S = 100 * 365 * 86400


class PurgedOut(msgspec.Struct):
    deleted: int


class CacheAdminController(Controller):
    path = "/admin"
    tags = ("admin",)
    dependencies = ADMIN_DEPENDENCIES

    @delete(
        "/tenants/{tenant_id:uuid}/cache",
        status_code=HTTP_200_OK,
        summary="Purge a tenant's cache entries, all or by model, namespace and age",
        guards=[
            known_query(
                "model",
                "namespace",
                "older_than",
                "created_before",
                times=("created_before",),
                numbers=("older_than",),
            )
        ],
    )
    async def purge_cache(
        self,
        tenant_id: FromPath[uuid.UUID],
        admin: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
        model: Annotated[str | None, QueryParameter(max_length=200)] = None,
        namespace: Annotated[str | None, QueryParameter(max_length=MAX_NAMESPACE_INPUT)] = None,
        older_than: Annotated[int | None, QueryParameter(ge=0, le=MAX_AGE_S)] = None,
        created_before: FromQuery[datetime | None] = None,
    ) -> PurgedOut:
        await TenantService(session, admin.actor).get(tenant_id)  # 404 for unknown and deleted
        created_before = query_time(created_before, "created_before")  # UTC, bounded (app.bounds)
        model = None if model is None else query_text(model, "model")
        namespace = None if namespace is None else namespace_name(query_text(namespace, "namespace"))
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
        purge = CachePurge(services.sessionmaker)
        await services.pipeline.writer.flush()  # answers this process stored after their responses
        return PurgedOut(deleted=await purge.purge(admin.actor, tenant_id, where, parameters))
