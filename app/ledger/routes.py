"""The tenant's own usage and what its quotas leave."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from app.dependencies import TENANT_DEPENDENCIES
from app.ledger.pricing import money_text
from app.ledger.quotas import PeriodUsage, QuotaRepository, period_end
from app.services import Services
from app.tenants.auth import Principal


class Limits(msgspec.Struct):
    requests: int | None
    tokens: int | None
    cost_usd: str | None  # dollars as decimal text (money_text)


class PeriodOut(msgspec.Struct):
    period: str
    starts_at: datetime
    resets_at: datetime
    requests: int
    tokens: int
    cost_usd: str
    reserved_tokens: int
    reserved_cost_usd: str
    limits: Limits
    remaining: Limits

    @classmethod
    def of(cls, usage: PeriodUsage) -> PeriodOut:
        # Reservations of calls in flight count as used until they settle.
        tokens = usage.tokens + usage.reserved_tokens
        cost = usage.cost_usd + usage.reserved_cost_usd
        return cls(
            period=usage.period,
            starts_at=usage.period_start,
            resets_at=period_end(usage.period, usage.period_start),
            requests=usage.requests,
            tokens=usage.tokens,
            cost_usd=money_text(usage.cost_usd),
            reserved_tokens=usage.reserved_tokens,
            reserved_cost_usd=money_text(usage.reserved_cost_usd),
            limits=Limits(
                requests=usage.max_requests,
                tokens=usage.max_tokens,
                cost_usd=None if usage.max_cost_usd is None else money_text(usage.max_cost_usd),
            ),
            remaining=Limits(
                requests=None if usage.max_requests is None else max(usage.max_requests - usage.requests, 0),
                tokens=None if usage.max_tokens is None else max(usage.max_tokens - tokens, 0),
                cost_usd=None
                if usage.max_cost_usd is None
                else money_text(max(usage.max_cost_usd - cost, Decimal(0))),
            ),
        )


class UsageOut(msgspec.Struct):
    tenant_id: uuid.UUID
    tenant_name: str | None
    periods: list[PeriodOut]


class UsageController(Controller):
    path = "/v1/usage"
    tags = ("usage",)
    dependencies = TENANT_DEPENDENCIES

    @get("/", summary="The calling tenant's usage (upstream calls; hits are free) and what its quotas leave")
    async def usage(
        self,
        tenant: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        services: NamedDependency[Services],
    ) -> UsageOut:
        await services.pipeline.writer.flush()  # this process's bookings, written after their responses
        periods = await QuotaRepository(session).usage(tenant.require_tenant(), datetime.now(UTC))
        return UsageOut(
            tenant_id=tenant.require_tenant(),
            tenant_name=tenant.tenant_name,
            periods=[PeriodOut.of(p) for p in periods],
        )
