"""The semantic tier in process, before and after the one-round-trip probe, on the same data.

    python scripts/semantic_probe_bench.py [--entries 100000] [--queries 300] [--rounds 2]

A fresh embedded Postgres is loaded as `deja bench` loads it (synthetic rows over 10 tenants, then
300 real prompts per tenant stored through `CacheService.store`). Paraphrases of the stored prompts
are then looked up one at a time, after the exact tier has missed, two ways:

- transaction: `CacheService.lookup` in a transaction (BEGIN, the tenant context, the search
  settings, the HNSW top-k, the verifier, on a hit the alias INSERT, COMMIT): the request path
  before the probe, and still the path with a read replica or an error bound;
- probe: `CacheService.probe_semantic` (the embedding, the embedder's probe function in one round
  trip on the fast connections, the verifier) with the alias handed to the cache's alias writer,
  which writes it after the "response" in its own task (its cost counted in the phase's CPU).

Each round runs the two phases one after the other on the same queries (aliases deleted between
phases, so that each writes its own). CPU is this process's (embedding, verifier, driver) plus
Postgres's (the postmaster and its children), per lookup. Then the database part alone (the same
query vectors): a transaction with `CacheRepository.nearest`, the embedder's probe function (vector
in binary) and the generic `deja_semantic_probe` (by embedder name; vector in binary and as text);
and how often the HNSW index served the search (this transaction's index scans, read right after
the call).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector import HalfVector
from sqlalchemy import text

from app.cache.models import hnsw_index_name
from app.cache.policy import TenantCachePolicy
from app.cache.repository import CacheRepository
from app.cache.semantic_probe import PROBE
from app.cache.service import CacheService
from app.db.engine import create_engine, create_sessionmaker, register_halfvec, transaction
from app.db.fastpath import FastConnections, asyncpg_dsn
from app.settings import get_settings
from app.toolkit.bench import load as loading
from app.toolkit.bench.prompts import TEMPLATE_PAIRS
from app.toolkit.scratch import scratch_database

TICK = os.sysconf("SC_CLK_TCK")


def postgres_cpu_s(postmaster: int) -> float:
    """CPU seconds of the postmaster, its reaped children and its live children."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid = int(fields[1])
        if int(pid) == postmaster:
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / TICK


