"""The ledger's hourly rollup: per tenant and UTC hour, the counts, money and latency sums of its
rows, so that the dashboard's pages and `GET /admin/stats` read thousands of rows, not millions.

Closed hours are rolled up incrementally, up to a watermark (`roll_up_ledger`, run before the
figures are read); readers add the ledger's own rows from the watermark on (`LedgerRollup.hourly`).
The ledger stays the truth: the rollup can be emptied and rebuilt at any time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, Double, Select, cast, delete, func, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import transaction
from app.db.errors import describe_database_error
from app.ledger.models import LedgerEntry, LedgerHourly, LedgerRollupMark

log = logging.getLogger(__name__)

ROLLUP_LOCK = 0x64656A61_0001  # pg advisory lock key: one roll-up at a time
ROLLUP_DELAY = timedelta(minutes=5)
# Ledger rows rolled up per statement, so that a deployment's first roll-up over a large backlog
# goes in short steps (scripts/admin_stats_cost.py times a first roll-up of millions of rows).
ROLLUP_STEP_ROWS = 200_000
# Rows booked in one instant are never split between steps (the watermark is a time), and a
# migration stamped every row it found with one instant: a step over such a group may take longer
# than a request's statement timeout, so a roll-up step has this one.
ROLLUP_STATEMENT_TIMEOUT = "60s"
_HOUR = timedelta(hours=1)
# A reader's request starts no roll-up step after this long (`roll_up_ledger`'s budget).
ROLLUP_REQUEST_BUDGET_S = 1.0

# Exact hits are booked with similarity 1 (the exact tier compares hashes, not vectors); a
# semantic hit's cosine is below 1 unless the normalised prompts were equal, which the exact
# tier would have served first.
_EXACT = (LedgerEntry.cache_status == "hit") & (LedgerEntry.similarity >= 1.0)
_SEMANTIC = (LedgerEntry.cache_status == "hit") & (
    (LedgerEntry.similarity < 1.0) | LedgerEntry.similarity.is_(None)
)


class Step(Enum):
    """What one roll-up step found."""

    DONE = "every closed hour is in"
    MORE = "closed hours remain"
    BUSY = "another caller is rolling up"


async def roll_up_ledger(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    budget_s: float | None = None,
    wait: bool = True,
    step_rows: int = ROLLUP_STEP_ROWS,
) -> bool:
    """The closed hours into the rollup, in system context (the rollup serves every tenant's
    figures, whoever reads them): a step at a time, each step in a transaction of its own. True
    when every closed hour is in.

    A caller that finds another rolling up waits for its step, then takes the next; with `wait`
    false it stops there instead. With `budget_s`, no step starts once that long has passed (a step
    is about `step_rows` rows). Readers' requests pass both, so that they neither work through a
    deployment's backlog nor queue behind a worker's step (`keep_rolled_up` does the work in the
    background), and read what is left from the ledger."""
    started = time.monotonic()
    while budget_s is None or time.monotonic() - started < budget_s:
        async with transaction(sessionmaker, system=True) as session:
            step = await LedgerRollup(session).roll_up(step_rows=step_rows, wait=wait)
        if step is Step.DONE:
            return True
        if step is Step.BUSY:
            return False
    return False


async def roll_up_for_readers(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Before a reader's figures (`GET /admin/stats`, the dashboard's overview): roll up what fits
    a request's budget, never waiting on another caller. A step that fails is logged and left, its
    transaction undone: the reader adds the rows past the watermark from the ledger itself, so a
    bad hour slows every tenant's figures but stops none of them."""
    try:
        await roll_up_ledger(sessionmaker, budget_s=ROLLUP_REQUEST_BUDGET_S, wait=False)
    except SQLAlchemyError as exc:
        log.warning(
            "the ledger roll-up failed; this read adds the rows past the rollup from the ledger",
            extra={"error": describe_database_error(exc)},
        )


async def keep_rolled_up(sessionmaker: async_sessionmaker[AsyncSession], interval_s: float) -> None:
    """Roll the closed hours up now and every `interval_s`, for the life of the process, so that
    readers find little or nothing left to roll up (a first start on a ledger never rolled up
    works through its backlog here, in steps). A worker that finds another rolling up leaves it
    the work until its next turn."""
    while True:
        try:
            await roll_up_ledger(sessionmaker, wait=False)
        except Exception as exc:
            log.warning(
                "the ledger roll-up failed; readers add the rows past the rollup from the ledger",
                extra={"error": describe_database_error(exc), "retry_in_s": interval_s},
            )
        await asyncio.sleep(interval_s)


