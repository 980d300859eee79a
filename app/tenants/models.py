"""Tenants and their API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Enum, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, synonym

from app.db.base import Base, created_at, uuid_pk


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    # A tombstone: the row stays for the tenant's anonymised ledger rows (docs/api-admin.md).
    DELETED = "deleted"


class KeyRole(StrEnum):
    TENANT = "tenant"
    ADMIN = "admin"


def _as_text(enum: type[StrEnum], length: int) -> Enum:
    """The enum as the VARCHAR column it has always been (the CHECK constraints are the tables')."""
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Tenant(Base):
    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended', 'deleted')", name="status"),
        # One name whatever its case ("Acme", "acme", "ACME"): Unicode's full case folding.
        Index("uq_tenants_name_folded", text("casefold(name COLLATE pg_unicode_fast)"), unique=True),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[TenantStatus] = mapped_column(
        _as_text(TenantStatus, 20), nullable=False, server_default=TenantStatus.ACTIVE.value
    )
    # Cache policy (threshold, TTL, temperature limit, verifier strictness); see docs/caching.md.
    settings: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("role IN ('tenant', 'admin')", name="role"),
        # A tenant key belongs to a tenant; an admin key to none.
        CheckConstraint("(role = 'admin') = (tenant_id IS NULL)", name="owner"),
        Index("ix_api_keys_tenant_id", "tenant_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE")
    )
    role: Mapped[KeyRole] = mapped_column(
        _as_text(KeyRole, 10), nullable=False, server_default=KeyRole.TENANT.value
    )
    name: Mapped[str | None] = mapped_column(String(200))
    # SHA-256 of the whole key: keys are 256-bit random, so a fast hash is enough and
    # lookups stay one index probe. The key itself is shown once and never stored.
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, unique=True)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = created_at()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # The id under the name the API and CLI give it.
    key_id: Mapped[uuid.UUID] = synonym("id")
