"""The ledger's hourly rollup: per tenant and UTC hour, the counts, money and latency sums of its
rows, so that the dashboard's pages and `GET /admin/stats` read thousands of rows, not millions.

Closed hours are rolled up incrementally, up to a watermark (`roll_up_ledger`, run before the
figures are read); readers add the ledger's own rows from the watermark on (`LedgerRollup.hourly`).
The ledger stays the truth: the rollup can be emptied and rebuilt at any time.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Double, Select, cast, func, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import transaction
from app.ledger.models import LedgerEntry, LedgerHourly, LedgerRollupMark

ROLLUP_LOCK = 0x64656A61_0001  # pg advisory lock key: one roll-up at a time
ROLLUP_DELAY = timedelta(minutes=5)
# Booking time rolled up per statement: six hours of a service answering 50 requests a second
# are about a million rows, a second's work.
ROLLUP_STEP = timedelta(hours=6)

# Exact hits are booked with similarity 1 (the exact tier compares hashes, not vectors); a
# semantic hit's cosine is below 1 unless the normalised prompts were equal, which the exact
# tier would have served first.
_EXACT = (LedgerEntry.cache_status == "hit") & (LedgerEntry.similarity >= 1.0)
_SEMANTIC = (LedgerEntry.cache_status == "hit") & (
    (LedgerEntry.similarity < 1.0) | LedgerEntry.similarity.is_(None)
)


async def roll_up_ledger(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The closed hours into the rollup, in system context (the rollup serves every tenant's
    figures, whoever reads them): a step at a time, each step in a transaction of its own."""
    while True:
        async with transaction(sessionmaker, system=True) as session:
            more = await LedgerRollup(session).roll_up()
        if not more:
            return


class LedgerRollup:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def roll_up(self, *, step: timedelta = ROLLUP_STEP) -> bool:
        """Add ledger rows booked since the watermark to the rollup, at most `step` of booking time
        from the first of them (one statement over a large backlog would outlast the statement
        timeout); system context only. True when closed hours remain to roll up.

        Rows are taken by `booked_at` (their transaction's start; they appear at its commit) and
        counted in the hour of their `created_at` (when the request was answered), so a row
        replayed from the spool after an outage lands in its own, possibly rolled-up, hour and
        is counted once. A booking hour is closed five minutes after it ends (the service's
        transactions last seconds at most). Two readers never roll up at once: the second one
        reads what is there and the live rest.
        """
        if not await self.session.scalar(select(func.pg_try_advisory_xact_lock(ROLLUP_LOCK))):
            return False
        mark = await self.mark(for_update=True)
        until = await self.session.scalar(select(func.date_trunc("hour", func.now() - ROLLUP_DELAY, "UTC")))
        if until is None or mark >= until:
            return False
        first = await self.session.scalar(
            select(func.min(LedgerEntry.booked_at)).where(
                LedgerEntry.booked_at >= mark, LedgerEntry.booked_at < until
            )
        )
        end = until if first is None else min(until, first + step)
        if first is not None:
            hourly = self.hourly_from_ledger(
                LedgerEntry.booked_at >= mark, LedgerEntry.booked_at < end
            ).subquery()
            columns = [c.name for c in hourly.columns]
            rolled = pg_insert(LedgerHourly).from_select(columns, select(hourly))
            table = LedgerHourly.__table__.c
            # Every figure is a count or a sum: an hour that has rows already gets the new ones added.
            await self.session.execute(
                rolled.on_conflict_do_update(
                    index_elements=["tenant_id", "hour"],
                    set_={c: table[c] + rolled.excluded[c] for c in columns[2:]},
                )
            )
        await self.session.execute(
            update(LedgerRollupMark).where(LedgerRollupMark.id == 1).values(rolled_up_until=end)
        )
        return bool(end < until)

    async def mark(self, *, for_update: bool = False) -> datetime:
        stmt = select(LedgerRollupMark.rolled_up_until).where(LedgerRollupMark.id == 1)
        mark: datetime = (
            await self.session.execute(stmt.with_for_update() if for_update else stmt)
        ).scalar_one()
        return mark

    async def hourly(self, tenant_id: uuid.UUID | None, since: datetime | None = None) -> Any:
        """Per tenant and hour: the rollup (the rows booked before the watermark) and the ledger's
        rows booked from it on. An hour may have a row on each side; each ledger row is on one."""
        mark = await self.mark()
        rolled: list[ColumnElement[bool]] = []
        live = [LedgerEntry.booked_at >= mark]
        if since is not None:
            rolled.append(LedgerHourly.hour >= since)
            live.append(LedgerEntry.created_at >= since)
        if tenant_id is not None:
            rolled.append(LedgerHourly.tenant_id == tenant_id)
            live.append(LedgerEntry.tenant_id == tenant_id)
        from_rollup = select(
            LedgerHourly.tenant_id,
            LedgerHourly.hour,
            LedgerHourly.requests,
            LedgerHourly.exact_hits,
            LedgerHourly.semantic_hits,
            LedgerHourly.misses,
            LedgerHourly.bypasses,
            LedgerHourly.errors,
            LedgerHourly.cost_usd,
            LedgerHourly.avoided_cost_usd,
            LedgerHourly.hit_latency_ms,
            LedgerHourly.miss_latency_ms,
        ).where(*rolled)
        return union_all(from_rollup, self.hourly_from_ledger(*live))

    @staticmethod
    def hourly_from_ledger(*where: ColumnElement[bool]) -> Select[Any]:
        hour = func.date_trunc("hour", LedgerEntry.created_at, "UTC")

        def latency_of(status: str) -> Any:
            return cast(
                func.coalesce(func.sum(LedgerEntry.latency_ms).filter(LedgerEntry.cache_status == status), 0),
                Double,
            )

        return (
            select(
                LedgerEntry.tenant_id.label("tenant_id"),
                hour.label("hour"),
                func.count().label("requests"),
                func.count().filter(_EXACT).label("exact_hits"),
                func.count().filter(_SEMANTIC).label("semantic_hits"),
                func.count().filter(LedgerEntry.cache_status == "miss").label("misses"),
                func.count().filter(LedgerEntry.cache_status == "bypass").label("bypasses"),
                func.count().filter(LedgerEntry.cache_status == "error").label("errors"),
                func.coalesce(func.sum(LedgerEntry.cost_usd), 0).label("cost_usd"),
                func.coalesce(func.sum(LedgerEntry.avoided_cost_usd), 0).label("avoided_cost_usd"),
                latency_of("hit").label("hit_latency_ms"),
                latency_of("miss").label("miss_latency_ms"),
            )
            .where(*where)
            .group_by(LedgerEntry.tenant_id, hour)
        )
