"""Quotas and prices: the one service behind their admin routes and the `deja quotas` /
`deja prices` commands.

Every change writes its audit entry in the caller's transaction; the caller (the request's
session, the CLI's `transaction()`) commits. Whether the tenant exists is the caller's to
check (`app.tenants.service.TenantService.get`), so that this domain does not depend on the
tenants one."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.audit import AuditRepository
from app.errors import NotFound
from app.ledger.models import Price, Quota
from app.ledger.pricing import decimal_text
from app.ledger.repository import LedgerRepository, ModelPrice
from app.ledger.schemas import Period, PriceIn, PriceOut, QuotaIn


class LedgerAdminService:
    def __init__(self, session: AsyncSession, actor: str) -> None:
        self.actor = actor
        self.ledger = LedgerRepository(session)
        self.audit = AuditRepository(session)

    # Quotas

    async def quotas(self, tenant_id: uuid.UUID) -> Sequence[Quota]:
        return await self.ledger.quotas(tenant_id)

    async def put_quota(self, tenant_id: uuid.UUID, period: Period, limits: QuotaIn) -> Quota:
        """Set a period's limits, replacing any before (null: unlimited); 422 for an amount the
        ledger would round."""
        limits.check_places()
        quota = await self.ledger.put_quota(
            tenant_id,
            period.value,
            max_requests=limits.max_requests,
            max_tokens=limits.max_tokens,
            max_cost_usd=limits.max_cost_usd,
        )
        await self.audit.record(
            self.actor,
            "quota.put",
            tenant_id=tenant_id,
            filters={
                "period": period.value,
                "max_requests": limits.max_requests,
                "max_tokens": limits.max_tokens,
                # As set, at the ledger's scale, in plain text: str() of a Decimal may be in exponent
                # form ("1E+1").
                "max_cost_usd": None if limits.max_cost_usd is None else decimal_text(limits.max_cost_usd),
            },
            rows_affected=1,
        )
        return quota

    async def delete_quota(self, tenant_id: uuid.UUID, period: Period) -> None:
        if not await self.ledger.delete_quota(tenant_id, period.value):
            raise NotFound(f"Tenant {tenant_id} has no {period.value} quota.")
        await self.audit.record(
            self.actor, "quota.delete", tenant_id=tenant_id, filters={"period": period.value}, rows_affected=1
        )

    # Prices

    async def prices(self) -> Sequence[Price]:
        """Every price ever set, newest first per model (the history is kept)."""
        return await self.ledger.price_rows()

    async def add_price(self, price: PriceIn) -> Price:
        """A new price for a model from `effective_from` (default: now); 409 if one starts then, 422
        for a price the column would round."""
        price.check_places()
        row = await self.ledger.add_price(
            ModelPrice(
                model=price.model,
                input_per_mtok=price.input_per_mtok,
                output_per_mtok=price.output_per_mtok,
                cached_input_per_mtok=price.cached_input_per_mtok,
                effective_from=price.starts_at() or datetime.now(UTC),
                audio_input_per_mtok=price.audio_input_per_mtok,
                audio_output_per_mtok=price.audio_output_per_mtok,
            )
        )
        added = PriceOut.of(row)
        await self.audit.record(self.actor, "price.add", filters=msgspec.to_builtins(added), rows_affected=1)
        return row
