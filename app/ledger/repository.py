"""All SQL of the ledger and prices."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.ledger.models import LedgerEntry, Price


@dataclass(frozen=True, slots=True)
class ModelPrice:
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None
    effective_from: datetime


@dataclass(slots=True)
class LedgerRow:
    """One request's accounting; never prompt or response text."""

    tenant_id: uuid.UUID
    request_id: str
    requested_model: str
    cache_status: str  # hit | miss | bypass | error
    http_status: int
    latency_ms: float
    api_key_id: uuid.UUID | None = None
    used_model: str | None = None
    namespace: str = ""
    similarity: float | None = None
    entry_id: uuid.UUID | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    avoided_cost_usd: Decimal = Decimal(0)
    upstream_latency_ms: float | None = None
    priority: int = 5
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def append(self, row: LedgerRow) -> bool:
        """Book a request; a request id already booked is left as it is (exactly once)."""
        values = asdict(row)
        values["metadata_"] = values.pop("metadata")
        stmt = insert(LedgerEntry).values(**values).on_conflict_do_nothing(index_elements=["request_id"])
        result = await self.session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def entry_for_request(self, request_id: str) -> uuid.UUID | None:
        """The cache entry that served this request, if it was a hit."""
        stmt = select(LedgerEntry.entry_id).where(
            LedgerEntry.request_id == request_id, LedgerEntry.cache_status == "hit"
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def prices(self) -> list[ModelPrice]:
        rows = (await self.session.scalars(select(Price).order_by(Price.effective_from))).all()
        return [
            ModelPrice(
                model=p.model,
                input_per_mtok=p.input_per_mtok,
                output_per_mtok=p.output_per_mtok,
                cached_input_per_mtok=p.cached_input_per_mtok,
                effective_from=p.effective_from,
            )
            for p in rows
        ]
