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

from sqlalchemy import delete, select, text
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
    audio_input_per_mtok: Decimal | None = None
    audio_output_per_mtok: Decimal | None = None


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
        # Field by field, not `asdict`: that deep-copies every value, the metadata included,
        # on every booking; the values are only read here.
        values = {name: getattr(self, name) for name in _LEDGER_COLUMNS}
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


_LEDGER_COLUMNS = tuple(f.name for f in fields(LedgerRow))


# A tenant's ledger goes in batches (tenant deletion), each its own short transaction: one
# statement over a large tenant's rows would outlast the statement timeout and never finish. Each
# batch takes the tenant's next rows in (created_at, id) order after the previous batch's last,
# through the tenant/time index, so no batch reads again what an earlier one took. It selects by
# that order alone (a filter such as "not anonymous yet" made the planner sort the tenant's rows
# on every batch); the anonymising UPDATE skips rows already anonymous, so they are not counted.
# MATERIALIZED: the batch is chosen once, never rescanned per row (purge.py says why). The
# planner cannot estimate the row-level security condition and takes the tenant's rows for a
# few hundred: it would read and sort them all on every batch, and the deletion of a large tenant
# would grow with the square of its rows. `_INDEX_ORDER` leaves it the index, read in order, and
# plans each batch with its own values (the prepared statement's generic plan, used from the
# sixth batch on, did not stop reading where the batch starts: every batch slower than the last).
# scripts/tenant_deletion_cost.py measures a million rows.
_INDEX_ORDER = text(
    "SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true), "
    "set_config('enable_sort', 'off', true), set_config('plan_cache_mode', 'force_custom_plan', true)"
)
_LEDGER_BATCH = """
    SELECT id, created_at FROM ledger
     WHERE tenant_id = :t AND created_at >= coalesce(CAST(:since AS timestamptz), '-infinity')
       AND (created_at, id) > (coalesce(CAST(:since AS timestamptz), '-infinity'), coalesce(CAST(:after AS bigint), 0))
     ORDER BY created_at, id LIMIT :n FOR UPDATE
"""
_BATCH_RESULT = """
    SELECT (SELECT count(*) FROM batch) AS taken, (SELECT count(*) FROM done) AS changed,
           last.created_at AS last_created_at, last.id AS last_id
      FROM (SELECT 1) AS one
      LEFT JOIN (SELECT created_at, id FROM batch ORDER BY created_at DESC, id DESC LIMIT 1) AS last ON true
"""
_ANONYMISE_BATCH = text(
    f"WITH batch AS MATERIALIZED ({_LEDGER_BATCH}), "  # noqa: S608 (constants only)
    "done AS (UPDATE ledger SET metadata = '{}'::jsonb, error = NULL, namespace = '', client_request_id = NULL, "
    "api_key_id = NULL, entry_id = NULL FROM batch WHERE ledger.tenant_id = :t AND ledger.id = batch.id "
    "AND (ledger.metadata <> '{}'::jsonb OR ledger.error IS NOT NULL OR ledger.namespace <> '' "
    "OR ledger.client_request_id IS NOT NULL OR ledger.api_key_id IS NOT NULL OR ledger.entry_id IS NOT NULL) "
    "RETURNING ledger.id) "
    f"{_BATCH_RESULT}"
)
_DELETE_BATCH = text(
    f"WITH batch AS MATERIALIZED ({_LEDGER_BATCH}), "  # noqa: S608 (constants only)
    "done AS (DELETE FROM ledger USING batch WHERE ledger.tenant_id = :t AND ledger.id = batch.id "
    f"RETURNING ledger.id) {_BATCH_RESULT}"
)


@dataclass(frozen=True, slots=True)
class LedgerBatch:
    """One batch of a tenant's ledger rows: how many it took, how many it changed, and the last
    one's key, after which the next batch starts (None when it took none)."""

    taken: int
    changed: int
    last: tuple[datetime, int] | None

    @classmethod
    def of(cls, row: Any) -> LedgerBatch:
        last = None if row.last_id is None else (row.last_created_at, int(row.last_id))
        return cls(taken=int(row.taken), changed=int(row.changed), last=last)


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
                audio_input_per_mtok=p.audio_input_per_mtok,
                audio_output_per_mtok=p.audio_output_per_mtok,
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

    async def anonymise_batch(
        self, tenant_id: uuid.UUID, after: tuple[datetime, int] | None, limit: int
    ) -> LedgerBatch:
        """Keep the tenant's next `limit` rows after `after` (None: from the oldest) for accounting,
        without what its clients wrote (metadata, error text, namespace, their request ids) or
        links to keys and entries that no longer exist. Rows already anonymous are taken but not changed."""
        await self.session.execute(_INDEX_ORDER)
        return LedgerBatch.of(
            (await self.session.execute(_ANONYMISE_BATCH, _batch(tenant_id, after, limit))).one()
        )

    async def delete_batch(
        self, tenant_id: uuid.UUID, after: tuple[datetime, int] | None, limit: int
    ) -> LedgerBatch:
        """Delete the tenant's next `limit` rows after `after` (None: from the oldest). Both batch
        methods leave the planner only the index, read in order, for the rest of the transaction."""
        await self.session.execute(_INDEX_ORDER)
        return LedgerBatch.of(
            (await self.session.execute(_DELETE_BATCH, _batch(tenant_id, after, limit))).one()
        )


def _batch(tenant_id: uuid.UUID, after: tuple[datetime, int] | None, limit: int) -> dict[str, Any]:
    since, after_id = after if after is not None else (None, None)
    return {"t": tenant_id, "since": since, "after": after_id, "n": limit}
