"""What writing hit counters costs Postgres: CPU per updated entry, and how many updates were HOT.

    python scripts/hit_counter_cost.py [--entries 2000] [--flushes 6] [--per-flush 100] [--fillfactor N]

A fresh embedded Postgres, migrated; one tenant with `--entries` entries (a template prompt, a short
answer and a random 384-dimension vector each, in the HNSW index). Then `--flushes` hit-counter
flushes, a second apart as the service writes them, each the service's own statement
(`CacheRepository.add_hits`) over `--per-flush` entries drawn at random. It prints the Postgres
backend's CPU per updated entry and the share of updates that were heap-only (HOT: no index
touched). `--fillfactor N` sets the table's fillfactor before the entries are stored, in place of
the migrations' (80; Postgres's default is 100).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import uuid
from datetime import UTC, datetime

import psutil
from sqlalchemy import text

from app.cache.models import DEFAULT_EMBEDDER
from app.cache.repository import CacheRepository
from app.db.engine import create_sessionmaker, transaction
from app.toolkit.scratch import scratch_database

STORE = text(
    """
    INSERT INTO cache_entries (tenant_id, model, scope_hash, exact_hash, prompt, response, embedder, embedding)
    SELECT :t, 'gpt-4o-mini', '\\x01'::bytea, sha256(i::text::bytea),
           'What was the Q3 budget for project number ' || i || ' in the Berlin office?',
           jsonb_build_object('choices', jsonb_build_array(jsonb_build_object('message', jsonb_build_object(
               'role', 'assistant', 'content', 'The budget of project ' || i || ' was 42,000 EUR.')))),
           :embedder, r.v
      FROM generate_series(1, :n) AS i
     CROSS JOIN LATERAL (SELECT array_agg(random() - 0.5)::vector AS v FROM generate_series(1, 384) WHERE i > 0) AS r
    """
)


async def run(url: str, args: argparse.Namespace) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    # A connection per transaction: each backend reports its statistics when it leaves.
    engine = create_async_engine(url, poolclass=NullPool)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with transaction(sessionmaker, system=True) as session:
            if args.fillfactor:
                await session.execute(
                    text(f"ALTER TABLE cache_entries SET (fillfactor = {int(args.fillfactor)})")
                )
            tenant_id: uuid.UUID = (
                await session.execute(text("INSERT INTO tenants (name) VALUES ('hit-counters') RETURNING id"))
            ).scalar_one()
        async with transaction(sessionmaker, tenant_id=tenant_id) as session:
            await session.execute(STORE, {"t": tenant_id, "embedder": DEFAULT_EMBEDDER, "n": args.entries})
            ids: list[uuid.UUID] = list(
                (await session.execute(text("SELECT id FROM cache_entries"))).scalars()
            )
            options: list[str] = (
                await session.execute(
                    text("SELECT reloptions FROM pg_class WHERE oid = 'cache_entries'::regclass")
                )
            ).scalar_one()
        rng = random.Random(0)  # noqa: S311 - a reproducible draw, not a secret
        cpu_s = updated = 0.0
        for _ in range(args.flushes):
            hits = {entry_id: (1, datetime.now(UTC)) for entry_id in rng.sample(ids, args.per_flush)}
            async with transaction(sessionmaker, system=True) as session:
                backend = psutil.Process(
                    (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                )
                before = backend.cpu_times()
                await CacheRepository(session).add_hits(hits)
                after = backend.cpu_times()
            cpu_s += (after.user + after.system) - (before.user + before.system)
            updated += len(hits)
            await asyncio.sleep(1.0)
        async with transaction(sessionmaker, system=True) as session:
            await session.execute(text("SELECT pg_stat_force_next_flush()"))
        await asyncio.sleep(0.5)
        async with transaction(sessionmaker, system=True) as session:
            await session.execute(text("SELECT pg_stat_clear_snapshot()"))
            stats = (
                await session.execute(
                    text(
                        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'cache_entries'"
                    )
                )
            ).one()
        hot = stats.n_tup_hot_upd / max(1, stats.n_tup_upd)
        print(f"table options: {', '.join(options)}")
        print(
            f"{int(updated)} counter updates in {args.flushes} flushes: "
            f"{cpu_s * 1000 / updated:.3f} ms of Postgres CPU per updated entry, {hot:.0%} of them HOT"
        )
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--flushes", type=int, default=6)
    parser.add_argument("--per-flush", type=int, default=100)
    parser.add_argument(
        "--fillfactor", type=int, default=None, help="10-100; default: the migrations' setting"
    )
    args = parser.parse_args()
    if args.entries < 1 or args.flushes < 1 or not 1 <= args.per_flush <= args.entries:
        parser.error("--entries and --flushes must be at least 1, --per-flush between 1 and --entries")
    if args.fillfactor is not None and not 10 <= args.fillfactor <= 100:
        parser.error("--fillfactor must be between 10 and 100")
    with scratch_database("deja-hit-counters-") as scratch:
        asyncio.run(run(scratch.url, args))


if __name__ == "__main__":
    main()
