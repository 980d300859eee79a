"""Request and response bodies of the admin API (docs/api-admin.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from app.admin.audit import TenantStats
from app.admin.models import AuditLog
from app.ledger.models import Price, Quota
from app.tenants.keys import NewKey
from app.tenants.models import ApiKey, Tenant

TenantName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
KeyName = Annotated[str, msgspec.Meta(max_length=200)]
Model = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Period = Literal["day", "month"]

# Upper bounds of the NUMERIC columns, so that a typo is a 4xx and not a database error.
MAX_PRICE = Decimal("1000000")  # NUMERIC(12, 6)
MAX_MONEY = Decimal("10000000000")  # NUMERIC(20, 10)


def check_money(name: str, value: Decimal | None, bound: Decimal) -> None:
    if value is not None and not (value.is_finite() and 0 <= value < bound):
        raise ValueError(f"{name} must be a number from 0 to below {bound}")


class TenantIn(msgspec.Struct, forbid_unknown_fields=True):
    name: TenantName
    settings: dict[str, Any] = msgspec.field(default_factory=dict)


class TenantPatch(msgspec.Struct, forbid_unknown_fields=True):
    name: TenantName | msgspec.UnsetType = msgspec.UNSET
    status: Literal["active", "suspended"] | msgspec.UnsetType = msgspec.UNSET
    settings: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class TenantOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    status: str
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime | None

    @classmethod
    def of(cls, tenant: Tenant) -> TenantOut:
        return cls(
            id=tenant.id,
            name=tenant.name,
            status=tenant.status,
            settings=tenant.settings,
            created_at=tenant.created_at,
            updated_at=tenant.updated_at,
        )


class KeyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: KeyName | None = None


class IssuedKeyOut(msgspec.Struct):
    """A new key: `api_key` is shown this once and never stored."""

    key_id: uuid.UUID
    api_key: str
    prefix: str
    name: str | None
    created_at: datetime

    @classmethod
    def of(cls, key: ApiKey, new: NewKey) -> IssuedKeyOut:
        return cls(
            key_id=key.id, api_key=new.key, prefix=new.prefix, name=key.name, created_at=key.created_at
        )


class KeyOut(msgspec.Struct):
    key_id: uuid.UUID
    tenant_id: uuid.UUID | None
    role: str
    prefix: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(
            key_id=key.id,
            tenant_id=key.tenant_id,
            role=key.role,
            prefix=key.prefix,
            name=key.name,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
        )


class TenantCreatedOut(msgspec.Struct):
    tenant: TenantOut
    api_key: IssuedKeyOut


class QuotaIn(msgspec.Struct, forbid_unknown_fields=True):
    """Limits for one period; null (or absent) means unlimited."""

    max_requests: Count | None = None
    max_tokens: Count | None = None
    max_cost_usd: Decimal | None = None

    def __post_init__(self) -> None:
        check_money("max_cost_usd", self.max_cost_usd, MAX_MONEY)


class QuotaOut(msgspec.Struct):
    tenant_id: uuid.UUID
    period: str
    max_requests: int | None
    max_tokens: int | None
    max_cost_usd: Decimal | None

    @classmethod
    def of(cls, quota: Quota) -> QuotaOut:
        return cls(
            tenant_id=quota.tenant_id,
            period=quota.period,
            max_requests=quota.max_requests,
            max_tokens=quota.max_tokens,
            max_cost_usd=quota.max_cost_usd,
        )


class PurgedOut(msgspec.Struct):
    deleted: int


class PriceIn(msgspec.Struct, forbid_unknown_fields=True):
    model: Model
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None
    # Absent: now. A price in the future takes over when its time comes.
    effective_from: datetime | None = None

    def __post_init__(self) -> None:
        check_money("input_per_mtok", self.input_per_mtok, MAX_PRICE)
        check_money("output_per_mtok", self.output_per_mtok, MAX_PRICE)
        check_money("cached_input_per_mtok", self.cached_input_per_mtok, MAX_PRICE)
        if self.effective_from is not None and self.effective_from.tzinfo is None:
            raise ValueError("effective_from needs a time zone (e.g. 2026-01-01T00:00:00Z)")


class PriceOut(msgspec.Struct):
    id: uuid.UUID
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None
    effective_from: datetime

    @classmethod
    def of(cls, price: Price) -> PriceOut:
        return cls(
            id=price.id,
            model=price.model,
            input_per_mtok=price.input_per_mtok,
            output_per_mtok=price.output_per_mtok,
            cached_input_per_mtok=price.cached_input_per_mtok,
            effective_from=price.effective_from,
        )


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

    @classmethod
    def of(cls, row: AuditLog) -> AuditOut:
        return cls(
            id=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            tenant_id=row.tenant_id,
            filters=row.filters,
            rows_affected=row.rows_affected,
        )
