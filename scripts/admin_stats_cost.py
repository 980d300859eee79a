"""What `GET /admin/stats` costs on a large ledger: every row read, against the hourly rollup.

    python scripts/admin_stats_cost.py [--rows 2000000] [--tenants 10]

A fresh embedded Postgres, migrated; `--tenants` tenants sharing `--rows` ledger rows (a month of
traffic). It times, with no statement timeout: the figures read from every ledger row of a window
holding them all (what `GET /admin/stats` ran before it read the rollup: one aggregate per tenant
over its rows in the window); the first roll-up of the ledger into hourly rows (`roll_up_ledger`:
in steps of about 200,000 rows, each its own transaction with the roll-up's own statement timeout;
later roll-ups add only the hours closed since); `tenant_stats` without a window, and with a
window whose ends fall inside hours (its whole hours from the rollup, the two partial ones from
the ledger), which is what `GET /admin/stats` and the dashboard's overview run now. It checks
that each agrees with the ledger read row by row. A statement longer than the service's
statement timeout (5 s by default) fails with a 503.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import create_engine, create_sessionmaker, transaction
from app.ledger.rollup import roll_up_ledger
from app.settings import Settings
from app.tenants.stats import TenantStats, tenant_stats
from app.toolkit.scratch import scratch_database

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

LOAD = text(
    """
    INSERT INTO ledger (tenant_id, request_id, created_at, booked_at, requested_model, used_model, namespace,
                        cache_status, prompt_tokens, completion_tokens, cost_usd, avoided_cost_usd, latency_ms,
                        http_status, priority)
    SELECT (CAST(:tenants AS uuid[]))[1 + i % :n_tenants], 'stats-' || i,
           now() - make_interval(secs => (i * 3) % (30 * 86400)), now() - make_interval(secs => (i * 3) % (30 * 86400)),
           'gpt-4o-mini', 'gpt-4o-mini', '', CASE WHEN i % 3 = 0 THEN 'hit' ELSE 'miss' END,
           40, 120, CASE WHEN i % 3 = 0 THEN 0 ELSE 0.000078 END, CASE WHEN i % 3 = 0 THEN 0.000078 ELSE 0 END,
           12, 200, 1
      FROM generate_series(1, :n) AS i
    """
)


# One aggregate per tenant over its ledger rows in the window (the tenant-and-time index).
EVERY_ROW = text(
    """
    SELECT t.id AS tenant_id, l.requests, l.hits, l.cost_usd
      FROM tenants t
      CROSS JOIN LATERAL (
            SELECT count(*) AS requests, count(*) FILTER (WHERE cache_status = 'hit') AS hits,
                   coalesce(sum(cost_usd), 0) AS cost_usd
              FROM ledger
             WHERE tenant_id = t.id AND created_at >= :since AND created_at < :until
           ) l
     WHERE l.requests > 0
    """
)

Figures = tuple[uuid.UUID, int, int, Decimal]


async def run(url: str, rows: int, tenants: int) -> None:
    engine = create_engine(url, Settings(database_url=url, log_level="WARNING"))
    sessionmaker = create_sessionmaker(engine)
    try:
        async with transaction(sessionmaker, system=True) as session:
            await session.execute(text("SET LOCAL statement_timeout = 0"))
            ids: list[uuid.UUID] = [
                (
                    await session.execute(
                        text("INSERT INTO tenants (name) VALUES (:n) RETURNING id"), {"n": f"t{k}"}
                    )
                ).scalar_one()
                for k in range(tenants)
            ]
            await session.execute(LOAD, {"tenants": ids, "n_tenants": tenants, "n": rows})
            await session.execute(text("ANALYZE ledger"))
        print(f"{rows:,} ledger rows over {tenants} tenants")

        async def timed(label: str, work) -> object:  # type: ignore[no-untyped-def]
            async with transaction(sessionmaker, system=True) as session:
                await session.execute(text("SET LOCAL statement_timeout = 0"))
                started = time.perf_counter()
                result = await work(session)
                print(f"{label:44s} {time.perf_counter() - started:6.2f} s")
            return result

        async def every_row(session: AsyncSession, since: datetime, until: datetime) -> set[Figures]:
            rows = await session.execute(EVERY_ROW, {"since": since, "until": until})
            return {(r.tenant_id, r.requests, r.hits, Decimal(r.cost_usd)) for r in rows}

        def figures_of(stats: list[TenantStats]) -> set[Figures]:
            return {(t.tenant_id, t.requests, t.hits, t.cost_usd) for t in stats if t.requests}

        now = datetime.now(UTC)
        # 20 days and 17 minutes back to 2 hours and 43 minutes back: both ends inside an hour.
        since, until = now - timedelta(days=20, minutes=17), now - timedelta(hours=2, minutes=43)
        all_rows = await timed(
            "every ledger row (a window holding them all):", lambda s: every_row(s, EPOCH, now)
        )
        window_rows = await timed(
            "every ledger row of a 20-day window:", lambda s: every_row(s, since, until)
        )
        started = time.perf_counter()
        await roll_up_ledger(sessionmaker)  # in steps, each its own transaction
        print(f"{'the first roll-up (once, in steps):':44s} {time.perf_counter() - started:6.2f} s")
        rolled = await timed("no window: from the rollup:", lambda s: tenant_stats(s))
        windowed = await timed(
            "a 20-day window: whole hours from the rollup:", lambda s: tenant_stats(s, since, until)
        )
        print(f"all time agrees with the ledger: {figures_of(rolled) == all_rows}")  # type: ignore[arg-type]
        print(f"the window agrees with the ledger: {figures_of(windowed) == window_rows}")  # type: ignore[arg-type]
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--tenants", type=int, default=10)
    args = parser.parse_args()
    if args.rows < 1 or args.tenants < 1:
        parser.error("--rows and --tenants must be at least 1")
    with scratch_database("deja-admin-stats-") as scratch:
        asyncio.run(run(scratch.url, args.rows, args.tenants))


if __name__ == "__main__":
    main()
