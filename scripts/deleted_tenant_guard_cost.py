"""What the deleted-tenant triggers (migration 0160) cost Postgres per written row.

    python scripts/deleted_tenant_guard_cost.py [--rows 20000] [--batch 64] [--entries 1000] [--rounds 3]

A fresh embedded Postgres, migrated; one active tenant. Each round books `--rows` ledger rows (the
service's own statement, `LedgerRepository.append_many`, `--batch` rows a transaction, as the
booking writer batches them) and stores `--entries` cache entries (`CacheRepository.insert`, one a
transaction, as a miss's answer), once with the triggers on and once with them off (`ALTER TABLE
... DISABLE TRIGGER`), alternating. It prints the Postgres backend's CPU per row, the lowest round
of each. Large batches leave the rows' own cost: a transaction's is the same either way.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import uuid
from decimal import Decimal

import numpy as np
import psutil
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.models import DEFAULT_EMBEDDER
from app.cache.repository import CacheRepository, NewEntry
from app.db.engine import create_engine, create_sessionmaker, transaction
from app.ledger.repository import LedgerRepository, LedgerRow
from app.settings import Settings
from app.toolkit.scratch import scratch_database

TRIGGERS = {
    "ledger": "deja_deleted_tenant_books_anonymously",
    "cache_entries": "deja_deleted_tenant_writes_nothing",
}


async def switch(sessionmaker: async_sessionmaker[AsyncSession], on: bool) -> None:
    async with transaction(sessionmaker, system=True) as session:
        for table, trigger in TRIGGERS.items():
            await session.execute(
                text(f"ALTER TABLE {table} {'ENABLE' if on else 'DISABLE'} TRIGGER {trigger}")
            )


async def the_backend(sessionmaker: async_sessionmaker[AsyncSession]) -> psutil.Process:
    """The one connection's Postgres process (the pool holds one), whose CPU is measured across a
    whole loop: per-statement readings would be below the clock's tick."""
    async with transaction(sessionmaker, system=True) as session:
        return psutil.Process((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def book(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID, rows: int, batch: int
) -> float:
    """Postgres CPU seconds to book `rows` ledger rows, `batch` a transaction."""
    backend = await the_backend(sessionmaker)
    before = sum(backend.cpu_times()[:2])
    for start in range(0, rows, batch):
        part = [
            LedgerRow(
                tenant_id=tenant_id,
                request_id=uuid.uuid4().hex,
                requested_model="gpt-4o-mini",
                cache_status="hit",
                http_status=200,
                latency_ms=2.0,
                cost_usd=Decimal(0),
                avoided_cost_usd=Decimal("0.0002"),
                metadata={"user": "bench"},
            )
            for _ in range(min(batch, rows - start))
        ]
        async with transaction(sessionmaker, tenant_id=tenant_id) as session:
            await LedgerRepository(session).append_many(part)
    return sum(backend.cpu_times()[:2]) - before


async def store(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID, rows: int, seed: int
) -> float:
    """Postgres CPU seconds to store `rows` cache entries, one a transaction."""
    rng = np.random.default_rng(seed)
    backend = await the_backend(sessionmaker)
    before = sum(backend.cpu_times()[:2])
    for i in range(rows):
        vector = rng.standard_normal(384).astype(np.float32)
        prompt = f"What was the Q3 budget for project number {seed}-{i} in the Berlin office?"
        entry = NewEntry(
            tenant_id=tenant_id,
            namespace="",
            model="gpt-4o-mini",
            scope_hash=b"\x01",
            exact_hash=hashlib.sha256(prompt.encode()).digest(),
            prompt=prompt,
            embedder=DEFAULT_EMBEDDER,
            embedding=vector / np.linalg.norm(vector),
            response={"choices": [{"message": {"role": "assistant", "content": "42,000 EUR."}}]},
            prompt_tokens=20,
            completion_tokens=5,
            cost_usd=Decimal("0.0001"),
            ttl_s=3600,
        )
        async with transaction(sessionmaker, tenant_id=tenant_id) as session:
            await CacheRepository(session).insert(entry)
    return sum(backend.cpu_times()[:2]) - before


async def run(url: str, args: argparse.Namespace) -> None:
    # The service's engine (vectors in binary), one connection: one backend to measure.
    engine = create_engine(url, Settings(database_url=url, database={"pool_size": 1, "max_overflow": 0}))
    sessionmaker = create_sessionmaker(engine)
    try:
        async with transaction(sessionmaker, system=True) as session:
            tenant_id: uuid.UUID = (
                await session.execute(text("INSERT INTO tenants (name) VALUES ('guard-cost') RETURNING id"))
            ).scalar_one()
        await book(sessionmaker, tenant_id, 200, args.batch)  # warm-up: caches and plans
        best: dict[tuple[str, bool], float] = {}
        for round_ in range(args.rounds):
            # Alternating which goes first: the HNSW index grows, and later entries cost a little more.
            for on in (True, False) if round_ % 2 == 0 else (False, True):
                await switch(sessionmaker, on)
                ledger = await book(sessionmaker, tenant_id, args.rows, args.batch) / args.rows
                entries = (
                    await store(sessionmaker, tenant_id, args.entries, seed=round_ * 2 + on) / args.entries
                )
                for name, cost in (("ledger row", ledger), ("cache entry", entries)):
                    best[(name, on)] = min(best.get((name, on), cost), cost)
        await switch(sessionmaker, True)
        print(
            f"Postgres CPU per row, lowest of {args.rounds} rounds ({args.rows} ledger rows in batches of "
            f"{args.batch}, {args.entries} entries):"
        )
        print("| row | triggers on, µs | triggers off, µs | difference, µs |")
        print("|---|---|---|---|")
        for name in ("ledger row", "cache entry"):
            on_us, off_us = best[(name, True)] * 1e6, best[(name, False)] * 1e6
            print(f"| {name} | {on_us:.1f} | {off_us:.1f} | {on_us - off_us:+.1f} |")
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with scratch_database("deja-guard-cost-") as db:
        asyncio.run(run(db.url, args))


if __name__ == "__main__":
    main()
