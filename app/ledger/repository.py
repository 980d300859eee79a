"""All SQL of the ledger and prices."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict
from app.ledger.models import LedgerEntry, Price, Quota, UsageCounter


@dataclass(frozen=True, slots=True)
class ModelPrice:
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None
    effective_from: datetime


# Column bounds of the ledger: a row is cut to them before it is written (`storable`), so a
# value Postgres would refuse can never fail a booking or block the spool's replay.
_TEXT_LIMITS = {"requested_model": 200, "used_model": 200, "namespace": 200, "client_request_id": 128}
_INT4 = 2**31 - 1
_INT2 = 2**15 - 1
ERROR_CHARS = 500
METADATA_CHARS = 8192


def _finite(value: float | None, default: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return default
    return min(max(value, 0.0), 1e30)  # REAL holds about 3.4e38


@dataclass(slots=True)
class LedgerRow:
    """One request's accounting; never prompt or response text."""

    tenant_id: uuid.UUID
    request_id: str  # Déjà's own id for the request: the ledger's unique key
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
    client_request_id: str | None = None  # what the client called it; not unique, not trusted
    # When the request was answered, not when the row was written: a row replayed from the spool
    # after an outage keeps its own day (and period).
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def storable(self) -> dict[str, Any]:
        """The row's values cut to what the ledger's columns hold."""
        values = asdict(self)
        for name, limit in _TEXT_LIMITS.items():
            if values[name] is not None:
                values[name] = str(values[name])[:limit]
        for name in ("prompt_tokens", "completion_tokens"):
            values[name] = min(max(int(values[name]), 0), _INT4)
        for name in ("http_status", "priority"):
            values[name] = min(max(int(values[name]), 0), _INT2)
        values["latency_ms"] = _finite(values["latency_ms"], 0.0)
        values["upstream_latency_ms"] = _finite(values["upstream_latency_ms"], None)
        values["similarity"] = _finite(values["similarity"], None)
        if values["error"] is not None:
            values["error"] = values["error"][:ERROR_CHARS]
        metadata = json.dumps(values["metadata"], separators=(",", ":"), default=str)
        values["metadata"] = metadata if len(metadata) <= METADATA_CHARS else '{"truncated":true}'
        return values

    # The error bound sent a would-be hit to the model to learn from its answer.
    explored: bool = False


_LEDGER_COLUMNS = [f.name for f in fields(LedgerRow)]
# One prepared statement on the hot path: building an ORM insert per request cost more than
# running it. Columns and parameters are LedgerRow's fields; metadata is JSON.
_APPEND = text(
    f"INSERT INTO ledger ({', '.join(_LEDGER_COLUMNS)}) "  # noqa: S608 (field names, no input)
    f"VALUES ({', '.join('CAST(:metadata AS jsonb)' if c == 'metadata' else ':' + c for c in _LEDGER_COLUMNS)}) "
    "ON CONFLICT (request_id, tenant_id) DO NOTHING"
)


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def append(self, row: LedgerRow) -> bool:
        """Book a request; a request id already booked is left as it is (a replayed spool row)."""
        result = await self.session.execute(_APPEND, row.storable())
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def append_many(self, rows: Sequence[LedgerRow]) -> None:
        """Book several requests in one statement (executemany); request ids already booked are left."""
        if rows:
            await self.session.execute(_APPEND, [row.storable() for row in rows])

    async def entry_for_request(self, request_id: str) -> uuid.UUID | None:
        """The cache entry that served this request, if it was a hit: by Déjà's id, else the
        latest hit the client gave this id to (row-level security keeps it to the tenant)."""
        hits = select(LedgerEntry.entry_id).where(LedgerEntry.cache_status == "hit")
        own = (await self.session.execute(hits.where(LedgerEntry.request_id == request_id))).scalar()
        if own is not None:
            return own
        stmt = (
            hits.where(LedgerEntry.client_request_id == request_id)
            .order_by(LedgerEntry.created_at.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar()

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

    async def price_rows(self) -> Sequence[Price]:
        """Every price ever set, newest first per model (the history is kept)."""
        stmt = select(Price).order_by(Price.model, Price.effective_from.desc())
        return (await self.session.scalars(stmt)).all()

    async def add_price(self, price: ModelPrice) -> Price:
        row = Price(**asdict(price))
        self.session.add(row)
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError as exc:
            raise Conflict(
                f"{price.model!r} already has a price effective from {price.effective_from.isoformat()}."
            ) from exc
        await self.session.refresh(row)
        return row

    async def quotas(self, tenant_id: uuid.UUID) -> Sequence[Quota]:
        stmt = select(Quota).where(Quota.tenant_id == tenant_id).order_by(Quota.period)
        return (await self.session.scalars(stmt)).all()

    async def put_quota(
        self,
        tenant_id: uuid.UUID,
        period: str,
        *,
        max_requests: int | None,
        max_tokens: int | None,
        max_cost_usd: Decimal | None,
    ) -> Quota:
        """Set a period's limits, replacing any before (None: unlimited)."""
        limits = {"max_requests": max_requests, "max_tokens": max_tokens, "max_cost_usd": max_cost_usd}
        stmt = (
            insert(Quota)
            .values(tenant_id=tenant_id, period=period, **limits)
            .on_conflict_do_update(index_elements=["tenant_id", "period"], set_=limits)
            .returning(Quota)
        )
        quota: Quota = (await self.session.scalars(stmt, execution_options={"populate_existing": True})).one()
        return quota

    async def delete_quota(self, tenant_id: uuid.UUID, period: str) -> bool:
        stmt = delete(Quota).where(Quota.tenant_id == tenant_id, Quota.period == period)
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def delete_quotas_and_usage(self, tenant_id: uuid.UUID) -> tuple[int, int]:
        quotas = await self.session.execute(delete(Quota).where(Quota.tenant_id == tenant_id))
        usage = await self.session.execute(delete(UsageCounter).where(UsageCounter.tenant_id == tenant_id))
        return int(quotas.rowcount), int(usage.rowcount)  # type: ignore[attr-defined]

    async def anonymise(self, tenant_id: uuid.UUID) -> int:
        """Keep a tenant's rows for accounting, without what its clients wrote (metadata, error
        text, namespace) or links to keys and entries that no longer exist."""
        stmt = (
            update(LedgerEntry)
            .where(LedgerEntry.tenant_id == tenant_id)
            .values(metadata_={}, error=None, namespace="", api_key_id=None, entry_id=None)
        )
        return int((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def delete_for_tenant(self, tenant_id: uuid.UUID) -> int:
        stmt = delete(LedgerEntry).where(LedgerEntry.tenant_id == tenant_id)
        return int((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]