class Meter:
    def __init__(self, postmaster: int) -> None:
        self.postmaster = postmaster

    def __enter__(self) -> Meter:
        self.cpu, self.pg, self.wall = (
            time.process_time(),
            postgres_cpu_s(self.postmaster),
            time.perf_counter(),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = time.process_time() - self.cpu
        self.pg = postgres_cpu_s(self.postmaster) - self.pg
        self.wall = time.perf_counter() - self.wall


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(name: str, ms: list[float], meter: Meter, extra: str = "") -> str:
    n = len(ms)
    return (
        f"| {name} | {n} | {pct(ms, 0.5):.2f} | {pct(ms, 0.95):.2f} | {statistics.mean(ms):.2f} | "
        f"{meter.cpu * 1000 / n:.2f} | {meter.pg * 1000 / n:.2f} | {(meter.cpu + meter.pg) * 1000 / n:.2f} |{extra}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    settings = get_settings()
    with scratch_database("deja-semantic-bench-") as scratch:
        asyncio.run(run(settings, scratch.url, scratch.postmaster_pid, args))


async def run(settings: Any, url: str, postmaster: int, args: argparse.Namespace) -> None:
    engine = create_engine(url, settings)
    sessionmaker = create_sessionmaker(engine)
    cache = CacheService.create(settings.cache)
    async with transaction(sessionmaker, system=True) as session:
        await cache.prepare(session)
    embedder = cache.embedder
    run_id = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    tenants = await loading.create_tenants(sessionmaker, 10, run_id)
    draw = random.Random(args.seed)  # noqa: S311 (benchmark draws)
    base_prompts = [p.prompt for p in draw.sample(TEMPLATE_PAIRS, min(len(TEMPLATE_PAIRS), 2000))]
    bases = np.concatenate(
        [await embedder.embed(base_prompts[i : i + 32]) for i in range(0, len(base_prompts), 32)]
    ).astype(np.float32)
    result = loading.LoadResult(tenants=tenants, groups=[], real=[], bases=bases)
    result.groups = loading.plan_groups(tenants, args.entries)
    vectors = loading.draw_vectors(bases, args.entries, np.random.default_rng(args.seed))
    await loading.bulk_load(
        engine,
        result.groups,
        vectors,
        embedder.name,
        embedder.dimension,
        run_id,
        rebuild_index=True,
        result=result,
        progress=lambda n: None,
    )
    real = await loading.store_real_prompts(sessionmaker, cache, tenants, 300, args.seed, lambda n: None)
    async with engine.connect() as conn:
        await conn.execute(text("ANALYZE cache_entries"))
        await conn.commit()
    print(
        f"loaded {args.entries:,} synthetic + {len(real):,} real entries in {time.perf_counter() - started:.0f} s"
    )

    policy = TenantCachePolicy().verifier_policy(None)
    queries = random.Random(args.seed + 1).sample(real, min(args.queries, len(real)))  # noqa: S311
    fast = FastConnections(url, size=1)
    cache.aliases.start(sessionmaker, fast)
    writer = cache.aliases

    async def clear_aliases() -> None:
        async with transaction(sessionmaker, system=True) as session:
            await session.execute(text("DELETE FROM cache_aliases"))

    async def in_transaction(entry: loading.RealEntry) -> Any:
        scope = loading.request_scope(entry.pair.paraphrase)
        async with transaction(sessionmaker, tenant_id=entry.tenant.id) as session:
            return await cache.lookup(session, entry.tenant.id, "", scope, policy, exact_probed=True)

    async def probed(entry: loading.RealEntry) -> Any:
        scope = loading.request_scope(entry.pair.paraphrase)
        return await cache.probe_semantic(fast, entry.tenant.id, "", scope, policy)

    async def phase(
        look: Callable[[loading.RealEntry], Awaitable[Any]],
    ) -> tuple[list[float], Meter, list[Any]]:
        await clear_aliases()
        ms: list[float] = []
        found: list[Any] = []
        with Meter(postmaster) as meter:
            for entry in queries:
                t0 = time.perf_counter()
                found.append(await look(entry))
                ms.append((time.perf_counter() - t0) * 1000)
            await writer.flush()  # the aliases written after the responses: part of the cost
        return ms, meter, found

    # Warm-up: model sessions, connections, index pages.
    for entry in queries[:50]:
        await in_transaction(entry)
        await probed(entry)
    await writer.flush()

    print()
    print(
        "| semantic lookup (paraphrase, exact tier already missed) | n | p50 ms | p95 ms | mean ms | "
        "process CPU ms/lookup | Postgres CPU ms/lookup | CPU ms/lookup |"
    )
    print("|---|---|---|---|---|---|---|---|")
    agree = 0
    for number in range(1, args.rounds + 1):
        before_ms, before, before_found = await phase(in_transaction)
        after_ms, after, after_found = await phase(probed)
        hits_before = sum(f.entry is not None for f in before_found)
        hits_after = sum(f.entry is not None for f in after_found)
        agree = sum(
            (a.entry.id if a.entry else None) == (b.entry.id if b.entry else None)
            for a, b in zip(before_found, after_found, strict=True)
        )
        print(row(f"round {number}: in a transaction", before_ms, before, f" hits {hits_before}"))
        print(row(f"round {number}: one-round-trip probe", after_ms, after, f" hits {hits_after}"))
    print(f"\nsame decision (same entry, or both misses) in the last round: {agree}/{len(queries)}")

    # The database part alone, on the same query vectors.
    vecs = [
        (
            e.tenant.id,
            loading.request_scope(e.pair.paraphrase).scope_hash,
            (await embedder.embed([loading.request_scope(e.pair.paraphrase).read_prompt]))[0],
        )
        for e in queries
    ]
    k, ef = cache.settings.top_k, cache.settings.ef_search

    async def sql_transaction(tenant_id: uuid.UUID, scope_hash: bytes, vector: Any) -> Any:
        async with transaction(sessionmaker, tenant_id=tenant_id) as session:
            return await CacheRepository(session).nearest(
                tenant_id, "", scope_hash, embedder.name, embedder.dimension, vector, k=k, ef_search=ef
            )

    probe = cache.semantic_probe
    assert probe is not None, "the embedder's probe function was not created"

    async def sql_probe(tenant_id: uuid.UUID, scope_hash: bytes, vector: Any) -> Any:
        return await probe.nearest(fast, tenant_id, "", scope_hash, vector, k=k, ef_search=ef)

    def generic(tenant_id: uuid.UUID, scope_hash: bytes, vector: Any) -> tuple[Any, ...]:
        """`deja_semantic_probe`'s arguments: the embedder by name and dimension."""
        return (
            tenant_id,
            "",
            scope_hash,
            embedder.name,
            embedder.dimension,
            HalfVector(vector),
            k,
            ef,
            None,
            0,
        )

    async def sql_generic(tenant_id: uuid.UUID, scope_hash: bytes, vector: Any) -> Any:
        return await fast.fetch(PROBE, *generic(tenant_id, scope_hash, vector))

    as_text = PROBE.replace("$6,", "$6::text::halfvec,")

    async def sql_probe_text(tenant_id: uuid.UUID, scope_hash: bytes, vector: Any) -> Any:
        literal = "[" + ",".join(f"{float(x):.6g}" for x in vector) + "]"
        return await fast.fetch(
            as_text, tenant_id, "", scope_hash, embedder.name, embedder.dimension, literal, k, ef, None, 0
        )

    print()
    print(
        "| database part alone (top-k of the same vectors) | n | p50 ms | p95 ms | mean ms | "
        "process CPU ms/call | Postgres CPU ms/call | CPU ms/call |"
    )
    print("|---|---|---|---|---|---|---|---|")
    calls = {
        "transaction + CacheRepository.nearest": sql_transaction,
        "the embedder's probe function, vector in binary": sql_probe,
        "deja_semantic_probe (by embedder name), vector in binary": sql_generic,
        "deja_semantic_probe (by embedder name), vector as text": sql_probe_text,
    }
    for tenant_id, scope_hash, vector in vecs[:30]:  # warm-up
        for call in calls.values():
            await call(tenant_id, scope_hash, vector)
    for number in range(1, args.rounds + 1):
        for name, call in calls.items():
            ms = []
            with Meter(postmaster) as meter:
                for tenant_id, scope_hash, vector in vecs:
                    t0 = time.perf_counter()
                    await call(tenant_id, scope_hash, vector)
                    ms.append((time.perf_counter() - t0) * 1000)
            print(row(f"round {number}: {name}", ms, meter))

    # How often the HNSW index served the search: this transaction's scans of it, after each call.
    index = hnsw_index_name(embedder.name)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    await register_halfvec(conn)
    scans = "SELECT pg_stat_get_xact_numscans(to_regclass($1))"
    used_probe = used_tx = 0
    try:
        for tenant_id, scope_hash, vector in vecs:
            async with conn.transaction():
                await conn.fetch(PROBE, *generic(tenant_id, scope_hash, vector))
                used_probe += int(await conn.fetchval(scans, index) > 0)
            async with transaction(sessionmaker, tenant_id=tenant_id) as session:
                await CacheRepository(session).nearest(
                    tenant_id, "", scope_hash, embedder.name, embedder.dimension, vector, k=k, ef_search=ef
                )
                used_tx += int(
                    (await session.execute(text(scans.replace("$1", ":i")), {"i": index})).scalar_one() > 0
                )
    finally:
        await conn.close()
    print(
        f"\nHNSW index scanned: by the probe function in {used_probe}/{len(vecs)} searches, "
        f"by the transaction's query in {used_tx}/{len(vecs)}"
    )
    await cache.aclose()
    await fast.aclose()
    await engine.dispose()


if __name__ == "__main__":
    main()
