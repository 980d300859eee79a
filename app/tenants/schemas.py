"""Request and response bodies of the tenant and key admin routes (docs/api-admin.md).

Responses are built from the ORM rows with `msgspec.convert(row, Out, from_attributes=True)`
(`out()` below): no field-by-field copies to keep in step with the models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from app.tenants.models import KeyRole, TenantStatus

# Names are at most 200 characters once composed (NFC; `shown_name`, a 422 past it): what a
# client sends may be longer decomposed ("é" as "e" and a combining accent), within this bound.
NAME_INPUT_CHARS = 800
TenantName = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_INPUT_CHARS, pattern=r"\S")]
KeyName = Annotated[str, msgspec.Meta(max_length=NAME_INPUT_CHARS)]

Out = TypeVar("Out", bound=msgspec.Struct)


def out(row: object, kind: type[Out]) -> Out:
    """An ORM row (or any object with the fields as attributes) as a response struct."""
    return msgspec.convert(row, kind, from_attributes=True)


class TenantIn(msgspec.Struct, forbid_unknown_fields=True):
    name: TenantName
    # The tenant's cache policy; checked against app.cache.policy.TenantCachePolicy (422).
    settings: dict[str, Any] = msgspec.field(default_factory=dict)


class TenantPatch(msgspec.Struct, forbid_unknown_fields=True):
    name: TenantName | msgspec.UnsetType = msgspec.UNSET
    # Deletion has its own route; a patch only suspends or resumes (TenantStatus values).
    status: Literal["active", "suspended"] | msgspec.UnsetType = msgspec.UNSET
    settings: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET

    def changes(self) -> dict[str, Any]:
        """The fields given, names stripped."""
        given = {
            field: getattr(self, field)
            for field in self.__struct_fields__
            if getattr(self, field) is not msgspec.UNSET
        }
        if isinstance(given.get("name"), str):
            given["name"] = given["name"].strip()
        if "status" in given:
            given["status"] = TenantStatus(given["status"])
        return given


class TenantOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    status: TenantStatus
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime | None


class KeyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: KeyName | None = None


class IssuedKeyOut(msgspec.Struct):
    """A new key: `api_key` is shown this once and never stored."""

    key_id: uuid.UUID
    api_key: str
    prefix: str
    name: str | None
    created_at: datetime


class KeyOut(msgspec.Struct):
    """A key as listed: its prefix, never the key nor its hash."""

    key_id: uuid.UUID
    tenant_id: uuid.UUID | None
    role: KeyRole
    prefix: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class TenantCreatedOut(msgspec.Struct):
    tenant: TenantOut
    api_key: IssuedKeyOut
