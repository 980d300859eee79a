"""What a lookup costs Postgres when the cache entries' statistics lag behind a grown scope.

    python scripts/stale_statistics.py [--entries 2000] [--lookups 300] [--neighbours 0]

A fresh embedded Postgres, migrated; one tenant whose scope receives `--entries` template prompts
(a ticket number each, real embeddings, all in one transaction, as a new tenant's first traffic
would leave them), with autovacuum turned off on the table so that nothing analyses it behind the
script's back. Then `--lookups` calls of the semantic probe (`deja_semantic_probe`, what the
request path sends) with paraphrases of the stored prompts and as many exact probes
(`deja_exact_probe`) of stored prompts, twice: before `ANALYZE cache_entries` and after it. For
each it prints how many searches went through the HNSW index (read from each transaction's scans of
the index, in a pass of its own that also warms up), then the Postgres backend's CPU and the
client's wall time per call, the calls timed alone.

Migration 0110 and the embedded server's autovacuum settings (docs/operations.md#statistics) are
what keep the "before" state short in service.

`--neighbours N` first stores N other tenants of 150 entries each (random vectors), 20 of them in
the same scope and the rest in scopes of their own, as tenants that send the same model with no
system prompt would. A third line then repeats the measure with migration 0150's statistics over
tenant, namespace and scope dropped and the table analysed again: the planner then multiplies the
tenant's share of the table by the scope's. Each line prints the planner's estimate of the
scope's rows as the probe sees it: the row-level security condition included, which the planner
estimates on its own and multiplies in again, lowering the estimate by the tenant's share of the
table.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import time
import uuid
from pathlib import Path

import asyncpg
import psutil
from pgvector import HalfVector
from pgvector.asyncpg import register_vector

from app.cache.models import DEFAULT_DIMENSION, DEFAULT_EMBEDDER, hnsw_index_name
from app.cache.onnx_models import OnnxEmbedder
from app.cache.scope import scope_of
from app.db.embedded import APP_DATABASE, APP_ROLE
from app.toolkit.bench.prompts import TEMPLATE_PAIRS
from app.toolkit.scratch import scratch_database

MODEL = "gpt-4o-mini"
PROBE = "SELECT id FROM deja_semantic_probe($1, '', $2, $3, $4, $5, 5, 64, NULL, 0)"
EXACT = "SELECT id FROM deja_exact_probe($1, '', $2, NULL, 0, 1.0)"
SCANS = "SELECT pg_stat_get_xact_numscans(to_regclass($1))"


def _cpu_s(backend: psutil.Process) -> float:
    times = backend.cpu_times()
    return float(times.user + times.system)


async def timed(
    connection: asyncpg.Connection, calls: list[tuple[str, tuple[object, ...]]]
) -> tuple[float, float]:
    """Postgres backend CPU ms and client-side wall ms per call, over `calls` run one by one."""
    backend = psutil.Process(await connection.fetchval("SELECT pg_backend_pid()"))
    cpu_before, started = _cpu_s(backend), time.perf_counter()
    for statement, args in calls:
        if not await connection.fetch(statement, *args):
            raise RuntimeError("a probe found nothing")
    wall_ms = (time.perf_counter() - started) * 1000 / len(calls)
    return (_cpu_s(backend) - cpu_before) * 1000 / len(calls), wall_ms


async def through_the_index(
    connection: asyncpg.Connection, calls: list[tuple[str, tuple[object, ...]]]
) -> int:
    """How many of these searches scanned the HNSW index (this transaction's scans of it)."""
    index = hnsw_index_name(DEFAULT_EMBEDDER)
    used = 0
    for statement, args in calls:
        async with connection.transaction():
            before = await connection.fetchval(SCANS, index)
            await connection.fetch(statement, *args)
            used += int(await connection.fetchval(SCANS, index) > before)
    return used


NEIGHBOUR = """
    INSERT INTO cache_entries (tenant_id, model, scope_hash, exact_hash, prompt, response, embedder, embedding)
    SELECT $1::uuid, $2, CASE WHEN i <= 20 THEN $3 ELSE sha256(convert_to($1::uuid::text, 'UTF8')) END,
           sha256(convert_to($1::uuid::text || i, 'UTF8')),
           'a neighbour prompt ' || i, '{}'::jsonb, $4, r.v
      FROM generate_series(1, 150) AS i
     CROSS JOIN LATERAL (SELECT array_agg(random() - 0.5)::vector AS v FROM generate_series(1, $5) WHERE i > 0) AS r
"""
# Values spelled in the statement, not parameters: a parameter's value is unknown to EXPLAIN.
ESTIMATE = (
    "EXPLAIN (FORMAT JSON) SELECT id FROM cache_entries "
    "WHERE tenant_id = '{tenant_id}' AND namespace = '' AND scope_hash = '\\x{scope}'::bytea"
)


async def estimated_rows(connection: asyncpg.Connection, tenant_id: uuid.UUID, scope: bytes) -> int:
    """The planner's estimate of the scope's rows, as the tenant (the row-level condition in it)."""
    async with connection.transaction():
        await connection.execute("SELECT set_config('deja.tenant_id', $1, true)", str(tenant_id))
        plan = json.loads(await connection.fetchval(ESTIMATE.format(tenant_id=tenant_id, scope=scope.hex())))
    return int(plan[0]["Plan"]["Plan Rows"])


async def run(socket_dir: Path, entries: int, lookups: int, neighbours: int) -> None:
    # A ticket number makes each template prompt a prompt of its own.
    pairs = [
        (f"Ticket {i}: {pair.prompt}", f"Ticket {i}: {pair.paraphrase}")
        for i, pair in enumerate(itertools.islice(itertools.cycle(TEMPLATE_PAIRS), entries))
    ]
    print(f"embedding {entries} prompts and {lookups} paraphrases ...", flush=True)
    embedder = OnnxEmbedder()
    stored = embedder.embed([prompt for prompt, _ in pairs])
    asked = embedder.embed([paraphrase for _, paraphrase in pairs[:lookups]])
    scope = scope_of(MODEL, [{"role": "user", "content": "scope"}]).scope_hash
    connection = await asyncpg.connect(host=str(socket_dir), user=APP_ROLE, database=APP_DATABASE)
    try:
        await register_vector(connection)
        await connection.execute("ALTER TABLE cache_entries SET (autovacuum_enabled = off)")
        for _ in range(neighbours):
            async with connection.transaction():
                await connection.execute("SELECT set_config('deja.system', 'on', true)")
                neighbour = await connection.fetchval(
                    "INSERT INTO tenants (name) VALUES ($1) RETURNING id", f"neighbour-{uuid.uuid4().hex[:8]}"
                )
                await connection.execute(
                    NEIGHBOUR, neighbour, MODEL, scope, DEFAULT_EMBEDDER, DEFAULT_DIMENSION
                )
        async with connection.transaction():
            await connection.execute("SELECT set_config('deja.system', 'on', true)")
            tenant_id = await connection.fetchval(
                "INSERT INTO tenants (name) VALUES ($1) RETURNING id", f"stale-{uuid.uuid4().hex[:8]}"
            )
        async with connection.transaction():
            await connection.execute("SELECT set_config('deja.tenant_id', $1, true)", str(tenant_id))
            await connection.executemany(
                "INSERT INTO cache_entries (tenant_id, model, scope_hash, exact_hash, prompt, response, "
                "embedder, embedding) VALUES ($1, $2, $3, $4, $5, '{}'::jsonb, $6, $7)",
                [
                    (
                        tenant_id,
                        MODEL,
                        scope,
                        hashlib.sha256(prompt.encode()).digest(),
                        prompt,
                        DEFAULT_EMBEDDER,
                        HalfVector(vector),
                    )
                    for (prompt, _), vector in zip(pairs, stored, strict=True)
                ],
            )
        print(
            f"{entries} entries in one scope, {neighbours} neighbours with 20 entries each in it; "
            f"{lookups} lookups of paraphrases each way"
        )
        searches = [
            (PROBE, (tenant_id, scope, DEFAULT_EMBEDDER, DEFAULT_DIMENSION, HalfVector(vector)))
            for vector in asked
        ]
        exacts = [
            (EXACT, (tenant_id, hashlib.sha256(prompt.encode()).digest())) for prompt, _ in pairs[:lookups]
        ]
        print(
            "statistics | scope's rows estimated | searches through the HNSW index "
            "| search: Postgres CPU ms, wall ms | exact probe: Postgres CPU ms, wall ms"
        )
        labels = ["never analysed", "after ANALYZE"]
        if neighbours:
            labels.append("after ANALYZE, per column only")
        for label in labels:
            if label == "after ANALYZE":
                await connection.execute("ANALYZE cache_entries")
            if label == "after ANALYZE, per column only":
                await connection.execute("DROP STATISTICS st_cache_entries_scope")
                await connection.execute("ANALYZE cache_entries")
            estimate = await estimated_rows(connection, tenant_id, scope)
            used = await through_the_index(connection, searches)  # also the warm-up
            cpu_ms, wall_ms = await timed(connection, searches)
            exact_cpu_ms, exact_wall_ms = await timed(connection, exacts)
            print(
                f"{label} | {estimate} | {used} of {len(searches)} | {cpu_ms:.2f}, {wall_ms:.2f} "
                f"| {exact_cpu_ms:.2f}, {exact_wall_ms:.2f}"
            )
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--entries", type=int, default=2000, help="entries in the scope (at least 1)")
    parser.add_argument("--lookups", type=int, default=300, help="probes of each kind (at least 1)")
    parser.add_argument("--neighbours", type=int, default=0, help="other tenants sharing the scope")
    args = parser.parse_args()
    if args.entries < 1 or args.lookups < 1 or args.neighbours < 0:
        parser.error("--entries and --lookups must be at least 1, --neighbours at least 0")
    with scratch_database("deja-stale-statistics-") as scratch:
        asyncio.run(
            run(scratch.embedded.socket_dir, args.entries, min(args.lookups, args.entries), args.neighbours)
        )


if __name__ == "__main__":
    main()
