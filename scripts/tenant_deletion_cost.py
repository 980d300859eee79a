"""What deleting a tenant with a large ledger costs, in one statement and in the service's batches.

    python scripts/tenant_deletion_cost.py [--rows 1000000]

A fresh embedded Postgres, migrated; two tenants with `--rows` ledger rows each (a client's
metadata and namespace on every row, one row a second). The first tenant's rows are anonymised
by one UPDATE with no statement timeout (what tenant deletion did before its ledger went in
batches); the second tenant is deleted by the service (`delete_tenant`, the default settings: a
5 s statement timeout), which anonymises its ledger in batches, then deleted again with its
ledger (`include_ledger`). It prints each one's wall time and, for the batched ones, the mean time
per batch. A single statement that takes longer than the statement timeout fails, every time.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
import uuid

from sqlalchemy import text

from app.db.engine import create_engine, create_sessionmaker, transaction
from app.settings import Settings
from app.tenants.service import LEDGER_BATCH, delete_tenant
from app.toolkit.scratch import scratch_database

LOAD = text(
    """
    INSERT INTO ledger (tenant_id, request_id, created_at, booked_at, requested_model, used_model, namespace,
                        cache_status, prompt_tokens, completion_tokens, cost_usd, avoided_cost_usd, latency_ms,
                        http_status, priority, metadata)
    SELECT :t, 'cost-' || i, now() - make_interval(secs => i), now(), 'gpt-4o-mini', 'gpt-4o-mini', 'docs',
           'miss', 40, 120, 0.000078, 0, 12, 200, 1, '{"team": "support"}'::jsonb
      FROM generate_series(1, :n) AS i
    """
)


async def run(url: str, rows: int) -> None:
    settings = Settings(database_url=url, log_level="WARNING")
    engine = create_engine(url, settings)
    sessionmaker = create_sessionmaker(engine)
    try:
        tenants: list[uuid.UUID] = []
        for name in ("one-statement", "batched"):
            async with transaction(sessionmaker, system=True) as session:
                await session.execute(text("SET LOCAL statement_timeout = 0"))
                tenant_id = (
                    await session.execute(
                        text("INSERT INTO tenants (name) VALUES (:n) RETURNING id"), {"n": name}
                    )
                ).scalar_one()
                await session.execute(LOAD, {"t": tenant_id, "n": rows})
                tenants.append(tenant_id)
        async with transaction(sessionmaker, system=True) as session:
            await session.execute(text("SET LOCAL statement_timeout = 0"))
            await session.execute(text("ANALYZE ledger"))
        batches = math.ceil((rows + 1) / LEDGER_BATCH)
        print(f"{rows:,} ledger rows per tenant; batches of {LEDGER_BATCH:,} ({batches} per pass)")

        started = time.perf_counter()
        async with transaction(sessionmaker, system=True) as session:
            await session.execute(text("SET LOCAL statement_timeout = 0"))
            await session.execute(
                text(
                    "UPDATE ledger SET metadata = '{}'::jsonb, error = NULL, namespace = '', api_key_id = NULL, "
                    "entry_id = NULL WHERE tenant_id = :t"
                ),
                {"t": tenants[0]},
            )
        one = time.perf_counter() - started
        print(f"anonymise in one statement:       {one:6.1f} s")

        started = time.perf_counter()
        kept = await delete_tenant(sessionmaker, "cost", tenants[1], include_ledger=False)
        batched = time.perf_counter() - started
        print(
            f"delete_tenant (anonymise):        {batched:6.1f} s, {kept.ledger_rows_anonymised:,} rows, "
            f"{batched * 1000 / batches:.0f} ms per batch"
        )
        started = time.perf_counter()
        gone = await delete_tenant(sessionmaker, "cost", tenants[1], include_ledger=True)
        erased = time.perf_counter() - started
        print(
            f"delete_tenant (include_ledger):   {erased:6.1f} s, {gone.ledger_rows_deleted:,} rows, "
            f"{erased * 1000 / batches:.0f} ms per batch"
        )
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    with scratch_database("deja-tenant-deletion-") as scratch:
        asyncio.run(run(scratch.url, args.rows))


if __name__ == "__main__":
    main()
