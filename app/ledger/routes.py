"""The tenant's own usage."""

from __future__ import annotations

import uuid
from typing import ClassVar

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from app.dependencies import TENANT_DEPENDENCIES
from app.tenants.auth import Principal


class UsageOut(msgspec.Struct):
    tenant_id: uuid.UUID
    tenant_name: str | None


class UsageController(Controller):
    path = "/v1/usage"
    tags: ClassVar[list[str]] = ["usage"]
    dependencies = TENANT_DEPENDENCIES

    @get("/", summary="The calling tenant's usage and what its quotas leave")
    async def usage(self, tenant: NamedDependency[Principal]) -> UsageOut:
        return UsageOut(tenant_id=tenant.require_tenant(), tenant_name=tenant.tenant_name)
