"""What the dashboard's two indexes on cache_entries cost the hot path: storing an entry after a miss.

    python scripts/entry_insert_cost.py [--entries 2000] [--rounds 3]

In a fresh embedded Postgres migrated to head, it stores entries the way the service does
(CacheRepository.insert, a 384-d embedding under the HNSW index, one transaction each), in
rounds that alternate between the schema as migrated and the schema without
`ix_cache_entries_created_at` and `ix_cache_entries_prompt_words`, and prints the median time
per stored entry of each.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from decimal import Decimal

import numpy as np
from sqlalchemy import text

from app.cache.models import DEFAULT_EMBEDDER
from app.cache.repository import CacheRepository, NewEntry
from app.db.engine import create_engine, create_sessionmaker, transaction
from app.settings import Settings
from app.tenants.repository import TenantRepository
from app.toolkit.scratch import scratch_database

DASHBOARD_INDEXES = {
    "ix_cache_entries_created_at": "CREATE INDEX ix_cache_entries_created_at ON cache_entries (created_at)",
    "ix_cache_entries_prompt_words": "CREATE INDEX ix_cache_entries_prompt_words ON cache_entries "
    "USING gin (to_tsvector('simple'::regconfig, prompt))",
}


async def store(
    settings: Settings, tenant_id: uuid.UUID, count: int, rng: np.random.Generator
) -> list[float]:
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, settings)
    sessionmaker = create_sessionmaker(engine)
    times = []
    for _ in range(count):
        i = int(rng.integers(1 << 62))
        vector = rng.standard_normal(384).astype(np.float32)
        entry = NewEntry(
            tenant_id=tenant_id,
            namespace="",
            model="gpt-4o-mini",
            scope_hash=i.to_bytes(8, "big"),
            exact_hash=(i + 1).to_bytes(8, "big"),
            prompt=f"How do I export the quarterly report {i} for the finance team in CSV?",
            embedder=DEFAULT_EMBEDDER,
            embedding=vector / np.linalg.norm(vector),
            response={"choices": [{"message": {"role": "assistant", "content": f"Answer {i}"}}]},
            prompt_tokens=20,
            completion_tokens=40,
            cost_usd=Decimal("0.00003"),
            ttl_s=3600,
        )
        started = time.perf_counter()
        async with transaction(sessionmaker, tenant_id=tenant_id) as session:
            await CacheRepository(session).insert(entry)
        times.append((time.perf_counter() - started) * 1000)
    await engine.dispose()
    return times


async def set_indexes(settings: Settings, present: bool) -> None:
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, settings)
    async with engine.begin() as connection:
        for name, create in DASHBOARD_INDEXES.items():
            await connection.execute(text(f"DROP INDEX IF EXISTS {name}"))
            if present:
                await connection.execute(text(create))
    await engine.dispose()


async def run(settings: Settings, entries: int, rounds: int) -> None:
    assert settings.database_url is not None
    engine = create_engine(settings.database_url, settings)
    async with transaction(create_sessionmaker(engine), system=True) as session:
        tenant = await TenantRepository(session).create(f"insert-cost-{uuid.uuid4().hex[:6]}")
    await engine.dispose()
    rng = np.random.default_rng(7)
    await store(settings, tenant.id, entries, rng)  # warm-up: caches, a non-empty HNSW graph
    results: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        for present in (True, False):
            await set_indexes(settings, present)
            results[present] += await store(settings, tenant.id, entries, rng)
    await set_indexes(settings, True)
    with_indexes, without = statistics.median(results[True]), statistics.median(results[False])
    print(f"{rounds} rounds of {entries:,} stored entries each way, one transaction each:")
    print(f"  with the dashboard's indexes:    median {with_indexes:.2f} ms per entry")
    print(f"  without them:                    median {without:.2f} ms per entry")
    print(
        f"  difference:                      {with_indexes - without:+.2f} ms ({with_indexes / without - 1:+.0%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with scratch_database("deja-insert-cost-") as scratch:
        settings = Settings(database_url=scratch.url, data_dir=scratch.folder / "state", log_level="WARNING")
        asyncio.run(run(settings, args.entries, args.rounds))


if __name__ == "__main__":
    main()
