"""Prices, the append-only ledger, quotas and usage counters. Money is NUMERIC, never float."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, created_at, uuid_pk

Money = Numeric(20, 10)
# The hourly rollup's sums of Money: room for any hour's rows (10^18 of them at a row's most).
MoneySum = Numeric(38, 10)
PricePerMTok = Numeric(12, 6)


class Price(Base):
    __tablename__ = "prices"
    __table_args__ = (UniqueConstraint("model", "effective_from"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    input_per_mtok: Mapped[Decimal] = mapped_column(PricePerMTok, nullable=False)
    output_per_mtok: Mapped[Decimal] = mapped_column(PricePerMTok, nullable=False)
    cached_input_per_mtok: Mapped[Decimal | None] = mapped_column(PricePerMTok)
    # Audio tokens (a spoken answer, an `input_audio` part): at these rates where the model has
    # them, else as text.
    audio_input_per_mtok: Mapped[Decimal | None] = mapped_column(PricePerMTok)
    audio_output_per_mtok: Mapped[Decimal | None] = mapped_column(PricePerMTok)
    effective_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class LedgerEntry(Base):
    """One row per request, whatever happened to it; never updated."""

    __tablename__ = "ledger"
    __table_args__ = (
        CheckConstraint("cache_status IN ('hit', 'miss', 'bypass', 'error')", name="cache_status"),
        # A request is booked exactly once, also when a spooled row is replayed: the key is the
        # id Déjà made for the request, never one a client sent (with the tenant: distributable).
        UniqueConstraint("request_id", "tenant_id"),
        Index("ix_ledger_tenant_created", "tenant_id", "created_at"),
        Index("ix_ledger_tenant_client_request", "tenant_id", "client_request_id"),
        # The requests an entry answered (the dashboard's entry and wrong-hit pages).
        Index("ix_ledger_entry_id", "entry_id", postgresql_where=text("entry_id IS NOT NULL")),
        # The rows written since the last roll-up (the rollup's live part, app.ledger.rollup).
        Index("ix_ledger_booked_at", "booked_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    request_id: Mapped[str] = mapped_column(String(64), nullable=False)
    # The client's own id (X-Client-Request-Id or X-Request-Id): for correlation only, not unique.
    client_request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = created_at()
    # When the row was written (its transaction's start): later than created_at for a row replayed
    # from the spool after an outage. The hourly rollup takes rows by this time.
    booked_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    requested_model: Mapped[str] = mapped_column(String(200), nullable=False)
    used_model: Mapped[str | None] = mapped_column(String(200))
    namespace: Mapped[str] = mapped_column(String(200), nullable=False, server_default="")
    cache_status: Mapped[str] = mapped_column(String(10), nullable=False)
    similarity: Mapped[float | None] = mapped_column(REAL)
    entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    prompt_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    cost_usd: Mapped[Decimal] = mapped_column(Money, nullable=False, server_default="0")
    avoided_cost_usd: Mapped[Decimal] = mapped_column(Money, nullable=False, server_default="0")
    latency_ms: Mapped[float] = mapped_column(REAL, nullable=False)
    upstream_latency_ms: Mapped[float | None] = mapped_column(REAL)
    http_status: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    priority: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="5")
    error: Mapped[str | None] = mapped_column(Text)
    # The error bound sent a would-be hit to the model to learn from its answer (docs/error-bound.md).
    explored: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    # Client metadata; never prompt or response text.
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )


class Quota(Base):
    __tablename__ = "quotas"
    __table_args__ = (CheckConstraint("period IN ('day', 'month')", name="period"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    max_requests: Mapped[int | None] = mapped_column(BigInteger)
    max_tokens: Mapped[int | None] = mapped_column(BigInteger)
    max_cost_usd: Mapped[Decimal | None] = mapped_column(Money)


class UsageCounter(Base):
    """What a tenant used (and has reserved) in one period; updated atomically in SQL."""

    __tablename__ = "usage_counters"
    __table_args__ = (CheckConstraint("period IN ('day', 'month')", name="period"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    cost_usd: Mapped[Decimal] = mapped_column(Money, nullable=False, server_default="0")
    reserved_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    reserved_cost_usd: Mapped[Decimal] = mapped_column(Money, nullable=False, server_default="0")


class QuotaReservation(Base):
    """Quota held by one upstream call in flight: released when the call is booked, or by any
    replica once `expires_at` passes without the replica holding it renewing it (it died)."""

    __tablename__ = "quota_reservations"
    __table_args__ = (
        Index("ix_quota_reservations_expires_at", "expires_at"),
        Index("ix_quota_reservations_holder", "holder"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64), nullable=False)
    day_start: Mapped[date] = mapped_column(Date, nullable=False)
    month_start: Mapped[date] = mapped_column(Date, nullable=False)
    tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    cost_usd: Mapped[Decimal] = mapped_column(Money, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


# The ledger's hourly rollup (app.ledger.rollup), so that the dashboard and GET /admin/stats read
# thousands of rows, not millions. The ledger stays the truth: the rollup can be emptied and
# rebuilt at any time.


class LedgerHourly(Base):
    """One tenant's requests in one UTC hour."""

    __tablename__ = "ledger_hourly"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger, nullable=False)
    exact_hits: Mapped[int] = mapped_column(BigInteger, nullable=False)
    semantic_hits: Mapped[int] = mapped_column(BigInteger, nullable=False)
    misses: Mapped[int] = mapped_column(BigInteger, nullable=False)
    bypasses: Mapped[int] = mapped_column(BigInteger, nullable=False)
    errors: Mapped[int] = mapped_column(BigInteger, nullable=False)
    cost_usd: Mapped[Decimal] = mapped_column(MoneySum, nullable=False)
    avoided_cost_usd: Mapped[Decimal] = mapped_column(MoneySum, nullable=False)
    # Sums, so that means add up across hours (mean = sum / hits or misses).
    hit_latency_ms: Mapped[float] = mapped_column(Double, nullable=False)
    miss_latency_ms: Mapped[float] = mapped_column(Double, nullable=False)


class LedgerRollupMark(Base):
    """The one row saying up to when (exclusive) the ledger is in ledger_hourly."""

    __tablename__ = "ledger_rollup_mark"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default=text("1"))
    rolled_up_until: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("'1970-01-01 00:00:00+00'::timestamptz")
    )
