"""Admin routes (admin key or token only)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from app.dependencies import ADMIN_DEPENDENCIES
from app.tenants.models import Tenant
from app.tenants.repository import TenantRepository


class TenantOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    status: str
    settings: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, tenant: Tenant) -> TenantOut:
        return cls(
            id=tenant.id,
            name=tenant.name,
            status=tenant.status,
            settings=tenant.settings,
            created_at=tenant.created_at,
        )


class TenantAdminController(Controller):
    path = "/admin/tenants"
    tags: ClassVar[list[str]] = ["admin"]
    dependencies = ADMIN_DEPENDENCIES

    @get("/", summary="List tenants")
    async def list_tenants(self, session: NamedDependency[AsyncSession]) -> list[TenantOut]:
        return [TenantOut.of(t) for t in await TenantRepository(session).list()]