class LedgerRollup:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def roll_up(self, *, step_rows: int = ROLLUP_STEP_ROWS, wait: bool = True) -> Step:
        """Add ledger rows booked since the watermark to the rollup, about `step_rows` of them (one
        statement over a large backlog would outlast the statement timeout); system context only.

        Rows are taken by `booked_at` (their transaction's start; they appear at its commit) and
        counted in the hour of their `created_at` (when the request was answered), so a row
        replayed from the spool after an outage lands in its own, possibly rolled-up, hour and
        is counted once. A booking hour is closed five minutes after it ends (the service's
        transactions last seconds at most). Two callers never roll up at once (an advisory lock):
        the second waits for the first's step, or with `wait` false, answers BUSY at once.
        """
        if not wait:
            locked = await self.session.scalar(select(func.pg_try_advisory_xact_lock(ROLLUP_LOCK)))
            if not locked:
                return Step.BUSY
        await self.session.execute(
            select(func.set_config("statement_timeout", ROLLUP_STATEMENT_TIMEOUT, True))
        )
        if wait:
            await self.session.execute(select(func.pg_advisory_xact_lock(ROLLUP_LOCK)))
        mark = await self.mark(for_update=True)
        until = await self.session.scalar(select(func.date_trunc("hour", func.now() - ROLLUP_DELAY, "UTC")))
        if until is None or mark >= until:
            return Step.DONE
        backlog = (LedgerEntry.booked_at >= mark, LedgerEntry.booked_at < until)
        first = await self.session.scalar(select(func.min(LedgerEntry.booked_at)).where(*backlog))
        # The step ends at the booking time of the row `step_rows` on (the booking-time index);
        # past the rows of the first instant, however many, so that the watermark always moves.
        nth = await self.session.scalar(
            select(LedgerEntry.booked_at)
            .where(*backlog)
            .order_by(LedgerEntry.booked_at)
            .offset(step_rows)
            .limit(1)
        )
        if first is not None and nth is not None and nth <= first:
            nth = await self.session.scalar(
                select(func.min(LedgerEntry.booked_at)).where(
                    LedgerEntry.booked_at > first, LedgerEntry.booked_at < until
                )
            )
        end = until if first is None or nth is None else nth
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
        return Step.MORE if end < until else Step.DONE

    async def forget(self, tenant_id: uuid.UUID) -> None:
        """A tenant's hours out of the rollup (its ledger rows are being deleted)."""
        await self.session.execute(delete(LedgerHourly).where(LedgerHourly.tenant_id == tenant_id))

    async def mark(self, *, for_update: bool = False) -> datetime:
        stmt = select(LedgerRollupMark.rolled_up_until).where(LedgerRollupMark.id == 1)
        mark: datetime = (
            await self.session.execute(stmt.with_for_update() if for_update else stmt)
        ).scalar_one()
        return mark

    async def hourly(
        self, tenant_id: uuid.UUID | None, since: datetime | None = None, until: datetime | None = None
    ) -> Any:
        """Per tenant and UTC hour, the ledger's rows answered in [since, until) (either end open):
        the whole hours from the rollup (the rows booked before the watermark) and the ledger's rows
        booked from it on; a window's partial first and last hours from the ledger alone. An hour
        may have a row from each part; each ledger row is in one. The watermark is read in the
        caller's statement, in the same snapshot as the rollup: a step committed meanwhile is seen
        on both sides or on neither. Times without a zone are UTC."""
        since = None if since is None else _aware(since)
        until = None if until is None else _aware(until)
        first, end = whole_hours(since, until)
        parts: list[Select[Any]] = []
        if first is None or end is None or first < end:
            mark = select(LedgerRollupMark.rolled_up_until).where(LedgerRollupMark.id == 1).scalar_subquery()
            rolled: list[ColumnElement[bool]] = []
            live = [LedgerEntry.booked_at >= mark, *_answered(first, end)]
            if first is not None:
                rolled.append(LedgerHourly.hour >= first)
            if end is not None:
                rolled.append(LedgerHourly.hour < end)
            if tenant_id is not None:
                rolled.append(LedgerHourly.tenant_id == tenant_id)
            parts += [_rolled_hours(*rolled), self.hourly_from_ledger(*live, *_of_tenant(tenant_id))]
            # The partial hours at the window's ends, every row of them, rolled up or not.
            if since is not None and first is not None and since < first:
                parts.append(self.hourly_from_ledger(*_answered(since, first), *_of_tenant(tenant_id)))
            if until is not None and end is not None and end < until:
                parts.append(self.hourly_from_ledger(*_answered(end, until), *_of_tenant(tenant_id)))
        else:  # the window lies within one hour, or two partial ones
            parts.append(self.hourly_from_ledger(*_answered(since, until), *_of_tenant(tenant_id)))
        return union_all(*parts)

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


def whole_hours(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """The first and the end of the whole UTC hours in [since, until) (None: that end is open).
    Times without a zone are UTC."""
    first = end = None
    if since is not None:
        since = _aware(since)
        start = since.replace(minute=0, second=0, microsecond=0)
        # The last hour of the calendar has no next one: no whole hour starts after it.
        first = start if start == since else min(start, datetime.max.replace(tzinfo=UTC) - _HOUR) + _HOUR
    if until is not None:
        end = _aware(until).replace(minute=0, second=0, microsecond=0)
    return first, end


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _answered(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    where = []
    if since is not None:
        where.append(LedgerEntry.created_at >= since)
    if until is not None:
        where.append(LedgerEntry.created_at < until)
    return where


def _of_tenant(tenant_id: uuid.UUID | None) -> list[ColumnElement[bool]]:
    return [] if tenant_id is None else [LedgerEntry.tenant_id == tenant_id]


def _rolled_hours(*where: ColumnElement[bool]) -> Select[Any]:
    """The rollup's rows, in the columns and order of `hourly_from_ledger` (a union matches
    columns by position)."""
    table = LedgerHourly.__table__.c
    names = [column.name for column in LedgerRollup.hourly_from_ledger().selected_columns]
    return select(*(table[name] for name in names)).where(*where)
