"""What `GET /admin/stats` costs on a large ledger: every row read, against the hourly rollup.

    python scripts/admin_stats_cost.py [--rows 2000000] [--tenants 10]

A fresh embedded Postgres, migrated; `--tenants` tenants sharing `--rows` ledger rows (a month of
traffic). It times `tenant_stats` with a window that holds every row, with no statement timeout
(what `GET /admin/stats` ran without a window before it read the rollup, and still runs with a
window: every ledger row in it, on each call); the first roll-up of the ledger into hourly rows
(`roll_up_ledger`: in steps of about 200,000 rows, each its own transaction with the roll-up's
own statement timeout; later roll-ups add only the hours closed since); and `tenant_stats`
without a window, from the rollup (what `GET /admin/stats` and the dashboard's overview run now).
It checks that the two give the same figures. A statement longer than the service's statement
timeout (5 s by default) fails with a 503.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

from sqlalchemy import text

from app.db.engine import create_engine, create_sessionmaker, transaction
from app.ledger.rollup import roll_up_ledger
from app.settings import Settings
from app.tenants.stats import tenant_stats
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


async def run(url: str, rows: int, tenants: int) -> None:
    engine = create_engine(url, Settings(database_url=url, log_level="WARNING"))
    sessionmaker = create_sessionmaker(engine)
    try:
        async with transaction(sessionmaker, system=True) as session:
            await session.execute(text("SET LOCAL statement_timeout = 0"))
            ids = [
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

        raw = await timed(
            "every ledger row (a window holding them all):", lambda s: tenant_stats(s, EPOCH, None)
        )
        started = time.perf_counter()
        await roll_up_ledger(sessionmaker)  # in steps, each its own transaction
        print(f"{'the first roll-up (once, in steps):':44s} {time.perf_counter() - started:6.2f} s")
        rolled = await timed("no window: from the rollup:", lambda s: tenant_stats(s, None, None))
        same = sorted((t.tenant_id, t.requests, t.hits, t.cost_usd) for t in raw) == sorted(  # type: ignore[attr-defined]
            (t.tenant_id, t.requests, t.hits, t.cost_usd)
            for t in rolled  # type: ignore[attr-defined]
        )
        print(f"the two agree: {same}")
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
