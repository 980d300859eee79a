"""What writing a served paraphrase's alias costs, after the response: server and Postgres CPU per alias.

    python scripts/alias_write_cost.py [--aliases 1000] [--batches 1,4,16]

A fresh embedded Postgres, migrated, with the service started on it (`Services.start`, as `deja
serve` starts it) and one tenant holding `--aliases` entries. For each batch size, the aliases of
`--aliases` new wordings (one per entry) are handed to the service's alias writer that many at a
time, each group waited for before the next: a batch of 1 is a lone hit, larger ones what queues up
under concurrent traffic. It prints this process's CPU (the writer, the driver) and Postgres's (the
postmaster and its children) per alias, and the wall time per alias.

The code before the alias writer handed each alias to the booking writer (`BookingWriter.later`: a
transaction of the tenant's per batch, through the ORM session); this script measures that too when
run on such a tree (`PYTHONPATH=<checkout> python scripts/alias_write_cost.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import time
import uuid
from typing import Any

import psutil
from sqlalchemy import text


def _postgres_cpu_s(postmaster: psutil.Process) -> float:
    total = 0.0
    for process in [postmaster, *postmaster.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def run(args: argparse.Namespace, postmaster_pid: int) -> None:
    from app.db.engine import transaction
    from app.services import Services
    from app.settings import Settings

    services = await Services.start(Settings())
    try:
        tenant_id = uuid.uuid4()
        entries = [uuid.uuid4() for _ in range(args.aliases)]
        async with transaction(services.sessionmaker, system=True) as session:
            await session.execute(
                text("INSERT INTO tenants (id, name) VALUES (:id, 'alias-cost')"), {"id": tenant_id}
            )
        async with transaction(services.sessionmaker, tenant_id=tenant_id) as session:
            await session.execute(
                text(
                    "INSERT INTO cache_entries (id, tenant_id, model, scope_hash, exact_hash, prompt, "
                    "response, embedder, embedding) SELECT e.id, :t, 'gpt-4o-mini', '\\x00'::bytea, "
                    "sha256(e.id::text::bytea), 'a stored prompt', '{}'::jsonb, :embedder, "
                    "array_fill(0.05::real, ARRAY[CAST(:dim AS integer)])::vector FROM unnest(CAST(:ids AS uuid[])) AS e(id)"
                ),
                {
                    "t": tenant_id,
                    "ids": entries,
                    "embedder": services.cache.embedder.name,
                    "dim": services.cache.embedder.dimension,
                },
            )
        postmaster = psutil.Process(postmaster_pid)
        add, flush = _writer(services, tenant_id)

        async def write_all(round_name: str, batch: int) -> None:
            for start in range(0, len(entries), batch):
                for entry_id in entries[start : start + batch]:
                    add(hashlib.sha256(f"{round_name} {entry_id}".encode()).digest(), entry_id)
                await flush()

        print("| aliases per batch | server CPU ms/alias | Postgres CPU ms/alias | wall ms/alias |")
        print("|---|---|---|---|")
        for batch in args.batches:
            await write_all(f"warm-up {batch}", batch)
            cpu, pg, wall = time.process_time(), _postgres_cpu_s(postmaster), time.perf_counter()
            await write_all(f"measured {batch}", batch)
            n = len(entries)
            print(
                f"| {batch} | {(time.process_time() - cpu) * 1000 / n:.3f} | "
                f"{(_postgres_cpu_s(postmaster) - pg) * 1000 / n:.3f} | "
                f"{(time.perf_counter() - wall) * 1000 / n:.3f} |"
            )
    finally:
        await services.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--aliases", type=int, default=1000)
    parser.add_argument(
        "--batches", type=lambda v: [int(x) for x in v.split(",")], default=[1, 4, 16], help="e.g. 1,4,16"
    )
    args = parser.parse_args()
    if args.aliases < 1 or any(batch < 1 for batch in args.batches):
        parser.error("--aliases and every batch size must be at least 1")
    from app.toolkit.scratch import scratch_database

    with scratch_database("deja-alias-cost-") as scratch:
        os.environ["DEJA_DATABASE_URL"] = scratch.url
        os.environ["DEJA_DATA_DIR"] = str(scratch.folder)
        asyncio.run(run(args, scratch.postmaster_pid))


def _writer(services: Any, tenant_id: uuid.UUID) -> tuple[Any, Any]:
    """(add(exact_hash, entry_id), flush()) for the tree this runs on."""
    cache = services.cache
    if hasattr(cache, "aliases"):
        from app.cache.aliases import NewAlias

        def add(exact_hash: bytes, entry_id: uuid.UUID) -> None:
            cache.aliases.add(NewAlias(tenant_id, "", exact_hash, entry_id, 0.9))

        return add, cache.aliases.flush
    from app.cache.repository import CacheRepository  # the booking writer's `later` (before)

    writer = services.pipeline.writer

    def add_later(exact_hash: bytes, entry_id: uuid.UUID) -> None:
        async def work(session: Any) -> None:
            await CacheRepository(session).add_alias(tenant_id, "", exact_hash, entry_id, 0.9, max_aliases=16)

        writer.later(tenant_id, work)

    return add_later, writer.flush


if __name__ == "__main__":
    main()
